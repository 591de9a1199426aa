"""Read a checkpoint's tensors with numpy alone (no torch, no safetensors package).

A safetensors file is an 8-byte header length, a JSON header (tensor dtypes,
shapes, byte offsets, and our model card in ``__metadata__``), then raw
little-endian tensors. Reading it this way executes nothing from the file and
needs only numpy, so the ONNX runtime in Blender's own Python and the add-on
(vertex-space bases) use it; the torch runtime loads the same file with the
``safetensors`` package. :func:`weights_digest` is the same checksum
:mod:`inference_core.model.checkpoint` writes into the card.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..shared.model_card import card_from_header, read_header

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


class WeightsError(ValueError):
    """The file's tensors cannot be read (missing, truncated, inconsistent)."""


def read_tensors(path: str | Path, names: Iterable[str] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(tensors by name, model card) of ``path``; ``names`` limits which are read."""
    path = Path(path)
    try:
        header, data_start = read_header(path)
        card = card_from_header(header, path.name)
    except ValueError as exc:
        raise WeightsError(str(exc)) from None
    size = path.stat().st_size
    wanted = [n for n in header if n != "__metadata__"] if names is None else list(names)
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        for name in wanted:
            info = header.get(name)
            if not isinstance(info, dict) or not isinstance(info.get("dtype"), str) or info["dtype"] not in _DTYPES:
                raise WeightsError(f"{path.name} has no readable tensor '{name}'")
            try:
                begin, end = (_count(x) for x in info["data_offsets"])
                shape = tuple(_count(s) for s in info["shape"])
            except (KeyError, TypeError, ValueError):
                raise WeightsError(f"{path.name}: tensor '{name}' has a malformed header entry") from None
            dt = np.dtype(_DTYPES[info["dtype"]])
            if end - begin != math.prod(shape) * dt.itemsize or data_start + end > size:
                raise WeightsError(f"{path.name}: tensor '{name}' is truncated or inconsistent")
            fh.seek(data_start + begin)
            out[name] = np.frombuffer(fh.read(end - begin), dtype=dt).reshape(shape)
    return out, card


def _count(value: object) -> int:
    """A non-negative integer from a header (a size or an offset); ValueError otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(value)
    return value


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over the tensors in name order (the card's ``weights_sha256``)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name], dtype=np.float32)
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.tobytes())
    return h.hexdigest()
