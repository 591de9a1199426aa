"""Architecture hyper-parameters; stored verbatim in every model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    # Signal geometry
    sample_rate: int = 16000
    fps: int = 30
    hop: int = 160                 # mel hop in samples (10 ms)
    n_mels: int = 80
    chunk_frames: int = 3          # motion frames generated per autoregressive step
    lookahead_mel: int = 4         # mel frames of future audio each step may see (40 ms)
    # Audio encoder (causal dilated conv stack on log-mel)
    audio_dim: int = 128
    audio_kernels: tuple[int, ...] = (5, 5, 5, 3)
    audio_dilations: tuple[int, ...] = (1, 2, 4, 8)
    # AR condition predictor (transformer over the past-motion window)
    context_frames: int = 30       # W: past motion frames seen (1 s)
    model_dim: int = 128
    heads: int = 4
    layers: int = 3
    style_dim: int = 32
    num_styles: int = 1            # learned style table; index 0 = generic style
    # Diffusion head (adaLN MLP)
    head_dim: int = 256
    head_blocks: int = 4
    diffusion_steps: int = 1000    # training timesteps (cosine schedule)
    # Motion
    num_channels: int = 52

    def __post_init__(self) -> None:
        step_samples = self.sample_rate * self.chunk_frames / self.fps
        if step_samples != int(step_samples) or int(step_samples) % self.hop:
            raise ValueError("chunk_frames/fps must span a whole number of mel hops "
                             f"(got {step_samples} samples for hop {self.hop})")
        if len(self.audio_kernels) != len(self.audio_dilations):
            raise ValueError("audio_kernels and audio_dilations differ in length")
        if self.lookahead_mel >= self.receptive_field_mel:
            raise ValueError("look-ahead must be smaller than the encoder's receptive field")

    @property
    def step_samples(self) -> int:
        return int(self.sample_rate * self.chunk_frames / self.fps)

    @property
    def step_mels(self) -> int:
        return self.step_samples // self.hop

    @property
    def receptive_field_mel(self) -> int:
        return 1 + sum((k - 1) * d for k, d in zip(self.audio_kernels, self.audio_dilations))

    @property
    def left_context_mel(self) -> int:
        return self.receptive_field_mel - 1 - self.lookahead_mel

    @property
    def algorithmic_latency_ms(self) -> float:
        """Audio needed past the end of a step's first frame before it can be emitted."""
        needed_end = (self.step_mels + self.lookahead_mel) * self.hop / self.sample_rate
        first_frame_end = 1.0 / self.fps
        return 1000.0 * (needed_end - first_frame_end)

    @property
    def lookahead_ms(self) -> float:
        return 1000.0 * self.lookahead_mel * self.hop / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["audio_kernels"] = list(self.audio_kernels)
        d["audio_dilations"] = list(self.audio_dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        kw = dict(d)
        for key in ("audio_kernels", "audio_dilations"):
            if key in kw:
                kw[key] = tuple(int(v) for v in kw[key])
        return cls(**kw)
