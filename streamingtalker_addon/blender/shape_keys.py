"""The one shape-key writer (bpy data access only).

Every shape key the add-on makes goes through :func:`write_shape_keys`: the demo
head's 52 ARKit keys, FLAME keys, and vertex-space basis keys (from *Bind* and from
*Generate*'s fallback). A key is its offsets from the mesh's rest shape; new keys
start at value 0 (Blender 5.0 creates them at 1.0), existing keys of the same name
are overwritten in place, and other keys on the mesh are left alone.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

import numpy as np


class KeyData(Protocol):
    """What a shape key to write needs (``inference_core.flame.shapekeys.ShapeKey`` is one)."""

    name: str
    offsets: np.ndarray  # (V, 3), in the mesh's local frame
    slider_min: float
    slider_max: float


def rest_positions(obj: Any) -> np.ndarray:
    """The mesh's rest shape: the Basis key if it has shape keys, else its vertices (float64)."""
    me = obj.data
    n = len(me.vertices)
    co = np.empty(n * 3, np.float32)
    key = me.shape_keys
    if key is not None and key.reference_key is not None:
        key.reference_key.data.foreach_get("co", co)
    else:
        me.vertices.foreach_get("co", co)
    return co.reshape(n, 3).astype(np.float64)


def write_shape_keys(obj: Any, keys: Iterable[KeyData]) -> int:
    """Create or overwrite shape keys (rest + offsets); returns how many were written."""
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
    rest = rest_positions(obj)
    blocks = obj.data.shape_keys.key_blocks
    n = 0
    for k in keys:
        kb = blocks.get(k.name)
        if kb is None:
            kb = obj.shape_key_add(name=k.name, from_mix=False)
            kb.value = 0.0  # new keys start inactive (bpy 5.0 creates them at 1.0)
        kb.slider_min, kb.slider_max = max(-10.0, k.slider_min), min(10.0, k.slider_max)
        kb.data.foreach_set("co", (rest + k.offsets).astype(np.float32).ravel())
        n += 1
    # foreach_set does not tag the Key for re-evaluation: without this the viewport and
    # exporters keep showing the previous key shapes until something else changes
    obj.data.shape_keys.update_tag()
    obj.data.update()
    return n
