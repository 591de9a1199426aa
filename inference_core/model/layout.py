"""The tensors a checkpoint of a given architecture holds, by name and shape (torch-free).

Why here and not from the torch modules: both runtimes check a file against its card
*before* anything is built or read — the ONNX runtime has no torch, and building the
torch model of a lying card (``head_dim 2**20``) would allocate terabytes. The layout is
the one of :class:`~inference_core.model.network.StreamingTalker`'s ``state_dict``
(a test compares them over several architectures). Loading is strict: every tensor
the architecture needs is there with its exact shape, and nothing else is, except a
vertex-space model's basis and template, and the phonetic gain's read-out when the card declares one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..shared.model_card import CARD_KEY, PHONETIC_KEY, ModelFileError, parse_card, read_header
from ..shared.paths import path_kind
from .config import ModelConfig, config_from_card

#: Tensors a checkpoint may carry beside the network's (a vertex-space model's linear basis).
BASIS, TEMPLATE = "motion.basis", "motion.template"
#: ... and a phonetic gain's phone read-out and per-phone jaw targets (when the card has one)
PHONETIC_WEIGHT, PHONETIC_BIAS, PHONETIC_JAW = "phonetic.read_out.weight", "phonetic.read_out.bias", "phonetic.jaw"
MAX_VERTICES = 1 << 20


def read_layout(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(checked card, safetensors header, bytes of tensor data) — everything that can be checked
    before a tensor is read: the card's schema, and its architecture against the tensors listed."""
    path = Path(path)
    kind = path_kind(path)
    if kind == "missing":
        raise ModelFileError(f"Model file not found: {path}")
    if kind == "folder":
        raise ModelFileError(f"Model path is a folder, not a file: {path}")
    if kind == "unreadable":
        raise ModelFileError(f"cannot read the model file {str(path)[:200]} (no permission, or not a valid name)")
    try:
        header, data_start = read_header(path)
    except ModelFileError:
        raise
    except ValueError as exc:
        raise ModelFileError(f"{path.name} is not a valid safetensors model file "
                             f"(corrupt, truncated or another format): {exc}") from None
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or CARD_KEY not in meta:
        raise ModelFileError(f"{path.name} is a safetensors file but not a StreamingTalker "
                             "checkpoint (no model card in its metadata)")
    card = parse_card(meta[CARD_KEY], path.name)
    return card, header, path.stat().st_size - data_start


def checked_config(name: str, card: dict[str, Any], header: dict[str, Any], data_bytes: int) -> ModelConfig:
    """The card's architecture, once the file's tensors are exactly the ones it needs."""
    try:
        cfg = config_from_card(card)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{name}: the model card's architecture is invalid: {exc}") from None
    check_tensors(header, cfg, data_bytes, name, phonetic_classes(card))
    return cfg


def phonetic_classes(card: dict[str, Any]) -> int:
    """How many phone classes the card's phonetic gain reads (0: the card has none)."""
    spec = card.get(PHONETIC_KEY)
    return len(spec["classes"]) if isinstance(spec, dict) and isinstance(spec.get("classes"), list) else 0


