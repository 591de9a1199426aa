"""Training batches: segments of utterances from one or more datasets, as log-mel + motion.

* Every utterance is padded with silence in front (the encoder's left context and a
  full motion context of rest pose), its log-mel computed once (float16 in memory).
* Several datasets mix by weight (``train --data A B --data-weight 1 2``): a batch
  element picks a dataset by weight, then an utterance by length, then a segment.
  Real recordings are few beside the synthetic corpus; their weight says how often
  they are seen, whatever their share of the hours.
* Per-frame phone classes (from the utterances' phone timings) for the auxiliary
  phone loss; frames of utterances without timings are ignored (-100).
* :func:`augment_features`: augmentation on the log-mel itself, cheap enough for
  every batch: vocal-tract-length perturbation (a warp of the frequency axis, so
  formants and pitch move as in a shorter or longer vocal tract), telephone or
  codec band limits, a random spectral tilt and a level change;
  :func:`mask_spectrum` hides random bands and spans (SpecAugment's masks), so a
  phone read-out cannot lean on one formant region or one moment;
  :func:`modulate_level` rides the level up and down within a segment (a slow random
  gain curve), meant to stop the mouth following loudness the phones do not call for
  (final11's gap does: partial correlation 0.23); tried, it did not lower that
  correlation (docs/model.md, "Where r is lost, phone by phone"), so it is off by default.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..audio.features import LOG_FLOOR, _LOG_SCALE, _LOG_SHIFT, _hz_to_mel, _mel_to_hz
from ..audio.normalise import frame_speech_weights
from ..audio.torch_features import TorchLogMel
from ..data.format import Dataset
from ..data.phonemes import INVENTORY, frame_labels
from ..model.config import ModelConfig

STD_FLOOR = 0.05
IGNORE = -100
PHONE_INDEX = {p: i for i, p in enumerate(INVENTORY)}
SILENCE = PHONE_INDEX["sil"]


def encoder_lead_steps(cfg: ModelConfig) -> int:
    """Steps of silence the audio encoder's left context needs before a segment's first step."""
    return math.ceil(cfg.left_context_mel / cfg.step_mels)


def silence_steps(cfg: ModelConfig) -> tuple[int, int]:
    """Steps of silence put before every utterance (a full motion context of rest pose, then the
    encoder's left context) and after it (the encoder's look-ahead, and one more)."""
    before = math.ceil(cfg.context_frames / cfg.chunk_frames) + encoder_lead_steps(cfg)
    return before, math.ceil(cfg.lookahead_mel / cfg.step_mels) + 1


def padded_log_mel(audio: np.ndarray, cfg: ModelConfig, mel: TorchLogMel) -> torch.Tensor:
    """The log-mel (float32) of ``audio`` with :func:`silence_steps`' silence around it."""
    before, after = silence_steps(cfg)
    padded = torch.from_numpy(np.concatenate([np.zeros(before * cfg.step_samples, np.float32),
                                              np.asarray(audio, np.float32),
                                              np.zeros(after * cfg.step_samples, np.float32)]))
    with torch.no_grad():
        return mel(padded, padded.numel() // cfg.hop)


def mel_window(mel: torch.Tensor, cfg: ModelConfig, s0: int, s1: int) -> torch.Tensor:
    """The log-mel frames (float32) the encoder reads for steps ``s0``..``s1`` of a padded
    utterance's log-mel: its left context (and the normaliser's history) before, its look-ahead
    after; the silence floor the utterance starts with continues where the array ends."""
    lead = cfg.left_context_mel + max(0, cfg.feature_norm_frames - 1)
    m0, m1 = s0 * cfg.step_mels - lead, s1 * cfg.step_mels + cfg.lookahead_mel
    window = mel[max(m0, 0):m1].float()
    if m0 < 0:  # before the padded utterance: more of the silence floor it starts with
        window = torch.cat([mel[:1].float().expand(-m0, -1), window])
    if window.shape[0] < m1 - m0:
        window = torch.cat([window, window.new_full((m1 - m0 - window.shape[0], window.shape[1]), float(mel[0, 0]))])
    return window


@dataclass
class _Utt:
    source: int
    mel: torch.Tensor      # (M, n_mels) float16, silence-padded
    motion: torch.Tensor   # (S*C, K) float32, rest-padded
    phones: torch.Tensor   # (S*C,) int64 phone class per frame, IGNORE where unknown
    style: int
    steps: int


class TrainingData:
    """All utterances of a split of the given datasets, ready for segment sampling."""

    def __init__(self, sources: list[Dataset], cfg: ModelConfig, split: str, speakers: list[str],
                 max_utts: int | None = None, weights: list[float] | None = None):
        self.cfg = cfg
        mel = TorchLogMel(cfg.sample_rate, cfg.hop, cfg.win_length, cfg.n_fft, cfg.n_mels)
        self.pad_steps, self.tail_steps = silence_steps(cfg)  # silence around every utterance
        self.utts: list[_Utt] = []
        for k, ds in enumerate(sources):
            for entry in ds.entries(split)[: max_utts or None]:
                self.utts.append(self._prepare(ds.load(entry), k, mel, speakers, ds.fps))
        if not self.utts:
            raise ValueError(f"no utterances in split {split!r}")
        w = np.array(weights if weights else [1.0] * len(sources), np.float64)
        present = sorted({u.source for u in self.utts})
        self.source_p = np.array([w[k] if k in present else 0.0 for k in range(len(sources))])
        self.source_p /= self.source_p.sum()
        self.by_source = {k: [i for i, u in enumerate(self.utts) if u.source == k] for k in present}
        self.within_p = {}
        for k, ids in self.by_source.items():
            lengths = np.array([self.utts[i].steps for i in ids], np.float64)
            self.within_p[k] = lengths / lengths.sum()

    def _prepare(self, utt, source: int, mel: TorchLogMel, speakers: list[str], fps: float) -> _Utt:  # type: ignore[no-untyped-def]
        cfg = self.cfg
        feats = padded_log_mel(utt.audio, cfg, mel).to(torch.float16)
        t = utt.motion.shape[0]
        n_pad = self.pad_steps * cfg.chunk_frames
        motion = np.concatenate([np.zeros((n_pad, utt.motion.shape[1]), np.float32), utt.motion])
        steps_total = self.pad_steps + math.ceil(t / cfg.chunk_frames)
        need = steps_total * cfg.chunk_frames - motion.shape[0]
        if need > 0:  # repeat the last frame to fill the final step (tiny)
            motion = np.concatenate([motion, np.repeat(motion[-1:], need, 0)])
        phones = np.full(steps_total * cfg.chunk_frames, IGNORE, np.int64)
        if "phonemes" in utt.extra:
            labels = frame_labels(list(utt.extra["phonemes"]), utt.extra["phonemes_start"],
                                  utt.extra["phonemes_end"], t, fps)
            phones[:n_pad] = SILENCE
            phones[n_pad:n_pad + t] = [PHONE_INDEX.get(lab, IGNORE) for lab in labels]
        style = speakers.index(utt.speaker) + 1 if utt.speaker in speakers else 0
        return _Utt(source, feats, torch.from_numpy(motion), torch.from_numpy(phones), style, steps_total)

    def speech_mean(self, frames: int) -> np.ndarray:
        """The log-mel mean of speech frames (as the normaliser weighs them), sources mixed by
        their sampling weights: the prior :mod:`inference_core.audio.normalise` restores."""
        total = np.zeros(self.cfg.n_mels)
        for k, ids in self.by_source.items():
            acc, weight = np.zeros(self.cfg.n_mels), 0.0
            for i in ids:
                f = self.utts[i].mel.float().numpy().astype(np.float64)
                w = frame_speech_weights(f.mean(1), frames)
                acc += w @ f
                weight += w.sum()
            total += self.source_p[k] * acc / max(weight, 1e-9)
        return total

    def motion_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        allm = torch.cat([u.motion[self.pad_steps * self.cfg.chunk_frames:] for u in self.utts])
        return allm.mean(0), allm.std(0).clamp_min(STD_FLOOR)

    def batch(self, rng: np.random.Generator, batch: int, ctx_steps: int, tgt_steps: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mel windows (B, M, n_mels), motion (B, (ctx+tgt)*C, K), style (B,), phones (B, (ctx+tgt)*C)).

        With feature normalisation on, each mel window starts ``feature_norm_frames - 1`` frames
        earlier (the silence floor before the utterance), the history the normaliser reads;
        :func:`inference_core.audio.normalise.normalise_torch` removes it after augmentation."""
        cfg = self.cfg
        first_ok = encoder_lead_steps(cfg)  # encoder's left context in the array
        mels, motions, styles, phones = [], [], [], []
        sources = rng.choice(len(self.source_p), size=batch, p=self.source_p)
        for k in sources:
            ids = self.by_source[int(k)]
            u = self.utts[ids[int(rng.choice(len(ids), p=self.within_p[int(k)]))]]
            hi = max(first_ok, u.steps - ctx_steps - tgt_steps)
            s0 = int(rng.integers(first_ok, hi + 1))
            s1 = s0 + ctx_steps + tgt_steps
            mel = mel_window(u.mel, cfg, s0, s1)
            f0, f1 = s0 * cfg.chunk_frames, s1 * cfg.chunk_frames
            mot, ph = u.motion[f0:f1], u.phones[f0:f1]
            if mot.shape[0] < f1 - f0:
                mot = torch.cat([mot, mot[-1:].expand(f1 - f0 - mot.shape[0], -1)])
                ph = torch.cat([ph, ph.new_full((f1 - f0 - ph.shape[0],), IGNORE)])
            mels.append(mel)
            motions.append(mot)
            styles.append(u.style)
            phones.append(ph)
        assert mels[0].shape[0] == ((ctx_steps + tgt_steps) * cfg.step_mels + cfg.receptive_field_mel - 1
                                    + max(0, cfg.feature_norm_frames - 1))
        return torch.stack(mels), torch.stack(motions), torch.tensor(styles), torch.stack(phones)


def _mel_centres(n_mels: int, sample_rate: int, fmin: float = 40.0) -> np.ndarray:
    """Centre frequencies (Hz) of the filterbank's bands (as :func:`.features.mel_filterbank`)."""
    mels = np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    return _mel_to_hz(mels)[1:-1]


#: the silence floor and one dB of power, in normalised log-mel units (what the augmentations add to)
SILENCE_FLOOR = (math.log(LOG_FLOOR) + _LOG_SHIFT) / _LOG_SCALE
ONE_DB = math.log(10) / 10 / _LOG_SCALE

#: the vocal-tract-length warp range of :func:`augment_features` (about the spread of adult voices)
VTLP_RANGE = (0.88, 1.12)


def warp_range(text: str) -> tuple[float, float]:
    """``LO,HI`` VTLP warp factors around 1 (argparse type; a factor outside 0.5-2 would move
    formants past any voice)."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {text!r}") from None
    if not 0.5 <= lo <= 1.0 <= hi <= 2.0:
        raise argparse.ArgumentTypeError(f"need 0.5 <= LO <= 1 <= HI <= 2, got {text!r}")
    return lo, hi


def augment_features(mel: torch.Tensor, rng: np.random.Generator, prob: float, sample_rate: int = 16000,
                     vtlp: tuple[float, float] = VTLP_RANGE) -> torch.Tensor:
    """A copy of ``mel`` (B, M, n_mels, normalised log-mel) where each element, with
    probability ``prob``, is perturbed as another voice and channel would be heard.

    * VTLP: band i takes the value the spectrum had at ``f_i / alpha``, alpha drawn from
      ``vtlp`` (default [0.88, 1.12]; alpha > 1: formants and pitch move up, a shorter vocal tract);
    * band limit (a third of the perturbed elements): everything above 3.4-7 kHz drops
      to the silence floor, as through a telephone line or a low-bit-rate codec;
    * spectral tilt up to ±4 dB across the band, and a level change of ±8 dB.
    """
    b, _, n = mel.shape
    out = mel.clone()
    centres = _mel_centres(n, sample_rate)
    for i in range(b):
        if rng.random() >= prob:
            continue
        alpha = rng.uniform(*vtlp)
        pos = np.interp(centres / alpha, centres, np.arange(n))   # fractional source band
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = torch.from_numpy((pos - lo).astype(np.float32)).to(mel.device)
        x = out[i]
        x = x[:, lo] * (1 - frac) + x[:, hi] * frac
        tilt = rng.uniform(-4, 4) * ONE_DB * torch.linspace(-1, 1, n, device=mel.device)
        x = x + tilt + rng.uniform(-8, 8) * ONE_DB
        if rng.random() < 1 / 3:
            cut = int(np.searchsorted(centres, rng.uniform(3400, 7000)))
            x[:, cut:] = SILENCE_FLOOR
        out[i] = torch.clamp(x, min=SILENCE_FLOOR)
    return out


def mask_spectrum(mel: torch.Tensor, rng: np.random.Generator, prob: float, bands: int = 8, frames: int = 10,
                  masks: int = 2) -> torch.Tensor:
    """A copy of ``mel`` (B, M, n_mels) where each element, with probability ``prob``, has ``masks``
    bands of up to ``bands`` mel bins and ``masks`` spans of up to ``frames`` mel frames set to its
    own mean (SpecAugment's frequency and time masks)."""
    out = mel.clone()
    b, m, n = mel.shape
    for i in range(b):
        if rng.random() >= prob:
            continue
        fill = float(out[i].mean())
        for _ in range(masks):
            w = int(rng.integers(0, bands + 1))
            f0 = int(rng.integers(0, max(1, n - w)))
            out[i, :, f0:f0 + w] = fill
            w = int(rng.integers(0, frames + 1))
            t0 = int(rng.integers(0, max(1, m - w)))
            out[i, t0:t0 + w, :] = fill
    return out


def modulate_level(mel: torch.Tensor, rng: np.random.Generator, prob: float, depth_db: float = 6.0,
                   spacing: tuple[int, int] = (10, 40)) -> torch.Tensor:
    """A copy of ``mel`` (B, M, n_mels, normalised log-mel) where each element, with probability
    ``prob``, has a slow random gain added to every band: knots every ``spacing`` mel frames
    (100-400 ms by default, a syllable to a phrase), each up to ``depth_db`` dB up or down, joined
    linearly. Frames at the silence floor stay there (digital silence has no level to ride)."""
    out = mel.clone()
    b, m, _ = mel.shape
    for i in range(b):
        if rng.random() >= prob:
            continue
        step = int(rng.integers(spacing[0], spacing[1] + 1))
        knots = np.arange(0, m + step, step)
        curve = np.interp(np.arange(m), knots, rng.uniform(-depth_db, depth_db, len(knots)))
        gain = torch.from_numpy((curve * ONE_DB).astype(np.float32)).to(mel.device)[:, None]
        x = out[i]
        out[i] = torch.where(x > SILENCE_FLOOR + 1e-6, torch.clamp(x + gain, min=SILENCE_FLOOR), x)
    return out


def prepared_mel(mel: torch.Tensor, rng: np.random.Generator, cfg: ModelConfig, aug_prob: float,
                 vtlp: tuple[float, float] = VTLP_RANGE, level_prob: float = 0.0,
                 level_db: float = 6.0) -> torch.Tensor:
    """A batch's log-mel as the model trains on it: perturbed (:func:`augment_features`) with
    probability ``aug_prob`` and its level ridden (:func:`modulate_level`) with probability
    ``level_prob``, then normalised per speaker if ``cfg`` asks for it, after the
    augmentation, so that the normaliser sees the perturbed voice."""
    if aug_prob > 0:
        mel = augment_features(mel, rng, aug_prob, cfg.sample_rate, vtlp)
    if level_prob > 0:
        mel = modulate_level(mel, rng, level_prob, level_db)
    if cfg.feature_norm_frames:
        from ..audio.normalise import normalise_torch

        mel = normalise_torch(mel, cfg.feature_norm_prior, cfg.feature_norm_frames)
    return mel
