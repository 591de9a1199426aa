"""Read a checkpoint's model card without torch (stdlib only; used inside Blender).

A safetensors file starts with a little-endian u64 header length and a JSON
header whose ``__metadata__`` holds our card, so the add-on can learn a
model's channels and channel space before any inference process exists.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

CARD_KEY = "streamingtalker.card"
_MAX_HEADER = 100 * 2**20


def read_card_header(path: str | Path) -> dict[str, Any]:
    """The model card of ``path``; ValueError with a readable message if there is none."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError(f"{path.name} is not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", raw)
            if n > _MAX_HEADER:
                raise ValueError(f"{path.name} is not a safetensors file (header length {n})")
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path.name} is not a safetensors file (bad header)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or CARD_KEY not in meta:
        raise ValueError(f"{path.name} is not a StreamingTalker checkpoint (no model card)")
    card = json.loads(meta[CARD_KEY])
    if not isinstance(card, dict):
        raise ValueError(f"{path.name}: the model card is not a JSON object")
    return card
