"""Vertex-space models on a mesh: the basis, and the shape keys it gives (numpy only, no bpy).

A vertex-space model (trained on VOCASET/BIWI) outputs K coefficients per frame of a
linear basis (K × V × 3 offsets) stored in its checkpoint beside the training
template (V × 3). Driving a mesh of that topology means one shape key per
component. The basis lives in the training data's frame; a mesh may be stored in
another scale, orientation or position, so the offsets are carried into the mesh's
frame by a similarity fit of the template onto the mesh's rest shape. *Bind
vertex-space model* (basis read from the file) and *Generate*'s fallback (basis
sent by the server) both go through :func:`basis_keys`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..client.core import model_card, shapekeys, weights

ShapeKey = shapekeys.ShapeKey
Frame = shapekeys.Frame
TopologyError = shapekeys.TopologyError


class VertexModelError(ValueError):
    """The checkpoint has no usable vertex basis."""


def check_basis(basis: np.ndarray, template: np.ndarray, channels: list[str], name: str) -> None:
    """Refuse a basis that does not fit its template or its channel names, or holds NaN/inf."""
    if basis.ndim != 3 or basis.shape[2] != 3 or template.shape != basis.shape[1:]:
        raise VertexModelError(f"{name}: basis {basis.shape} and template {template.shape} do not fit")
    if len(channels) != basis.shape[0]:
        raise VertexModelError(f"{name}: {len(channels)} channel names for {basis.shape[0]} basis components")
    if not (np.isfinite(basis).all() and np.isfinite(template).all()):
        raise VertexModelError(f"{name}: the basis contains NaN or infinite values")


def read_vertex_basis(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(basis (K, V, 3), template (V, 3), card) from a vertex-space StreamingTalker checkpoint.

    Read with numpy alone (no torch runtime needed, nothing in the file executed)."""
    path = Path(path)
    if not path.is_file():
        raise VertexModelError(f"model file not found: {path}")
    try:
        header, _ = model_card.read_header(path)
        card = model_card.card_from_header(header, path.name)
    except ValueError:
        card = {}
    if card.get("channel_space") != "vertex":
        raise VertexModelError(
            f"{path.name} is not a vertex-space model (it drives "
            f"{card.get('channel_space', 'unknown')} channels); bind it by shape-key names instead")
    try:
        tensors, _ = weights.read_tensors(path, ["motion.basis", "motion.template"])
    except weights.WeightsError as exc:
        raise VertexModelError(str(exc)) from None
    basis = tensors["motion.basis"].astype(np.float32)
    template = tensors["motion.template"].astype(np.float32)
    channels = list(card.get("channels") or [])
    check_basis(basis, template, channels, path.name)
    return basis, template, card


def basis_from_message(payload: bytes, components: int, vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """(basis, template) from the server's ``basis`` message (K*V*3 then V*3 float32)."""
    data = np.frombuffer(payload, dtype="<f4")
    n = components * vertices * 3
    if data.size != n + vertices * 3:
        raise VertexModelError("the server's basis message does not match its header")
    return data[:n].reshape(components, vertices, 3), data[n:].reshape(vertices, 3)


def basis_keys(basis: np.ndarray, template: np.ndarray, channels: list[str], rest: np.ndarray
               ) -> tuple[list[Any], Any]:
    """Shape keys (one per component, named by channel) mapped into the mesh's frame, and that frame."""
    rest = np.asarray(rest, np.float64)
    if rest.shape != template.shape:
        raise TopologyError(f"the mesh has {len(rest)} vertices; the model's basis has {len(template)}")
    frame = shapekeys.fit_similarity(template.astype(np.float64), rest)
    keys = [ShapeKey(name, frame.offsets_to_mesh(comp.astype(np.float64)), -10.0, 10.0,
                     "vertex-space model component") for name, comp in zip(channels, basis)]
    return keys, frame
