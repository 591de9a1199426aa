"""Architecture hyper-parameters and the training objective; stored verbatim in every model card.

Torch-free (a dataclass), so the ONNX runtime and the add-on can read a card's
geometry without torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


OBJECTIVES = ("diffusion", "regression")
#: Fields older cards carry that no longer mean anything (read and dropped).
LEGACY_FIELDS = ("diffusion_steps",)


@dataclass(frozen=True)
class ModelConfig:
    # Signal geometry
    sample_rate: int = 16000
    fps: int = 30
    hop: int = 160                 # mel hop in samples (10 ms)
    win_length: int = 400          # mel analysis window in samples (25 ms)
    n_fft: int = 512               # FFT size of the mel analysis (the window zero-padded)
    n_mels: int = 80
    chunk_frames: int = 3          # motion frames generated per autoregressive step
    lookahead_mel: int = 4         # mel frames of future audio each step may see (40 ms)
    #: causal per-speaker normalisation of the log-mel (:mod:`inference_core.audio.normalise`):
    #: the window in mel frames (0: off) and the training data's speech mean it restores
    feature_norm_frames: int = 0
    feature_norm_prior: tuple[float, ...] = ()
    # Audio encoder (causal dilated conv stack on log-mel)
    audio_dim: int = 128
    audio_kernels: tuple[int, ...] = (5, 5, 5, 3)
    audio_dilations: tuple[int, ...] = (1, 2, 4, 8)
    #: width of a second conv stack beside the first (same kernels and dilations, so the same
    #: receptive field and look-ahead), added to the encoder's output through a projection that
    #: starts at zero: a fine-tune can widen a trained encoder without changing what it computes.
    #: 0 = none.
    audio_branch_dim: int = 0
    #: phone classes of a phonetic bottleneck in the encoder (0 = none): a linear read-out of the
    #: features' phone posteriors (trained by the phone loss), whose softmax is projected back and
    #: added to the features through a projection that starts at zero, so the condition predictor
    #: is handed what was heard as phones (stop 34: the read-out's openness r 0.58 on unheard voices,
    #: the lip gap's 0.46). Stop 35 grew one on the bundled model: no r gained; it has none.
    phone_bottleneck: int = 0
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
    # Motion
    num_channels: int = 52
    #: "diffusion": the head denoises x_t (few-step DDIM at inference); "regression": the same
    #: network as a deterministic baseline, one pass from x_t = 0 at t = T_MAX.
    objective: str = "diffusion"

    def __post_init__(self) -> None:
        step_samples = self.sample_rate * self.chunk_frames / self.fps
        if step_samples != int(step_samples) or int(step_samples) % self.hop:
            raise ValueError("chunk_frames/fps must span a whole number of mel hops "
                             f"(got {step_samples} samples for hop {self.hop})")
        if len(self.audio_kernels) != len(self.audio_dilations):
            raise ValueError("audio_kernels and audio_dilations differ in length")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES} (got {self.objective!r})")
        if self.win_length > self.n_fft or self.win_length < self.hop:
            raise ValueError("the mel window must span at least one hop and at most n_fft samples")
        if self.lookahead_mel >= self.receptive_field_mel:
            raise ValueError("look-ahead must be smaller than the encoder's receptive field")
        if self.feature_norm_frames and len(self.feature_norm_prior) != self.n_mels:
            raise ValueError(f"feature_norm_prior needs {self.n_mels} values (got {len(self.feature_norm_prior)})")
        if self.model_dim % self.heads:
            raise ValueError(f"model_dim {self.model_dim} is not divisible by heads {self.heads}")

    @property
    def audio_state_channels(self) -> int:
        """Channels of the streamed encoder's state: the main stack's, then the branch's."""
        return self.audio_dim + self.audio_branch_dim

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
        d["feature_norm_prior"] = list(self.feature_norm_prior)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k not in LEGACY_FIELDS}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}")
        kw = dict(d)
        for key in ("audio_kernels", "audio_dilations"):
            if key in kw:
                kw[key] = tuple(int(v) for v in kw[key])
        if "feature_norm_prior" in kw:
            kw["feature_norm_prior"] = tuple(float(v) for v in kw["feature_norm_prior"])
        return cls(**kw)


def config_from_card(card: dict[str, Any]) -> ModelConfig:
    """The architecture a model card declares (older cards keep the objective beside it).

    ValueError when the card's own fields disagree with it: fps, sample rate and chunk are
    stated twice, the channel names must be as many as the channels, the style names at most
    as many as the styles (a name past the table would index outside it)."""
    arch = dict(card["architecture"])
    arch.setdefault("objective", card.get("objective", "diffusion"))
    cfg = ModelConfig.from_dict(arch)
    for key in ("fps", "sample_rate", "chunk_frames"):
        if key in card and card[key] != getattr(cfg, key):
            raise ValueError(f"the card's {key} ({card[key]!r}) differs from its architecture's "
                             f"({getattr(cfg, key)})")
    if len(card.get("channels") or []) != cfg.num_channels:
        raise ValueError(f"the card names {len(card.get('channels') or [])} channels, "
                         f"the architecture has {cfg.num_channels}")
    if len(card.get("styles") or []) > cfg.num_styles:
        raise ValueError(f"the card names {len(card['styles'])} styles, the architecture has {cfg.num_styles}")
    return cfg
