"""Evaluation: ``python -m inference_core eval --model M --data DIR --json``.

On the held-out voices of a dataset (``split == "val"``), with the same
streaming engine users run:

* ``mouth_mae``          mean |error| over the mouth channels (ARKit weight units)
* ``jaw_corr``           Pearson correlation of predicted vs. reference jawOpen
* ``lip_closure_acc``    share of /p b m/ phonemes whose mid-frame has closed lips
                         on a real ARKit-rigged head (ICT FaceKit)
* ``rounding_contrast``  funnel+pucker on /u w o/ frames minus on other frames
* ``spread_contrast``    stretch+smile on /i e/ frames minus on other frames
* ``lve_mm``             lip vertex error on that head: per frame the largest
                         error over the 20 mouth landmarks, averaged (mm)
* ``diversity``          mean std across seeds (a deterministic model gives 0)
* ``drift``              mouth error per minute over a 10-minute stream, and its ratio
                         to the same utterances generated as separate clips
* ``blinks_per_minute``, ``blink_completeness`` (share of blinks whose lids reach 0.8),
  ``upper_fdd`` (upper-face dynamics deviation: |std over time - the reference's| per
  upper-face channel) and ``upper_std_ratio``, for every predictor and the reference

``--lipsync DIR`` adds the lip_metrics.py figures on real recordings (:mod:`.lipsync`).

Baselines in the same run: ``amplitude_jaw`` (an audio-envelope jaw, what
Blender's *Bake Sound to F-Curves* gives, with scale fitted on the training
split) and a deterministic regressor checkpoint (``--regressor``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..shared.channels import ARKIT_52, MOUTH_CHANNELS, normalise_name
from ..data.format import Dataset, Utterance
from ..data.phonemes import CLASSES, frame_classes

ICT_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "assets" / "ict_face" / "ict_face_arkit.npz"
MOUTH_LANDMARKS = list(range(48, 68))
BILABIAL = CLASSES["bilabial"]


def phone_class(label: str) -> str:
    """Normalise a phoneme label (ARPAbet-like, any case, stress digits) to a bare symbol."""
    return "".join(ch for ch in str(label).lower() if ch.isalpha())


class ArkitFace:
    """A real ARKit-rigged head (ICT FaceKit) to measure lip geometry of channel output."""

    def __init__(self, path: str | Path = ICT_DEFAULT, channels: list[str] = list(ARKIT_52)):
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            lm = z["landmarks68"].astype(int)
            self.idx = lm[MOUTH_LANDMARKS]
            neutral = z["neutral"].astype(np.float32)[self.idx]
            deltas = z["deltas"][:, self.idx].astype(np.float32)
            self.units_to_mm = 10.0  # ICT FaceKit is in centimetres
        by_key = {normalise_name(n): i for i, n in enumerate(names)}
        basis = np.zeros((len(channels), len(self.idx), 3), np.float32)
        for c, ch in enumerate(channels):
            key = normalise_name(ch)
            parts = [by_key[key]] if key in by_key else [
                by_key[k] for k in (key + "left", key + "right") if k in by_key]  # ICT splits some
            for p in parts:
                basis[c] += deltas[p]
        self.neutral, self.basis = neutral, basis
        self.upper, self.lower = MOUTH_LANDMARKS.index(62), MOUTH_LANDMARKS.index(66)

    def mouth_points(self, weights: np.ndarray) -> np.ndarray:
        """(T, K) channel weights → (T, 20, 3) mouth landmark positions."""
        return self.neutral + np.einsum("tk,kvd->tvd", weights, self.basis)

    def lip_gap_mm(self, weights: np.ndarray) -> np.ndarray:
        p = self.mouth_points(weights)
        return np.linalg.norm(p[:, self.upper] - p[:, self.lower], axis=-1) * self.units_to_mm


def utterance_classes(utt: Utterance, n_frames: int, fps: float) -> dict[str, np.ndarray]:
    """Per-frame phoneme-class masks (frame-centre rule of :mod:`.data.phonemes`)."""
    if "phonemes" not in utt.extra:
        return {name: np.zeros(n_frames, bool) for name in CLASSES}
    return frame_classes(list(utt.extra["phonemes"]), utt.extra["phonemes_start"],
                         utt.extra["phonemes_end"], n_frames, fps)[1]


def bilabial_mid_frames(utt: Utterance, n_frames: int, fps: float) -> list[int]:
    if "phonemes" not in utt.extra:
        return []
    out = []
    for lab, s, e in zip(utt.extra["phonemes"], utt.extra["phonemes_start"], utt.extra["phonemes_end"]):
        if phone_class(lab) in BILABIAL:
            f = int(round((s + e) / 2 * fps - 0.5))
            if 0 <= f < n_frames:
                out.append(f)
    return out


def amplitude_jaw(audio: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """Envelope follower like *Bake Sound to F-Curves*: RMS per frame, attack/release smoothing."""
    hop = sr / fps
    env = np.zeros(n_frames, np.float32)
    for f in range(n_frames):
        seg = audio[int(f * hop): int((f + 1) * hop)]
        env[f] = math.sqrt(float(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0
    out = np.zeros_like(env)
    level = 0.0
    for f, v in enumerate(env):
        level += (0.6 if v > level else 0.25) * (v - level)
        out[f] = level
    return out


class Predictor:
    def __init__(self, name: str, fn: Callable[[Utterance, int], np.ndarray]):
        self.name, self.fn = name, fn


def model_predictor(path: str, backend: str = "auto", threads: int | None = None,
                    **overrides: Any) -> Predictor:
    """The model as users run it: a fresh streaming session per utterance, the card's tuned
    defaults under ``overrides`` (None: keep the card's), its default style among them."""
    from ..runtime.bundle import load_bundle

    return bundle_predictor(load_bundle(path, backend=backend, threads=threads), Path(path).stem, **overrides)


def bundle_predictor(bundle: Any, name: str = "model", **overrides: Any) -> Predictor:
    """:func:`model_predictor` for a model already loaded (a :class:`~inference_core.runtime.bundle.ModelBundle`,
    perhaps with an edited card); ``name`` when its card has none."""
    from ..runtime.session import StreamingSession
    from ..shared.options import SessionOptions

    def run(utt: Utterance, seed: int) -> np.ndarray:
        s = StreamingSession(bundle, SessionOptions.resolve(bundle.card, {**overrides, "seed": seed}))
        return np.concatenate([s.push(utt.audio), s.flush()])

    return Predictor(bundle.card.get("name", name), run)


def fit_amplitude_baseline(ds: Dataset, max_utts: int = 200) -> Predictor:
    jaw = ds.channels.index("jawOpen")
    xs, ys, means = [], [], []
    for entry in ds.entries("train")[:max_utts]:
        u = ds.load(entry)
        env = amplitude_jaw(u.audio, ds.sample_rate, ds.fps, u.motion.shape[0])
        xs.append(env)
        ys.append(u.motion[:, jaw])
        means.append(u.motion.mean(0))
    x, y = np.concatenate(xs), np.concatenate(ys)
    a, b = np.polyfit(x, y, 1)
    mean = np.mean(means, axis=0).astype(np.float32)

    def run(utt: Utterance, seed: int) -> np.ndarray:
        n = utt.motion.shape[0]
        out = np.tile(mean, (n, 1))
        out[:, jaw] = np.clip(a * amplitude_jaw(utt.audio, ds.sample_rate, ds.fps, n) + b, 0, 1)
        return out

    return Predictor("amplitude_jaw", run)


#: A blink starts when the lids pass this closure and ends when they fall below the second;
#: complete blinks reach the third.
BLINK_ON, BLINK_OFF, BLINK_COMPLETE = 0.4, 0.2, 0.8


def blinks(motion: np.ndarray, channels: list[str]) -> list[float]:
    """The peak lid closure of each blink in ``motion`` (T, K): mean of eyeBlinkLeft/Right,
    an episode above ``BLINK_ON`` that ends below ``BLINK_OFF`` (hysteresis, so jitter
    around one threshold is not many blinks)."""
    idx = [channels.index(c) for c in ("eyeBlinkLeft", "eyeBlinkRight") if c in channels]
    if not idx:
        return []
    lid = motion[:, idx].mean(1)
    peaks, inside, peak = [], False, 0.0
    for v in lid:
        if not inside and v > BLINK_ON:
            inside, peak = True, float(v)
        elif inside:
            peak = max(peak, float(v))
            if v < BLINK_OFF:
                peaks.append(peak)
                inside = False
    if inside:
        peaks.append(peak)
    return peaks


def upper_face_scores(preds: list[np.ndarray], refs: list[np.ndarray], channels: list[str], fps: float
                      ) -> dict[str, Any]:
    """Blink rate and completeness, and upper-face dynamics against the reference.

    ``upper_fdd``: FDD-style upper-face dynamics deviation, the mean over upper-face
    channels (not jaw/mouth/cheekPuff/tongue) of |std over time of the prediction -
    that of the reference|, each per utterance, averaged over utterances;
    ``upper_std_ratio``: mean predicted std / mean reference std (1 = as lively,
    a regressor that averages blinks away gives far less)."""
    upper = [i for i, c in enumerate(channels) if c not in MOUTH_CHANNELS]
    minutes = sum(len(p) for p in preds) / fps / 60
    peaks_p = [b for p in preds for b in blinks(p, channels)]
    peaks_t = [b for t in refs for b in blinks(t, channels)]
    fdd, std_p, std_t = [], [], []
    for p, t in zip(preds, refs):
        sp, st = p[:, upper].std(0), t[:, upper].std(0)
        fdd.append(float(np.abs(sp - st).mean()))
        std_p.append(float(sp.mean()))
        std_t.append(float(st.mean()))
    return {
        "blinks_per_minute": len(peaks_p) / minutes if minutes > 0 else None,
        "blink_completeness": float(np.mean([b >= BLINK_COMPLETE for b in peaks_p])) if peaks_p else None,
        "blinks_per_minute_reference": len(peaks_t) / minutes if minutes > 0 else None,
        "blink_completeness_reference": float(np.mean([b >= BLINK_COMPLETE for b in peaks_t])) if peaks_t else None,
        "upper_fdd": float(np.mean(fdd)) if fdd else None,
        "upper_std_ratio": float(np.mean(std_p) / np.mean(std_t)) if std_t and np.mean(std_t) > 0 else None,
    }


def _contrast(values: list[np.ndarray], in_class: list[np.ndarray]) -> float | None:
    """Mean of ``values`` over the class's frames minus their mean over the other frames
    (None: no frames on one side)."""
    v, m = np.concatenate(values), np.concatenate(in_class)
    return float(v[m].mean() - v[~m].mean()) if m.any() and not m.all() else None


def score(pred_fn: Predictor, utts: list[Utterance], ds: Dataset, face: ArkitFace | None,
          seeds: int = 3) -> dict[str, Any]:
    ch = ds.channels
    mouth = [ch.index(c) for c in MOUTH_CHANNELS if c in ch]
    jaw = ch.index("jawOpen")
    rnd = [ch.index(c) for c in ("mouthFunnel", "mouthPucker")]
    spr = [ch.index(c) for c in ("mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight")]
    jaw_p, jaw_t, lve, closed, closed_ref, diversity = [], [], [], [], [], []
    rnd_p, rnd_t, is_rnd, spr_p, spr_t, is_spr = [], [], [], [], [], []
    mouth_err: list[np.ndarray] = []
    speed_p, speed_t = [], []  # frame-to-frame change of the mouth channels
    open_gap_ref = []
    whole_p, whole_t = [], []
    for u in utts:
        preds = [pred_fn.fn(u, seed) for seed in range(seeds)]
        p = preds[0]
        t = u.motion[: len(p)]
        p = p[: len(t)]
        whole_p.append(p)
        whole_t.append(t)
        mouth_err.append(np.abs(p[:, mouth] - t[:, mouth]))
        speed_p.append(np.abs(np.diff(p[:, mouth], axis=0)).sum(1))
        speed_t.append(np.abs(np.diff(t[:, mouth], axis=0)).sum(1))
        jaw_p.append(p[:, jaw])
        jaw_t.append(t[:, jaw])
        diversity.append(np.std(np.stack([q[: len(t)] for q in preds]), axis=0).mean(1))
        masks = utterance_classes(u, len(t), ds.fps)
        is_rnd.append(masks["rounded"]); is_spr.append(masks["spread"])
        rnd_p.append(p[:, rnd].sum(1)); rnd_t.append(t[:, rnd].sum(1))
        spr_p.append(p[:, spr].sum(1)); spr_t.append(t[:, spr].sum(1))
        if face is not None:
            err = np.linalg.norm(face.mouth_points(p) - face.mouth_points(t), axis=-1) * face.units_to_mm
            lve.append(err.max(1))
            mids = bilabial_mid_frames(u, len(t), ds.fps)
            gp, gt = face.lip_gap_mm(p), face.lip_gap_mm(t)
            vowels = masks["open"]
            if vowels.any():
                open_gap_ref.append(gt[vowels])
            closed.append(gp[mids])
            closed_ref.append(gt[mids])
    all_mouth_err = np.concatenate(mouth_err)  # (frames, mouth channels)
    jaw_all_p, jaw_all_t = np.concatenate(jaw_p), np.concatenate(jaw_t)
    ref_speed = float(np.concatenate(speed_t).mean())
    res: dict[str, Any] = {
        "mouth_mae": float(all_mouth_err.mean()),
        "jaw_corr": float(np.corrcoef(jaw_all_p, jaw_all_t)[0, 1]) if jaw_all_p.std() > 1e-8 else 0.0,
        "rounding_contrast": _contrast(rnd_p, is_rnd),
        "spread_contrast": _contrast(spr_p, is_spr),
        "diversity": float(np.concatenate(diversity).mean()),
        # liveliness against the reference (1 = as lively; a mean predictor is muted, < 1)
        "jaw_std_ratio": float(jaw_all_p.std() / jaw_all_t.std()) if jaw_all_t.std() > 0 else None,
        "mouth_speed_ratio": float(np.concatenate(speed_p).mean() / ref_speed) if ref_speed > 0 else None,
        # what the reference motion itself does: the level a contrast should reach, not exceed
        "rounding_contrast_reference": _contrast(rnd_t, is_rnd),
        "spread_contrast_reference": _contrast(spr_t, is_spr),
        "mouth_mae_per_channel": {ch[c]: round(float(e), 5) for c, e in zip(mouth, all_mouth_err.mean(0))},
        **upper_face_scores(whole_p, whole_t, ch, ds.fps),
    }
    if face is not None and closed:
        ref_open = float(np.median(np.concatenate(open_gap_ref))) if open_gap_ref else 10.0
        thr = max(1.0, 0.2 * ref_open)  # closed: gap under 20 % of a typical open-vowel gap
        allc, allr = np.concatenate(closed), np.concatenate(closed_ref)
        res.update({
            "lve_mm": float(np.concatenate(lve).mean()),
            "lip_closure_acc": float((allc < thr).mean()) if allc.size else None,
            "lip_closure_acc_reference": float((allr < thr).mean()) if allr.size else None,
            "lip_closure_threshold_mm": round(thr, 2), "bilabials": int(allc.size),
        })
    return res


def aligned_cut(n_samples: int, n_frames: int, sr: int, fps: float) -> tuple[int, int]:
    """(samples, frames) to keep of an utterance so that both cover exactly the same time.

    Concatenated utterances must not shift audio against motion at the seams. A
    clip's frame count is rounded from its sample count, so it can claim up to
    half a frame more than its audio; and 1/fps is not a whole number of samples
    at 16 kHz / 30 fps. Cut to the longest span that is a whole number of both
    (at 16 kHz / 30 fps: multiples of 3 frames = 1600 samples)."""
    from fractions import Fraction

    ratio = Fraction(sr) / Fraction(fps).limit_denominator(1000)  # samples per frame
    block_frames = ratio.denominator                                # frames per whole-sample block
    block_samples = int(ratio * block_frames)
    blocks = min(n_samples // block_samples, n_frames // block_frames)
    if blocks == 0:  # an odd frame rate: nearest whole sample (error under half a sample per seam)
        frames = min(n_frames, int(n_samples * fps / sr))
        return int(round(frames * sr / fps)), frames
    return blocks * block_samples, blocks * block_frames


def drift(pred: Predictor, utts: list[Utterance], ds: Dataset, minutes: float) -> dict[str, Any]:
    """Mouth error per minute along one long stream of concatenated held-out utterances,
    next to the error of the same utterances generated as separate clips.

    Content changes from minute to minute, so the stream's error alone mixes drift
    with difficulty; the per-minute ratio stream / clips on the same frames is the
    drift (1.0 = a long stream is as good as short clips)."""
    sr, fps = ds.sample_rate, ds.fps
    audio, motion, clips = [], [], []
    clip_cache: dict[int, np.ndarray] = {}
    total = 0
    i = 0
    while total < minutes * 60 * sr:
        k = i % len(utts)
        u = utts[k]
        n, frames = aligned_cut(len(u.audio), u.motion.shape[0], sr, fps)
        m = u.motion[:frames]
        if k not in clip_cache:
            clip_cache[k] = pred.fn(Utterance(u.id, u.speaker, u.split, u.audio[:n], m), 0)[: len(m)]
        audio.append(u.audio[:n])
        motion.append(m)
        clips.append(clip_cache[k])
        total += n
        i += 1
    long_utt = Utterance("long", "val", "val", np.concatenate(audio), np.concatenate(motion))
    p = pred.fn(long_utt, 0)
    c = np.concatenate(clips)
    n_frames = min(len(p), len(c), len(long_utt.motion))
    p, c, t = p[:n_frames], c[:n_frames], long_utt.motion[:n_frames]
    mouth = [ds.channels.index(ch) for ch in MOUTH_CHANNELS if ch in ds.channels]
    err = np.abs(p[:, mouth] - t[:, mouth]).mean(1)
    err_clip = np.abs(c[:, mouth] - t[:, mouth]).mean(1)
    per = int(60 * fps)
    mins = range(int(n_frames // per))
    per_min = [float(err[k * per:(k + 1) * per].mean()) for k in mins]
    per_min_clip = [float(err_clip[k * per:(k + 1) * per].mean()) for k in mins]
    ratio = [a / b if b > 0 else None for a, b in zip(per_min, per_min_clip)]
    tail = [r for r in ratio[-3:] if r is not None]
    return {"minutes": round(n_frames / fps / 60, 2), "mouth_mae_per_minute": per_min,
            "clip_mouth_mae_per_minute": per_min_clip, "stream_vs_clips_per_minute": ratio,
            "stream_vs_clips_last3": float(np.mean(tail)) if tail else None,
            "stream_vs_clips_all": float(err.mean() / err_clip.mean()) if err_clip.mean() > 0 else None,
            "last_vs_first_minute": per_min[-1] / per_min[0] if per_min and per_min[0] > 0 else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference_core eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default: bundled)")
    ap.add_argument("--data", default=None, help="dataset folder with a held-out split")
    ap.add_argument("--split", default="val", help="held-out split to score (val, or tune)")
    ap.add_argument("--train-data", default=None,
                    help="dataset whose train split fits the amplitude baseline (default: --data)")
    ap.add_argument("--lipsync", default=None, metavar="DIR",
                    help="real speech in the lip_metrics format (NAME.wav + NAME.json): its figures for "
                         "the model, --regressor, the amplitude jaw and the teacher, per speaker/language/sex")
    ap.add_argument("--lip-metrics", default=None, help="path of lip_metrics.py (default: ../shared/tools)")
    ap.add_argument("--regressor", default=None, help="deterministic baseline checkpoint")
    ap.add_argument("--face", default=str(ICT_DEFAULT), help="ICT FaceKit ARKit npz (lip metrics)")
    ap.add_argument("--max-utts", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--drift-minutes", type=float, default=10.0, help="0 to skip")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--temperature-upper", type=float, default=None)
    ap.add_argument("--steps-upper", type=int, default=None)
    ap.add_argument("--smoothing", type=float, default=None)
    ap.add_argument("--articulation", type=float, default=None,
                    help="0: the model's output as it is; 1: the card's articulation gains (default)")
    ap.add_argument("--phonetic", type=float, default=None,
                    help="the card's phonetic gain: 0 = off (default), 1 = as fitted")
    ap.add_argument("--style", default=None, help="style index or name (default: the card's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backend", choices=["auto", "onnx", "onnx-fp32", "torch"], default="auto",
                    help="onnx-fp32: ONNX Runtime with the float head (onnx uses the int8 one on a CPU)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    from ..shared.options import SessionOptions
    from ..shared.paths import DEFAULT_MODEL

    if not args.data and not args.lipsync:
        ap.error("give --data (a dataset with a held-out split), --lipsync (real speech), or both")
    model_path = args.model or str(DEFAULT_MODEL)
    overrides = SessionOptions.given(args)  # the flags eval has; the seed is set per utterance
    result: dict[str, Any] = {"model": model_path}
    if args.data:
        code = _score_dataset(args, model_path, overrides, result)
        if code:
            return code
    if args.lipsync:
        from . import lipsync

        predictors: dict[str, Any] = {
            "model": lipsync.model_weights(model_path, args.backend, args.threads, **overrides)}
        if args.regressor:
            predictors["regressor"] = lipsync.model_weights(args.regressor, args.backend, args.threads)
        predictors["amplitude_jaw"] = None
        predictors["teacher"] = lipsync.teacher_weights()
        result["real_speech"] = lipsync.report(args.lipsync, predictors,
                                               args.lip_metrics or lipsync.LIP_METRICS_DEFAULT,
                                               progress=not args.json)
    text = json.dumps(result, indent=None if args.json else 2)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


def _score_dataset(args: argparse.Namespace, model_path: str, overrides: dict[str, Any],
                   result: dict[str, Any]) -> int:
    """The dataset part of ``eval``: scores on the held-out split, baselines, drift (into ``result``)."""
    ds = Dataset(args.data)
    if ds.channel_space != "arkit":
        print("error: eval currently scores ARKit-channel datasets", file=sys.stderr)
        return 2
    utts = [ds.load(e) for e in ds.entries(args.split)[: args.max_utts]]
    if not utts:
        print(f"error: the dataset has no {args.split!r} split", file=sys.stderr)
        return 2
    fit_ds = Dataset(args.train_data) if args.train_data else ds
    if not fit_ds.entries("train"):
        print("error: the amplitude baseline is fitted on a train split; this dataset has none "
              "(pass --train-data CORPUS)", file=sys.stderr)
        return 2
    face = ArkitFace(args.face) if args.face and Path(args.face).exists() else None
    main_pred = model_predictor(model_path, args.backend, args.threads, **overrides)
    result.update({
        "data": str(args.data), "split": args.split, "val_utterances": len(utts),
        "val_speakers": sorted({u.speaker for u in utts}),
        "val_seconds": round(sum(u.audio.size for u in utts) / ds.sample_rate, 1),
        "face": str(args.face) if face else None,
        "model_scores": score(main_pred, utts, ds, face, args.seeds),
        "baselines": {"amplitude_jaw": score(fit_amplitude_baseline(fit_ds), utts, ds, face, 1)},
    })
    if args.regressor:
        result["baselines"]["regressor"] = score(model_predictor(args.regressor, args.backend, args.threads),
                                                 utts, ds, face, 1)
    if args.drift_minutes > 0:
        result["drift"] = drift(main_pred, utts, ds, args.drift_minutes)
        result["drift"]["clip_mouth_mae"] = result["model_scores"]["mouth_mae"]
    return 0
