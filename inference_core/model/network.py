"""StreamingTalker network (re-implemented from the paper's description).

Three parts, each a plain ``forward`` with fixed-rank tensors and no
data-dependent Python control flow, so they export to ONNX one by one and
the sampling loop stays outside the graph:

* :class:`AudioEncoder` — dilated conv stack on causal log-mel with a bounded
  look-ahead; one step turns ``step_mels`` mel frames (+ context) into
  ``chunk_frames`` audio features at the motion frame rate.
* :class:`ConditionPredictor` — the autoregressive condition predictor: a
  transformer over the last W motion frames, their audio features, the next
  C frames' audio features and a style embedding → one condition per new frame.
* :class:`DiffusionHead` — an adaLN MLP that denoises the next C frames'
  motion given the condition and the diffusion time (x0-prediction).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from .config import ModelConfig


def conv_stack(in_ch: int, width: int, cfg: ModelConfig) -> nn.ModuleList:
    """The encoder's dilated causal-window convs (``cfg``'s kernels and dilations), ``width`` wide."""
    convs = []
    for k, d in zip(cfg.audio_kernels, cfg.audio_dilations):
        convs.append(nn.Conv1d(in_ch, width, k, dilation=d))
        in_ch = width
    return nn.ModuleList(convs)


def residual_crop(conv: nn.Conv1d) -> int:
    """Input frames before the ones a conv's output lines up with (its centre): an unpadded conv
    shortens its input by (k-1)*d, and the residual drops (k-1)*d - (k-1)*d // 2 frames at the
    start and as many at the end."""
    k, d = conv.kernel_size[0], conv.dilation[0]
    return (k - 1) * d - (k - 1) * d // 2


def run_conv_stack(convs: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """(B, in, T) -> (B, width, T - RF + 1): each conv, a residual where the channel counts match
    (not the first conv, mel -> width), then GELU."""
    for i, conv in enumerate(cast(list[nn.Conv1d], list(convs))):
        y = conv(x)
        if i > 0:
            crop = residual_crop(conv)
            y = y + x[:, :, crop: crop + y.shape[-1]]
        x = torch.nn.functional.gelu(y)
    return x


class AudioEncoder(nn.Module):
    pool: torch.Tensor  # registered buffer (typed: Module.__getattr__ says Tensor | Module)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.convs = conv_stack(cfg.n_mels, cfg.audio_dim, cfg)
        self.norm = nn.LayerNorm(cfg.audio_dim)
        self.out = nn.Linear(cfg.audio_dim, cfg.model_dim)
        if cfg.audio_branch_dim:
            self.branch = conv_stack(cfg.n_mels, cfg.audio_branch_dim, cfg)
            self.branch_norm = nn.LayerNorm(cfg.audio_branch_dim)
            self.branch_out = nn.Linear(cfg.audio_branch_dim, cfg.model_dim)
            nn.init.zeros_(self.branch_out.weight)  # the branch adds nothing until trained
            nn.init.zeros_(self.branch_out.bias)
        if cfg.phone_bottleneck:
            self.phone_read = nn.Linear(cfg.model_dim, cfg.phone_bottleneck)
            self.phone_embed = nn.Linear(cfg.phone_bottleneck, cfg.model_dim)
            nn.init.zeros_(self.phone_embed.weight)  # the bottleneck adds nothing until trained
            nn.init.zeros_(self.phone_embed.bias)
        self.register_buffer("pool", self._pool_matrix(cfg.step_mels, cfg.chunk_frames), persistent=False)

    @staticmethod
    def _pool_matrix(n_mel: int, n_frames: int) -> torch.Tensor:
        """Area-weighted map from one step's mel frames to its motion frames."""
        m = torch.zeros(n_frames, n_mel)
        for j in range(n_frames):
            lo, hi = j * n_mel / n_frames, (j + 1) * n_mel / n_frames
            for i in range(n_mel):
                m[j, i] = max(0.0, min(hi, i + 1) - max(lo, i))
        return m / m.sum(dim=1, keepdim=True)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """A conv stack's output (B, C, S*step_mels) -> (B, S*chunk_frames, C) at the motion rate."""
        x = x.transpose(1, 2)
        b, n, c = x.shape
        steps = n // self.cfg.step_mels
        x = x.reshape(b, steps, self.cfg.step_mels, c)
        return torch.einsum("fm,bsmc->bsfc", self.pool, x).reshape(b, steps * self.cfg.chunk_frames, c)

    def branch_features(self, mel: torch.Tensor) -> torch.Tensor:
        """The branch's normalised features (B, S*chunk_frames, audio_branch_dim), before its
        projection: what a phone read-out teaches (``scripts/pretrain_audio_branch.py``)."""
        return self.branch_norm(self.pooled(run_conv_stack(self.branch, mel.transpose(1, 2))))

    def with_phones(self, feat: torch.Tensor, raw_keep: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (B, F, d) with the phonetic bottleneck's embedding of their phone posteriors
        added, and the read-out's logits (B, F, P); without a bottleneck, ``feat`` and None.
        ``raw_keep`` (B,), training only: 0 hands a row the bottleneck alone (``train
        --raw-audio-drop``), so the predictor learns to animate from what was heard as phones."""
        if not self.cfg.phone_bottleneck:
            return feat, None
        logits = self.phone_read(feat)
        raw = feat if raw_keep is None else feat * raw_keep.view(-1, 1, 1)
        return raw + self.phone_embed(torch.softmax(logits, dim=-1)), logits

    def encode(self, mel: torch.Tensor, raw_keep: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward`'s features and the bottleneck's phone logits (None without one)."""
        out = self.out(self.norm(self.pooled(run_conv_stack(self.convs, mel.transpose(1, 2)))))
        if self.cfg.audio_branch_dim:
            out = out + self.branch_out(self.branch_features(mel))
        return self.with_phones(out, raw_keep)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, S*step_mels + receptive_field - 1, n_mels) → (B, S*chunk_frames, model_dim).

        Output mel position ``i`` sees input positions ``[i, i+RF)``, i.e.
        ``left_context_mel`` frames of past and ``lookahead_mel`` of future.
        """
        return self.encode(mel)[0]


class ConditionPredictor(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.model_dim
        n_tok = cfg.context_frames + cfg.chunk_frames
        self.motion_in = nn.Linear(cfg.num_channels, d)
        self.future_token = nn.Parameter(torch.zeros(d))
        self.null_audio = nn.Parameter(torch.zeros(d))
        self.pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.style = nn.Embedding(max(cfg.num_styles, 1), cfg.style_dim)
        self.style_in = nn.Linear(cfg.style_dim, d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, dim_feedforward=4 * d, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, audio: torch.Tensor, past_motion: torch.Tensor, style_vec: torch.Tensor,
                audio_keep: torch.Tensor) -> torch.Tensor:
        """audio (B, W+C, d), past_motion (B, W, K) normalised, style_vec (B, style_dim),
        audio_keep (B,) 1 = use audio, 0 = null audio (classifier-free guidance).
        Returns conditions (B, C, d) for the next C frames."""
        keep = audio_keep.view(-1, 1, 1)
        audio = audio * keep + self.null_audio * (1 - keep)
        b = audio.shape[0]
        motion_tok = self.motion_in(past_motion)
        future = self.future_token.expand(b, self.cfg.chunk_frames, -1)
        x = torch.cat([motion_tok, future], dim=1) + audio + self.pos
        x = x + self.style_in(style_vec).unsqueeze(1)
        x = self.blocks(x)
        return self.norm(x[:, -self.cfg.chunk_frames:])


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of continuous diffusion time t in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    # t in [0, 1] is scaled to [0, 1000], the range of the integer timesteps these
    # frequencies (periods 2*pi .. 2*pi*10000) were designed for; unscaled, t would only
    # reach the lowest-frequency part of the embedding.
    args = t.float().unsqueeze(-1) * 1000.0 * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class AdaLNBlock(nn.Module):
    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mod = nn.Linear(cond_dim, 3 * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.mod(cond).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class DiffusionHead(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        io = cfg.chunk_frames * cfg.num_channels
        h = cfg.head_dim
        self.inp = nn.Linear(io, h)
        self.cond = nn.Sequential(nn.Linear(cfg.chunk_frames * cfg.model_dim + h, h), nn.SiLU(),
                                  nn.Linear(h, h))
        self.blocks = nn.ModuleList(AdaLNBlock(h, h) for _ in range(cfg.head_blocks))
        self.out_norm = nn.LayerNorm(h, elementwise_affine=False)
        self.out_mod = nn.Linear(h, 2 * h)
        self.out = nn.Linear(h, io)
        nn.init.zeros_(self.out_mod.weight)
        nn.init.zeros_(self.out_mod.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x_t (B, C*K) noisy motion, t (B,) in [0,1], cond (B, C, d) → predicted clean x0 (B, C*K)."""
        c = self.cond(torch.cat([cond.flatten(1), timestep_embedding(t, self.cfg.head_dim)], dim=-1))
        h = self.inp(x_t)
        for blk in self.blocks:
            h = blk(h, c)
        shift, scale = self.out_mod(c).chunk(2, dim=-1)
        return self.out(self.out_norm(h) * (1 + scale) + shift)


class StreamingTalker(nn.Module):
    motion_mean: torch.Tensor  # registered buffers (typed: Module.__getattr__ says Tensor | Module)
    motion_std: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.audio = AudioEncoder(cfg)
        self.predictor = ConditionPredictor(cfg)
        self.head = DiffusionHead(cfg)
        # Motion normalisation (set from training data; saved with the weights).
        self.register_buffer("motion_mean", torch.zeros(cfg.num_channels))
        self.register_buffer("motion_std", torch.ones(cfg.num_channels))

    def normalise(self, motion: torch.Tensor) -> torch.Tensor:
        return (motion - self.motion_mean) / self.motion_std

    def denormalise(self, motion: torch.Tensor) -> torch.Tensor:
        return motion * self.motion_std + self.motion_mean

    def style_vector(self, style: torch.Tensor) -> torch.Tensor:
        return self.predictor.style(style)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
