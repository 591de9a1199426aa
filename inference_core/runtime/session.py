"""Streaming inference: audio in, motion frames out, constant cost per chunk.

:class:`StreamingSession` is the engine behind the CLI, the bridge server and
the benchmarks. Audio of any chunk size is buffered; whenever enough has
arrived for the next autoregressive step (``chunk_frames`` motion frames plus
the encoder's look-ahead), the step runs with tensors of fixed shape:

1. log-mel for the new mel frames only (older ones are kept in a short ring);
2. the audio encoder over a fixed window → audio features of the new frames;
3. the condition predictor over the cached last W frames (motion + audio);
4. a few DDIM steps of the diffusion head (with classifier-free guidance).

Each frame is emitted exactly once and never revised. Because every step has
the same shapes whatever the push sizes were, streaming output equals offline
(whole-file) output for the same seed and settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..audio.features import LogMel
from ..model.network import StreamingTalker


class SessionError(ValueError):
    """Bad session input (options or audio); the message is meant for the user."""


@dataclass
class SessionOptions:
    seed: int = 0
    steps: int = 5               # DDIM steps per autoregressive step
    guidance: float = 1.5        # classifier-free guidance on audio (1 = off)
    style: int | str = 0         # style index or name from the model card
    intensity: float = 1.0       # scales motion away from the neutral pose
    smoothing: float = 0.0       # causal one-pole smoothing of the output, 0..0.95
    temperature: float = 1.0     # scale of the initial diffusion noise (0 = most likely motion)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SessionOptions":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and d[k] is not None}
        return cls(**known).validated()

    def validated(self) -> "SessionOptions":
        try:
            self.seed = int(self.seed)
            self.steps = int(self.steps)
            self.guidance = float(self.guidance)
            self.intensity = float(self.intensity)
            self.smoothing = float(self.smoothing)
            self.temperature = float(self.temperature)
        except (TypeError, ValueError) as exc:
            raise SessionError(f"invalid session option: {exc}") from None
        if not 1 <= self.steps <= 50:
            raise SessionError(f"steps must be between 1 and 50 (got {self.steps})")
        if not 0.0 <= self.guidance <= 10.0:
            raise SessionError(f"guidance must be between 0 and 10 (got {self.guidance})")
        if not 0.0 <= self.intensity <= 3.0:
            raise SessionError(f"intensity must be between 0 and 3 (got {self.intensity})")
        if not 0.0 <= self.temperature <= 2.0:
            raise SessionError(f"temperature must be between 0 and 2 (got {self.temperature})")
        if not 0.0 <= self.smoothing <= 0.95:
            raise SessionError(f"smoothing must be between 0 and 0.95 (got {self.smoothing})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelBundle:
    """A loaded model with what a session needs from its card."""
    model: StreamingTalker
    card: dict[str, Any]
    value_range: tuple[float, float] | None = None
    styles: list[str] = field(default_factory=list)
    #: tensors stored beside the weights (a vertex-space model's basis and template)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def style_index(self, style: int | str) -> int:
        n = self.model.cfg.num_styles
        if isinstance(style, str) and not style.lstrip("-").isdigit():
            if style in self.styles:
                return self.styles.index(style)
            raise SessionError(f"unknown style {style!r}; the model knows {self.styles[:8]}...")
        idx = int(style)
        if not 0 <= idx < n:
            raise SessionError(f"style index {idx} out of range 0..{n - 1}")
        return idx


class StreamingSession:
    def __init__(self, bundle: ModelBundle, options: SessionOptions | None = None):
        self.bundle = bundle
        self.model = bundle.model
        self.cfg = cfg = bundle.model.cfg
        self.options = (options or SessionOptions()).validated()
        self._mel = LogMel(cfg.sample_rate, cfg.hop, 400, 512, cfg.n_mels)
        self._gen = torch.Generator().manual_seed(self.options.seed)
        with torch.inference_mode():
            style = torch.tensor([bundle.style_index(self.options.style)])
            self._style_vec = self.model.style_vector(style)
            floor = self._mel.floor_frame()
            # Mel frames with negative index are the pre-stream silence floor.
            self._mel_hist = floor.expand(cfg.left_context_mel, -1).clone()
            silence_mel = floor.expand(cfg.step_mels + cfg.receptive_field_mel - 1, -1).unsqueeze(0)
            silence_feat = self.model.audio(silence_mel)[0, :1]
            self._audio_hist = silence_feat.expand(cfg.context_frames, -1).clone()
            zeros = torch.zeros(cfg.context_frames, cfg.num_channels)
            self._motion_hist = self.model.normalise(zeros)
        self._samples = torch.zeros(0)
        self._samples_start = 0      # absolute index of self._samples[0]
        self._received = 0           # samples pushed so far
        self._next_mel = 0           # first mel frame not yet computed
        self._step = 0               # next autoregressive step
        self._emitted = 0            # frames emitted
        self._smooth_state: np.ndarray | None = None
        self._finished = False
        self._regression = bundle.card.get("objective") == "regression"
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
        self._samples = torch.cat([self._samples, torch.from_numpy(pcm.astype(np.float32, copy=False))])
        self._received += pcm.size
        return self._run_ready_steps(final=False)

    def flush(self) -> np.ndarray:
        """End of audio: pad with silence, emit the remaining frames up to the audio's length."""
        if self._finished:
            return self._empty()
        self._finished = True
        return self._run_ready_steps(final=True)

    # -- internals -----------------------------------------------------
    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.cfg.num_channels), np.float32)

    def total_frames(self) -> int:
        return int(round(self._received * self.cfg.fps / self.cfg.sample_rate))

    def _step_ready(self, final: bool) -> bool:
        cfg = self.cfg
        if final:
            return self._step * cfg.chunk_frames < self.total_frames()
        last_mel = (self._step + 1) * cfg.step_mels + cfg.lookahead_mel  # exclusive
        return self._received >= last_mel * cfg.hop

    def _run_ready_steps(self, final: bool) -> np.ndarray:
        out = []
        with torch.inference_mode():
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
        cfg, model, opt = self.cfg, self.model, self.options
        # 1. new mel frames up to this step's look-ahead
        upto = (self._step + 1) * cfg.step_mels + cfg.lookahead_mel
        new_mel = self._mel(self._samples, self._next_mel, upto - self._next_mel, self._samples_start)
        self._next_mel = upto
        window = torch.cat([self._mel_hist, new_mel])[-(cfg.step_mels + cfg.receptive_field_mel - 1):]
        self._mel_hist = window[-(cfg.receptive_field_mel - 1):]
        self._trim_samples()
        # 2. audio features of the new frames
        feat = model.audio(window.unsqueeze(0))[0]  # (C, d)
        audio = torch.cat([self._audio_hist, feat]).unsqueeze(0)
        self._audio_hist = torch.cat([self._audio_hist, feat])[-cfg.context_frames:]
        # 3-4. condition and few-step DDIM in normalised motion space (a null-audio twin for
        # classifier-free guidance); the regression baseline is one pass from a zero input
        if self._regression:
            noise = torch.zeros(1, cfg.chunk_frames * cfg.num_channels)
        else:
            noise = torch.randn(1, cfg.chunk_frames * cfg.num_channels, generator=self._gen)
            noise = noise * opt.temperature
        x0 = model.sample_next(audio, self._motion_hist.unsqueeze(0), self._style_vec, noise,
                               1 if self._regression else opt.steps,
                               1.0 if self._regression else opt.guidance)
        x0 = x0.reshape(cfg.chunk_frames, cfg.num_channels)
        motion = model.denormalise(x0)
        if self._lo is not None:
            motion = motion.clamp(self._lo, self._hi)
        # Feed back the (range-clamped) raw output: intensity/smoothing are display-only.
        self._motion_hist = torch.cat([self._motion_hist, model.normalise(motion)])[-cfg.context_frames:]
        self._step += 1
        return self._post(motion.numpy().astype(np.float32))

    def _post(self, motion: np.ndarray) -> np.ndarray:
        opt = self.options
        if opt.intensity != 1.0:
            motion = motion * opt.intensity
            if self._lo is not None:
                motion = np.clip(motion, self._lo, self._hi)
        if opt.smoothing > 0:
            a = opt.smoothing
            out = np.empty_like(motion)
            prev = motion[0] if self._smooth_state is None else self._smooth_state
            for i, row in enumerate(motion):
                prev = a * prev + (1 - a) * row
                out[i] = prev
            self._smooth_state = prev
            motion = out
        return motion

    def _trim_samples(self) -> None:
        keep_from = (self._next_mel + 1) * self.cfg.hop - 400  # first sample the next mel frame needs
        drop = min(keep_from - self._samples_start, self._samples.numel())
        if drop > 0:
            self._samples = self._samples[drop:].clone()
            self._samples_start += drop


def load_bundle(path: str | None = None, device: str = "cpu") -> ModelBundle:
    """Load a checkpoint (default: the bundled model) into a :class:`ModelBundle`."""
    from ..model.checkpoint import load_checkpoint
    from ..shared.paths import DEFAULT_MODEL

    model, card, extra = load_checkpoint(path or DEFAULT_MODEL, device)
    vr = card.get("value_range")
    return ModelBundle(model, card, tuple(vr) if vr else None, list(card.get("styles") or []), extra)


def random_bundle(seed: int = 0, **cfg_overrides: Any) -> ModelBundle:
    """A randomly initialised model of the shipped size (benchmarks, tests)."""
    from ..shared.channels import ARKIT_52
    from ..model.checkpoint import base_card
    from ..model.config import ModelConfig

    torch.manual_seed(seed)
    cfg = ModelConfig(**cfg_overrides)
    model = StreamingTalker(cfg).eval()
    channels = list(ARKIT_52) if cfg.num_channels == 52 else [f"ch{i:03d}" for i in range(cfg.num_channels)]
    card = base_card(cfg, channels)
    return ModelBundle(model, card, (0.0, 1.0), list(card["styles"]))
