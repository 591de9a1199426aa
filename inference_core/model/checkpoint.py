"""Checkpoints: safetensors weights + a JSON model card in the file's metadata.

Why: safetensors cannot carry code, so loading an untrusted model file can
at worst fail, never execute anything. The card travels inside the same file
(and is mirrored to a ``.json`` beside it for humans), so weights and their
description cannot drift apart; a SHA-256 of the tensors in the card catches
files modified after they were written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..runtime.weights import weights_digest
from ..shared.model_card import CARD_KEY, FORMAT, FORMAT_VERSION, ModelFileError
from ..shared.options import SessionOptions
from .config import ModelConfig, config_from_card
from .layout import checked_config, read_layout
from .network import StreamingTalker

__all__ = ["ModelFileError", "base_card", "save_checkpoint", "read_card", "load_checkpoint"]

def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    return weights_digest({k: v.detach().cpu().numpy() for k, v in tensors.items()})


def base_card(cfg: ModelConfig, channels: list[str], channel_space: str = "arkit",
              name: str = "streamingtalker", styles: list[str] | None = None,
              value_range: tuple[float, float] | None = (0.0, 1.0)) -> dict[str, Any]:
    """The model card fields every checkpoint carries (training adds data and quality)."""
    if len(channels) != cfg.num_channels:
        raise ValueError(f"{len(channels)} channel names for {cfg.num_channels} channels")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
        "core_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": cfg.to_dict(), "fps": cfg.fps, "sample_rate": cfg.sample_rate,
        "channels": list(channels), "channel_space": channel_space,
        "value_range": list(value_range) if value_range else None,
        "chunk_frames": cfg.chunk_frames, "lookahead_ms": cfg.lookahead_ms,
        "algorithmic_latency_ms": round(cfg.algorithmic_latency_ms, 2),
        "styles": list(styles) if styles else ["generic"][: cfg.num_styles] + [
            f"style{i}" for i in range(1, cfg.num_styles)],
        "defaults": SessionOptions.card_defaults(cfg.objective),
        "training": {"data": "none (randomly initialised)", "trained": False},
        "quality": {},
    }


def save_checkpoint(path: str | Path, model: StreamingTalker, card: dict[str, Any],
                    extra_tensors: dict[str, np.ndarray] | None = None) -> Path:
    """Write weights + card atomically (``path`` and ``path.with_suffix('.json')``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[k] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
    card = dict(card)
    card["architecture"] = model.cfg.to_dict()
    card["parameters"] = model.num_parameters()
    card["weights_sha256"] = _tensor_digest(tensors)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={CARD_KEY: json.dumps(card)})
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """Read and check only the model card (cheap: no tensors are loaded)."""
    return read_layout(path)[0]


def load_checkpoint(path: str | Path, device: str = "cpu"
                    ) -> tuple[StreamingTalker, dict[str, Any], dict[str, torch.Tensor]]:
    """Load a checkpoint. Returns (model in eval mode, card, extra tensors such as a basis).

    Strict: the card is checked against a schema and its architecture against the file's
    tensors (every one used, none missing or extra, exact shapes) before the model is built."""
    from safetensors.torch import load_file

    path = Path(path)
    card, header, data_bytes = read_layout(path)
    cfg = checked_config(path.name, card, header, data_bytes)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path.name}: cannot read the weights (corrupt or truncated): {exc}") from None
    if card.get("weights_sha256") and _tensor_digest(tensors) != card["weights_sha256"]:
        raise ModelFileError(f"{path.name}: the weights do not match the checksum in the model card "
                             "(the file was modified or damaged after it was written)")
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{path.name}: tensor {name} contains NaN or infinite values")
    model = StreamingTalker(cfg)
    expected = model.state_dict()
    model.load_state_dict({k: tensors[k] for k in expected}, strict=True)
    extra = {k: v for k, v in tensors.items() if k not in expected}
    return model.to(device).eval(), card, extra
