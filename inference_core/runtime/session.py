"""Streaming inference: audio in, motion frames out, constant cost per chunk.

:class:`StreamingSession` is the engine behind the CLI, the bridge server and
the benchmarks. It is numpy only: the networks run in the bundle's backend
(ONNX Runtime or torch, :mod:`.bundle`). Audio of any chunk size is buffered;
whenever enough has arrived for the next autoregressive step
(``chunk_frames`` motion frames plus the encoder's look-ahead), the step runs
with arrays of fixed shape:

1. log-mel for the new mel frames only;
2. the audio encoder, streamed (its state carries what it needs of the past) → audio
   features of the new frames;
3. the condition predictor over the cached last W frames (motion + audio);
4. a few DDIM steps of the diffusion head (:func:`~inference_core.model.diffusion.next_chunk`),
   from noise drawn with numpy's generator for the session's seed, scaled per
   region (mouth / upper face) by the temperatures. The head is prepared once per
   step for all the sampler's times (``backend.denoiser``).

When the upper face is drawn hotter than the mouth (``temperature_upper``), steps 3–4 run
as two chains in one batch, sharing the audio: one draws the whole face at the mouth's
temperature and gives the mouth, the other draws the upper face hot and gives the rest.
Each chain reads its own past motion. Measured on the real-speech dev speakers, one chain
lets the hot eyes and brows cost the lips about 0.06 of /p b m/ closure (half through the
head's joint denoising, half through the motion context). The second row costs 20-40 % more
CPU per step (measured against one chain; README speed table): the audio features are shared,
but the condition predictor runs once per row.

The upper face's chain may also take more DDIM steps than the mouth's (``steps_upper``): two
steps leave blinks short of closing (the sampler's blurred average). The head then runs at every
time of the union of the two grids, the mouth's row moving only at its own times, so its output is
the same as with equal steps; each extra step costs one head pass (of both rows on the float head;
of the upper face's row alone on the int8 head, which skips a row outside its own grid).

Each frame is emitted exactly once and never revised. Because every step has
the same shapes whatever the push sizes were, streaming output equals offline
(whole-file) output for the same seed and settings, on either backend; and the
two backends draw the same noise, so they agree to float rounding.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..audio.features import LogMel
from ..audio.levels import LevelGuard
from ..audio.normalise import RunningNorm
from ..model.diffusion import head_times, next_chunk, row_head_times
from ..shared.channels import MOUTH_CHANNELS
from ..shared.options import SessionError, SessionOptions
from .bundle import ModelBundle
from .postfilter import ArticulationFilter, PhoneticGain, running_mean

__all__ = ["StreamingSession", "SessionError", "SessionOptions", "NonFiniteOutput", "noise_scale", "region_chains"]


class NonFiniteOutput(SessionError):
    """The networks produced NaN or infinity (a damaged or hostile model): no such frame is emitted."""


def noise_scale(channels: list[str], chunk_frames: int, options: SessionOptions) -> np.ndarray:
    """Per-element scale of the initial noise (C*K,): ``temperature`` on the mouth channels,
    ``temperature_upper`` on the rest (eyes, brows, cheeks, nose). Channels that are not
    ARKit (a vertex-space model's coefficients) are one region at ``temperature``."""
    mouth = set(MOUTH_CHANNELS)
    arkit = any(c in mouth for c in channels)
    per_channel = np.array([options.temperature if (c in mouth or not arkit) else options.upper_temperature
                            for c in channels], np.float32)
    return np.tile(per_channel, chunk_frames)


def region_chains(channels: list[str], options: SessionOptions, objective: str) -> np.ndarray | None:
    """Which channels each chain gives, (2, K) booleans: row 0 (drawn at ``temperature``) the
    mouth, row 1 (drawn per region, :func:`noise_scale`, in ``steps_upper`` steps) the rest;
    None when one chain suffices (one temperature and step count, a regressor, or no ARKit mouth)."""
    mouth = np.array([c in MOUTH_CHANNELS for c in channels])
    same = options.upper_temperature == options.temperature and options.upper_steps == options.steps
    if objective != "diffusion" or not mouth.any() or same:
        return None
    return np.stack([mouth, ~mouth])


class StreamingSession:
    #: a guided step runs each network once on the rows with and without audio (False: once per
    #: row, the reference the tests compare it with)
    paired_guidance = True
    #: two chains when the upper face is hotter than the mouth (False: one chain drawn per
    #: region, the cheaper scheme the tests compare with)
    region_chains = True

    def __init__(self, bundle: ModelBundle, options: SessionOptions | None = None):
        self.bundle = bundle
        self.backend = backend = bundle.backend
        self.cfg = cfg = bundle.cfg
        self.options = (options or SessionOptions()).validated()
        self._mel = LogMel(cfg.sample_rate, cfg.hop, cfg.win_length, cfg.n_fft, cfg.n_mels)
        self._norm = (RunningNorm(cfg.feature_norm_prior, cfg.feature_norm_frames, self._mel.floor_frame())
                      if cfg.feature_norm_frames else None)
        #: clips pushed audio to full scale; ``level.warning()`` says when it had to
        self.level = LevelGuard(cfg.sample_rate)
        self._rng = np.random.default_rng(self.options.seed)
        per_region = noise_scale(bundle.channels, cfg.chunk_frames, self.options)
        self._chains = region_chains(bundle.channels, self.options, cfg.objective) if self.region_chains else None
        # One row of noise scale per chain: the mouth's chain is drawn at the mouth's temperature.
        self._noise_scale = (per_region[None] if self._chains is None else
                             np.stack([np.full_like(per_region, self.options.temperature), per_region]))
        # one step count per chain when the upper face takes its own (the mouth's row moves at its own times)
        opt = self.options
        self._steps: int | tuple[int, ...] = (opt.steps if self._chains is None or opt.upper_steps == opt.steps
                                              else (opt.steps, opt.upper_steps))
        self._times = head_times(cfg.objective, self._steps)
        #: per chain, the DDIM times the sampler reads its row at (None: every row at every time)
        self._row_times = (None if isinstance(self._steps, int) or cfg.objective != "diffusion" else
                           row_head_times(self._steps))
        self._style_vec = backend.style_vector(bundle.style_index(self.options.style))
        # Mel frames with negative index are the pre-stream silence floor.
        self._audio_state, silence_feat = backend.audio_stream_start(self._mel.floor_frame())
        self._audio_hist = np.repeat(silence_feat, cfg.context_frames, 0)
        rest = bundle.normalise(np.zeros((cfg.context_frames, cfg.num_channels), np.float32))
        self._motion_hist = np.repeat(rest[None], len(self._noise_scale), 0)  # (chains, W, K)
        self._samples = np.zeros(0, np.float32)
        self._samples_start = 0      # absolute index of self._samples[0]
        self._received = 0           # samples pushed so far
        self._next_mel = 0           # first mel frame not yet computed
        self._step = 0               # next autoregressive step
        self._emitted = 0            # frames emitted
        self._smooth_state: np.ndarray | None = None
        #: the mouth's lost range given back (None: the card has no gains, or articulation 0)
        self._articulation = ArticulationFilter.from_card(bundle.card, cfg.fps, self.options.articulation)
        #: the mouth opened as far as the phones it hears ask (None: the card has none, or phonetic 0)
        self._phonetic = PhoneticGain.from_card(bundle.card, bundle.extra, cfg.fps, self.options.phonetic)
        self._finished = False
        lo_hi = bundle.value_range
        self._lo = None if lo_hi is None else float(lo_hi[0])
        self._hi = None if lo_hi is None else float(lo_hi[1])

    # -- public API ----------------------------------------------------
    @property
    def frames_emitted(self) -> int:
        return self._emitted

    @property
    def audio_seconds(self) -> float:
        return self._received / self.cfg.sample_rate

    def push(self, pcm: np.ndarray) -> np.ndarray:
        """Add mono float PCM at the model's sample rate; return the frames now complete (n, K)."""
        if self._finished:
            raise SessionError("session already flushed")
        pcm = np.asarray(pcm)
        if pcm.ndim != 1:
            raise SessionError(f"audio must be mono, a 1-D array (got shape {pcm.shape})")
        if pcm.size == 0:
            return self._empty()
        if not np.issubdtype(pcm.dtype, np.floating):
            raise SessionError(f"audio must be float samples in [-1, 1] (got {pcm.dtype})")
        if not np.isfinite(pcm).all():
            bad = int(np.argmin(np.isfinite(pcm)))
            raise SessionError(f"audio contains NaN or infinite samples (first at "
                               f"{(self._received + bad) / self.cfg.sample_rate:.3f} s)")
        self._samples = np.concatenate([self._samples, self.level(pcm)])
        self._received += pcm.size
        return self._run_ready_steps(final=False)

    def flush(self) -> np.ndarray:
        """End of audio: pad with silence, emit the remaining frames up to the audio's length."""
        if self._finished:
            return self._empty()
        self._finished = True
        return self._run_ready_steps(final=True)

    def total_frames(self) -> int:
        return int(round(self._received * self.cfg.fps / self.cfg.sample_rate))

    # -- internals -----------------------------------------------------
    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.cfg.num_channels), np.float32)

    def _step_ready(self, final: bool) -> bool:
        cfg = self.cfg
        if final:
            return self._step * cfg.chunk_frames < self.total_frames()
        last_mel = (self._step + 1) * cfg.step_mels + cfg.lookahead_mel  # exclusive
        return self._received >= last_mel * cfg.hop

    def _run_ready_steps(self, final: bool) -> np.ndarray:
        out = []
        while self._step_ready(final):
            out.append(self._run_step())
        if not out:
            return self._empty()
        frames = np.concatenate(out)
        if final:
            frames = frames[: max(0, self.total_frames() - self._emitted)]
        self._emitted += len(frames)
        return frames

    def _run_step(self) -> np.ndarray:
        cfg, b, opt = self.cfg, self.backend, self.options
        # 1. new mel frames up to this step's look-ahead
        upto = (self._step + 1) * cfg.step_mels + cfg.lookahead_mel
        new_mel = self._mel(self._samples, self._next_mel, upto - self._next_mel, self._samples_start)
        if self._norm is not None:
            new_mel = self._norm(new_mel)
        self._next_mel = upto
        self._trim_samples()
        # 2. audio features of the new frames
        feat, self._audio_state = b.audio_stream(new_mel, self._audio_state)  # (C, d)
        history = np.concatenate([self._audio_hist, feat])
        chains = self.chains
        audio = np.repeat(history[None], chains, 0)
        self._audio_hist = history[-cfg.context_frames:]
        # 3-4. condition and few-step DDIM in normalised motion space, one row per chain
        size = (chains, cfg.chunk_frames * cfg.num_channels)
        if cfg.objective == "regression":
            noise = np.zeros(size, np.float32)
        else:
            noise = self._rng.standard_normal(size, dtype=np.float32) * self._noise_scale
        past = self._motion_hist
        # The sampler's "condition" is the head prepared for it at all of this step's times.
        x0 = next_chunk(lambda keep: self._denoiser(self._condition(audio, past, keep)),
                        lambda x, t, denoise: denoise(x, t), noise, cfg.objective, self._steps, opt.guidance,
                        paired=self.paired_guidance)
        motion = self.bundle.denormalise(x0.reshape(chains, cfg.chunk_frames, cfg.num_channels))
        if not np.isfinite(motion).all():
            raise NonFiniteOutput(f"the model produced NaN or infinite motion at frame {self._step * cfg.chunk_frames}; "
                                  "the model file is damaged (nothing from this step was emitted)")
        motion = self._in_range(motion)
        # Each chain reads back its own (range-clamped) raw output: articulation, intensity and
        # smoothing are display-only.
        self._motion_hist = np.concatenate([self._motion_hist, self.bundle.normalise(motion)], 1)[:, -cfg.context_frames:]
        self._step += 1
        frames = motion[0] if self._chains is None else np.where(self._chains[0], motion[0], motion[1])
        return self._post(frames.astype(np.float32), feat)

    @property
    def chains(self) -> int:
        """How many chains each step draws (2: the mouth and the upper face apart, see the module doc)."""
        return len(self._noise_scale)

    def _denoiser(self, cond: np.ndarray) -> Callable[[np.ndarray, float], np.ndarray]:
        """The head prepared for this step's times and rows (a guided pair's rows repeat the chains)."""
        rows = None if self._row_times is None else self._row_times * (len(cond) // len(self._row_times))
        return self.backend.denoiser(cond, self._times, rows)

    def _condition(self, audio: np.ndarray, past: np.ndarray, keep: float | tuple[float, ...]) -> np.ndarray:
        """The condition for one ``keep``, or for several (a guided step's pair) as one batch of
        the inputs repeated, one row each."""
        rows = audio.shape[0]  # one per chain
        if isinstance(keep, tuple):
            n = len(keep)
            return self.backend.condition(np.concatenate([audio] * n), np.concatenate([past] * n),
                                          np.repeat(self._style_vec, n * rows, 0),
                                          np.repeat(np.asarray(keep, np.float32), rows))
        return self.backend.condition(audio, past, np.repeat(self._style_vec, rows, 0), keep)

    def _in_range(self, motion: np.ndarray) -> np.ndarray:
        """``motion`` clipped to the model's value range (as it is, for a model without one)."""
        return motion if self._lo is None else np.clip(motion, self._lo, self._hi)

    def _post(self, motion: np.ndarray, features: np.ndarray) -> np.ndarray:
        opt = self.options
        if self._articulation is not None:
            motion = self._in_range(self._articulation(motion))
        if self._phonetic is not None:
            motion = self._in_range(self._phonetic(motion, features))
        if opt.intensity != 1.0:
            motion = self._in_range(motion * opt.intensity)
        if opt.smoothing > 0:
            motion = running_mean(motion, opt.smoothing,
                                  motion[0] if self._smooth_state is None else self._smooth_state)
            self._smooth_state = motion[-1].copy()
        return motion

    def _trim_samples(self) -> None:
        # first sample the next mel frame needs
        keep_from = (self._next_mel + 1) * self.cfg.hop - self.cfg.win_length
        drop = min(keep_from - self._samples_start, self._samples.size)
        if drop > 0:
            self._samples = self._samples[drop:].copy()
            self._samples_start += drop
