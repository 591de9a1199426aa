"""FLAME / vertex-space helpers for the add-on that need no bpy (numpy + stdlib only).

* :func:`flame` — the core's torch-free FLAME modules (bundled copy or the checkout's).
* :func:`read_vertex_basis` — a vertex-space checkpoint's basis, template and model card
  read straight from the safetensors file: the format is an 8-byte header length, a JSON
  header, then raw little-endian tensors, so numpy reads it without the torch runtime and
  without executing anything from the file.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .core import inference_core, model_card

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}


class VertexModelError(ValueError):
    """The checkpoint has no usable vertex basis."""


def flame(name: str) -> ModuleType:
    """``inference_core.flame.<name>`` (loader, model, shapekeys): numpy-only modules."""
    return importlib.import_module(f"{inference_core.__name__}.flame.{name}")


def read_vertex_basis(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(basis (K, V, 3), template (V, 3), card) from a vertex-space StreamingTalker checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise VertexModelError(f"model file not found: {path}")
    size = path.stat().st_size
    try:
        header, data_start = model_card.read_header(path)
    except ValueError as exc:
        raise VertexModelError(str(exc)) from None
    try:
        card = model_card.card_from_header(header, path.name)
    except ValueError:
        card = {}
    if card.get("channel_space") != "vertex":
        raise VertexModelError(
            f"{path.name} is not a vertex-space model (it drives "
            f"{card.get('channel_space', 'unknown')} channels); bind it by shape-key names instead")
    with open(path, "rb") as fh:

        def tensor(name: str) -> np.ndarray:
            info = header.get(name)
            if not isinstance(info, dict) or info.get("dtype") not in _DTYPES:
                raise VertexModelError(f"{path.name} has no float tensor '{name}'")
            begin, end = (int(x) for x in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
            dt = np.dtype(_DTYPES[info["dtype"]])
            if end - begin != int(np.prod(shape)) * dt.itemsize or data_start + end > size or begin < 0:
                raise VertexModelError(f"{path.name}: tensor '{name}' is truncated or inconsistent")
            fh.seek(data_start + begin)
            return np.frombuffer(fh.read(end - begin), dtype=dt).reshape(shape).astype(np.float32)

        basis, template = tensor("motion.basis"), tensor("motion.template")
    if basis.ndim != 3 or basis.shape[2] != 3 or template.shape != basis.shape[1:]:
        raise VertexModelError(f"{path.name}: basis {basis.shape} and template {template.shape} do not fit")
    channels = card.get("channels") or []
    if len(channels) != basis.shape[0]:
        raise VertexModelError(f"{path.name}: {len(channels)} channel names for {basis.shape[0]} basis components")
    if not (np.isfinite(basis).all() and np.isfinite(template).all()):
        raise VertexModelError(f"{path.name}: the basis contains NaN or infinite values")
    return basis, template, card


def basis_keys(basis: np.ndarray, template: np.ndarray, channels: list[str], rest: np.ndarray
               ) -> tuple[list[Any], Any]:
    """Shape keys (one per component, named by channel) mapped into the mesh's frame.

    The basis lives in the training data's frame; a similarity fit between the checkpoint's
    template and the mesh carries the offsets onto a mesh stored in another scale/orientation.
    """
    sk = flame("shapekeys")
    rest = np.asarray(rest, np.float64)
    if rest.shape != template.shape:
        raise sk.TopologyError(f"the mesh has {len(rest)} vertices; the model's basis has {len(template)}")
    frame = sk.fit_similarity(template.astype(np.float64), rest)
    keys = [sk.ShapeKey(name, frame.offsets_to_mesh(comp.astype(np.float64)), -10.0, 10.0,
                        "vertex-space model component") for name, comp in zip(channels, basis)]
    return keys, frame
