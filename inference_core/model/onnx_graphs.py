"""The per-step calls as ``export-onnx`` writes them: the weights and maths of :mod:`.network`,
arranged for one streaming step so that ONNX Runtime does less work. The head's batch is 1, or 2
for a guided step (classifier-free guidance: the rows with and without audio in one call, so each
of its weights is read from memory once for both).

Why not export the modules as they are: a step is memory-bound (the diffusion head's 3.3 M
weights are read from memory on every call) and the exported ``nn.MultiheadAttention`` is a
tangle of reshapes. So, with the same parameters and the same result up to float rounding
(checked at export and by ``info --verify`` against the modules themselves):

* ``audio``: the encoder streamed: each conv computes the step's new positions only, the
  outputs later layers still need are carried from step to step as a state.
* ``condition``: the predictor returns only the C new tokens, so its last transformer layer
  computes queries, attention output and feed-forward for those C tokens only (keys and values
  still cover all W + C). Attention is written out on 2-D ``(tokens, d)`` tensors. Batch 1 only:
  the predictor is compute-bound (a batch of two costs as much as two calls), and the 2-D form
  is the faster one.
* ``head_mod`` + ``head``: the head's conditioning path (``cond`` MLP and every block's
  shift/scale/gate) depends on the condition and the diffusion time, not on ``x_t``. The DDIM
  times of a step are known in advance (:func:`~.diffusion.head_times`), so ``head_mod`` computes
  the modulations of all of them in one call (these weights are read once per step instead of
  once per DDIM step), and ``head`` is the denoising path given one row of modulations.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.onnx_backend import audio_input_mels, audio_state_frames, audio_warmup_steps, graph_input_shapes
from .network import AdaLNBlock, DiffusionHead, StreamingTalker, residual_crop, timestep_embedding


def _attention(attn: nn.MultiheadAttention, q_in: torch.Tensor, kv_in: torch.Tensor, heads: int) -> torch.Tensor:
    """``attn(q_in, kv_in, kv_in)`` for 2-D inputs (Tq, d), (Tk, d) (PyTorch's maths: 1/sqrt(d_head) scaling)."""
    d = q_in.shape[-1]
    dh = d // heads
    w, b = attn.in_proj_weight, attn.in_proj_bias
    q = F.linear(q_in, w[:d], b[:d]).reshape(-1, heads, dh).transpose(0, 1)        # (H, Tq, dh)
    kv = F.linear(kv_in, w[d:], b[d:])
    k = kv[:, :d].reshape(-1, heads, dh).transpose(0, 1)                              # (H, Tk, dh)
    v = kv[:, d:].reshape(-1, heads, dh).transpose(0, 1)
    a = torch.softmax((q * dh ** -0.5) @ k.transpose(1, 2), dim=-1) @ v               # (H, Tq, dh)
    return attn.out_proj(a.transpose(0, 1).reshape(-1, d))


class ConditionStep(nn.Module):
    """``model.predictor`` at batch 1, the last layer pruned to the C returned tokens."""

    def __init__(self, model: StreamingTalker):
        super().__init__()
        self.p = model.predictor
        self.heads = model.cfg.heads
        self.chunk = model.cfg.chunk_frames
        for layer in self.p.blocks.layers:
            if not getattr(layer, "norm_first", False) or layer.activation is not F.gelu:
                raise ValueError("the condition predictor's layers are not the pre-norm GELU layers "
                                 "this export was written for")

    def forward(self, audio: torch.Tensor, past: torch.Tensor, style_vec: torch.Tensor,
                keep: torch.Tensor) -> torch.Tensor:
        p, c = self.p, self.chunk
        k = keep.reshape(1, 1)
        x = torch.cat([p.motion_in(past[0]), p.future_token.expand(c, -1)]) + audio[0] * k \
            + p.null_audio * (1 - k) + p.pos + p.style_in(style_vec)
        layers = list(p.blocks.layers)
        for i, layer in enumerate(layers):
            h = layer.norm1(x)
            if i == len(layers) - 1:  # only the last C tokens leave the predictor
                x = x[-c:] + _attention(layer.self_attn, h[-c:], h, self.heads)
            else:
                x = x + _attention(layer.self_attn, h, h, self.heads)
            x = x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))
        return p.norm(x)[None]


def _blocks(head: DiffusionHead) -> list[AdaLNBlock]:
    return cast(list[AdaLNBlock], list(head.blocks))