def tensor_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of the network (its ``state_dict``)."""
    d, k, c, h, a = cfg.model_dim, cfg.num_channels, cfg.chunk_frames, cfg.head_dim, cfg.audio_dim
    out: dict[str, tuple[int, ...]] = {"motion_mean": (k,), "motion_std": (k,)}
    out.update(_conv_stack("audio.convs", a, cfg) | _linear("audio.norm", a, None) | _linear("audio.out", d, a))
    if cfg.audio_branch_dim:
        b = cfg.audio_branch_dim
        out.update(_conv_stack("audio.branch", b, cfg) | _linear("audio.branch_norm", b, None)
                   | _linear("audio.branch_out", d, b))
    if cfg.phone_bottleneck:
        out.update(_linear("audio.phone_read", cfg.phone_bottleneck, d)
                   | _linear("audio.phone_embed", d, cfg.phone_bottleneck))
    out.update({"predictor.future_token": (d,), "predictor.null_audio": (d,),
                "predictor.pos": (cfg.context_frames + c, d),
                "predictor.style.weight": (max(cfg.num_styles, 1), cfg.style_dim)})
    out.update(_linear("predictor.motion_in", d, k) | _linear("predictor.style_in", d, cfg.style_dim))
    for i in range(cfg.layers):
        p = f"predictor.blocks.layers.{i}"
        out.update({f"{p}.self_attn.in_proj_weight": (3 * d, d), f"{p}.self_attn.in_proj_bias": (3 * d,)})
        out.update(_linear(f"{p}.self_attn.out_proj", d, d) | _linear(f"{p}.linear1", 4 * d, d)
                   | _linear(f"{p}.linear2", d, 4 * d) | _linear(f"{p}.norm1", d, None)
                   | _linear(f"{p}.norm2", d, None))
    out.update(_linear("predictor.norm", d, None) | _linear("head.inp", h, c * k)
               | _linear("head.cond.0", h, c * d + h) | _linear("head.cond.2", h, h))
    for i in range(cfg.head_blocks):
        p = f"head.blocks.{i}"
        out.update(_linear(f"{p}.mod", 3 * h, h) | _linear(f"{p}.mlp.0", 4 * h, h) | _linear(f"{p}.mlp.2", h, 4 * h))
    out.update(_linear("head.out_mod", 2 * h, h) | _linear("head.out", c * k, h))
    return out


def _conv_stack(prefix: str, width: int, cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """weights + biases of :func:`~.network.conv_stack`: the log-mel in, ``width`` channels out."""
    out: dict[str, tuple[int, ...]] = {}
    in_ch = cfg.n_mels
    for i, kernel in enumerate(cfg.audio_kernels):
        out[f"{prefix}.{i}.weight"] = (width, in_ch, kernel)
        out[f"{prefix}.{i}.bias"] = (width,)
        in_ch = width
    return out


def _linear(prefix: str, n_out: int, n_in: int | None) -> dict[str, tuple[int, ...]]:
    """weight + bias of a Linear (n_out, n_in), or of a LayerNorm (n_in None: both (n_out,))."""
    return {f"{prefix}.weight": (n_out,) if n_in is None else (n_out, n_in), f"{prefix}.bias": (n_out,)}


def check_tensors(header: dict[str, Any], cfg: ModelConfig, data_bytes: int, name: str,
                  phonetic: int = 0) -> list[str]:
    """Check a safetensors header against the architecture (and ``phonetic`` phone classes of a
    phonetic gain's read-out); returns the names of the extra (basis) tensors. ModelFileError
    names what is missing, unexpected, misshapen or out of the file, before a byte of tensor data
    is read."""
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    expected = tensor_shapes(cfg)
    if phonetic:
        expected = {**expected, PHONETIC_WEIGHT: (phonetic, cfg.model_dim), PHONETIC_BIAS: (phonetic,),
                    PHONETIC_JAW: (phonetic,)}
    extra = [n for n in (BASIS, TEMPLATE) if n in entries]
    if extra:
        if len(extra) != 2:
            raise ModelFileError(f"{name}: a vertex basis needs both {BASIS} and {TEMPLATE}")
        template = _shape(entries[TEMPLATE], TEMPLATE, name)
        v = template[0] if template else 0
        if not 0 < v <= MAX_VERTICES:
            raise ModelFileError(f"{name}: {TEMPLATE} has {v} vertices (at most {MAX_VERTICES})")
        expected = {**expected, BASIS: (cfg.num_channels, v, 3), TEMPLATE: (v, 3)}
    missing = sorted(set(expected) - set(entries))
    unexpected = sorted(set(entries) - set(expected))
    if missing or unexpected:
        parts = ([f"missing tensors {', '.join(missing[:4])} ({len(missing)} in all)"] if missing else []) + (
            [f"tensors it does not use {', '.join(u[:80] for u in unexpected[:4])} ({len(unexpected)} in all)"]
            if unexpected else [])
        raise ModelFileError(f"{name} does not fit the architecture its card declares: " + "; ".join(parts))
    for tname, want in expected.items():
        info = entries[tname]
        got = _shape(info, tname, name)
        if got != want:
            raise ModelFileError(f"{name}: tensor {tname} has shape {got}, the architecture needs {want}")
        if info.get("dtype") != "F32":
            raise ModelFileError(f"{name}: tensor {tname} is {str(info.get('dtype'))[:10]}, not float32")
        offsets = info.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                and 0 <= offsets[0] and offsets[1] - offsets[0] == 4 * math.prod(want) and offsets[1] <= data_bytes):
            raise ModelFileError(f"{name}: tensor {tname} lies outside the file (truncated or corrupt)")
    return extra


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _shape(info: Any, tname: str, name: str) -> tuple[int, ...]:
    shape = info.get("shape") if isinstance(info, dict) else None
    if not (isinstance(shape, list) and len(shape) <= 8 and all(_is_int(s) and 0 <= s < 2**40 for s in shape)):
        raise ModelFileError(f"{name}: tensor {tname[:80]} has a malformed entry in the header")
    return tuple(shape)