class HeadModulation(nn.Module):
    """cond (B, C, d), t (S,) -> every block's (shift, scale, gate) and the output's (shift, scale)
    for each condition and time: (B * S, (3 * blocks + 2) * head_dim), row ``b * S + s``."""

    def __init__(self, model: StreamingTalker):
        super().__init__()
        self.head = model.head

    def forward(self, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        hd = self.head
        b, n = cond.shape[0], t.shape[0]
        temb = timestep_embedding(t, hd.cfg.head_dim)[None].expand(b, -1, -1)
        c = hd.cond(torch.cat([cond.reshape(b, 1, -1).expand(-1, n, -1), temb], dim=-1)).reshape(b * n, -1)
        return torch.cat([blk.mod(c) for blk in _blocks(hd)] + [hd.out_mod(c)], dim=-1)


class HeadDenoise(nn.Module):
    """x_t (B, C*K), a row of :class:`HeadModulation` per x_t (B, M) -> predicted x0 (B, C*K)."""

    def __init__(self, model: StreamingTalker):
        super().__init__()
        self.head = model.head

    def forward(self, x_t: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        hd = self.head
        h = hd.cfg.head_dim
        x = hd.inp(x_t)
        o = 0
        for blk in _blocks(hd):
            shift, scale, gate = mod[:, o:o + h], mod[:, o + h:o + 2 * h], mod[:, o + 2 * h:o + 3 * h]
            x = x + gate * blk.mlp(blk.norm(x) * (1 + scale) + shift)
            o += 3 * h
        return hd.out(hd.out_norm(x) * (1 + mod[:, o + h:o + 2 * h]) + mod[:, o:o + h])


def _stream_stack(convs: nn.ModuleList, x: torch.Tensor, state: torch.Tensor,
                  keep: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One conv stack streamed: (B, in, frames of the step) and the stack's state -> its new
    outputs and its next state (:func:`~.network.run_conv_stack`'s maths on the new positions)."""
    kept, o = [], 0
    for i, conv in enumerate(cast(list[nn.Conv1d], list(convs))):
        if i > 0:  # this layer's past input, then the new outputs of the layer below
            n = keep[i - 1]
            x = torch.cat([state[:, :, o:o + n], x], dim=2)
            kept.append(x[:, :, -n:])
            o += n
        y = conv(x)
        if i > 0:  # the residual, cropped as the whole-window encoder crops it
            crop = residual_crop(conv)
            y = y + x[:, :, crop:crop + y.shape[-1]]
        x = F.gelu(y)
    return x, torch.cat(kept, dim=2)


class AudioStreamStep(nn.Module):
    """``model.audio`` for one step, streamed: mel (1, :func:`audio_input_mels`, n_mels) and the
    state (1, ``audio_state_channels``, sum of :func:`audio_state_frames`: each layer's last
    outputs that the next layer needs; the main stack's channels, then a branch's) -> the step's
    features (1, C, d) and the state updated.

    The whole-window encoder recomputes every conv output of its window each step (50, 42, 26
    and 10 positions for the shipped kernels); here each conv computes only the step's new ones.
    """

    def __init__(self, model: StreamingTalker):
        super().__init__()
        self.enc = model.audio
        self.keep = audio_state_frames(model.cfg)
        self.width = model.cfg.audio_dim
        self.branch = model.cfg.audio_branch_dim
        if not self.keep:
            raise ValueError("a streamed audio encoder needs at least two conv layers")

    def forward(self, mel: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc, a = self.enc, self.width
        x = mel.transpose(1, 2)
        y, kept = _stream_stack(enc.convs, x, state[:, :a] if self.branch else state, self.keep)
        feat = enc.out(enc.norm(enc.pooled(y)))  # step_mels -> chunk_frames
        if not self.branch:
            return enc.with_phones(feat)[0], kept
        yb, kept_b = _stream_stack(enc.branch, x, state[:, a:], self.keep)
        feat = feat + enc.branch_out(enc.branch_norm(enc.pooled(yb)))
        return enc.with_phones(feat)[0], torch.cat([kept, kept_b], dim=1)


#: graph key -> the module exported for it
MODULES: dict[str, Any] = {"audio": AudioStreamStep, "condition": ConditionStep,
                           "head_mod": HeadModulation, "head": HeadDenoise}


def example_inputs(model: StreamingTalker, seed: int = 0) -> dict[str, tuple[torch.Tensor, ...]]:
    """Random inputs of the exported shapes (:func:`graph_input_shapes`, the ones checked on load)
    with the dynamic axes filled: the head's batch at 2 (a guided step; an example of size 1 would
    fix the axis) and ``head_mod``'s times at 3."""
    g = torch.Generator().manual_seed(seed)
    shapes = graph_input_shapes(model.cfg)

    def filled(shape: tuple[int | None, ...], size: int) -> tuple[int, ...]:
        return tuple(size if n is None else n for n in shape)

    def randn(shape: tuple[int | None, ...]) -> torch.Tensor:
        return torch.randn(*filled(shape, 2), generator=g)

    a, c, hm, h = shapes["audio"], shapes["condition"], shapes["head_mod"], shapes["head"]
    return {
        "audio": (randn(a[0]), randn(a[1])),
        "condition": (randn(c[0]), randn(c[1]), randn(c[2]), torch.ones(*filled(c[3], 1))),
        "head_mod": (randn(hm[0]), torch.rand(*filled(hm[1], 3), generator=g)),
        "head": (randn(h[0]), randn(h[1]) * 0.1),
    }


def streamed_audio_error(model: StreamingTalker, step: Any, steps: int = 3, seed: int = 0,
                         warmup: int | None = None) -> float:
    """Largest |streamed - ``model.audio``| over ``steps`` steps of random mel after the warm-up
    (default :func:`audio_warmup_steps`) from a zero state, for ``step(mel, state) -> (features,
    state)`` (torch tensors in; torch or numpy out): the check that a streamed encoder computes
    what the whole-window one does."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    warm = audio_warmup_steps(cfg) if warmup is None else warmup
    window = cfg.step_mels + cfg.receptive_field_mel - 1
    mel = torch.randn(1, (warm + steps - 1) * cfg.step_mels + window, cfg.n_mels, generator=g)
    with torch.no_grad():
        ref = model.audio(mel)  # every step's window at once: (1, (warm + steps) * C, d)
    n_in, c = audio_input_mels(cfg), cfg.chunk_frames
    state = torch.zeros(1, cfg.audio_state_channels, sum(audio_state_frames(cfg)))
    err = 0.0
    for s in range(warm + steps):
        end = s * cfg.step_mels + window
        feat, out = step(mel[:, end - n_in:end], state)
        state = torch.as_tensor(out)
        if s >= warm:
            err = max(err, float((torch.as_tensor(feat) - ref[:, s * c:(s + 1) * c]).abs().max()))
    return err
