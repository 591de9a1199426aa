"""Write streamed shape-key motion into an action as keyframes, fast.

Why it is built this way:

* Blender 5 removed ``Action.fcurves``: curves live in a layer → keyframe strip
  → channelbag for the ID's slot, and the slot must be assigned explicitly.
  Blender 4.2–4.3 only have ``Action.fcurves``; both paths are handled here.
* ``keyframe_points.add(n)`` reallocates the whole array (and ``foreach_set``
  rewrites it), so appending a chunk that way costs O(action length). The
  writer instead grows each curve's capacity geometrically, parking unwritten
  keys on their future frames with value 0, and fills a chunk by setting only
  its own points: O(chunk) per append, amortised O(1) per key for growth.
  :meth:`TakeWriter.finish` trims the unused tail, so a cancelled or failed
  take leaves exactly the frames that were written, nothing more.
* Keys are LINEAR: they are dense samples (one per frame); linear interpolation
  never overshoots between them as auto-clamped Béziers can at sharp onsets.
"""

from __future__ import annotations

from typing import Any, Sequence

import bpy
import numpy as np

from ..logic.binding import Binding

#: Custom property marking actions written by this add-on (REPLACE reuses them).
TAKE_PROP = "streamingtalker_take"
_LINEAR = 1  # enum value of 'LINEAR' for foreach_set("interpolation")
_MIN_CAPACITY = 64


def data_path_for(shape_key: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(shape_key)}"].value'


def layered_actions() -> bool:
    """Slotted/layered actions exist from Blender 4.4; 5.0 has nothing else."""
    return "layers" in bpy.types.Action.bl_rna.properties


def _slot_for(action: Any, key: Any) -> Any:
    for slot in action.slots:
        if getattr(slot, "target_id_type", "KEY") == "KEY":
            return slot
    return action.slots.new(id_type="KEY", name=key.name)


def fcurve_collection(action: Any, key: Any) -> Any:
    """The F-curve collection of ``action`` that animates ``key`` (assigning it and its slot)."""
    ad = key.animation_data or key.animation_data_create()
    ad.action = action
    if not layered_actions():
        return action.fcurves
    slot = _slot_for(action, key)
    ad.action_slot = slot
    layer = action.layers[0] if len(action.layers) else action.layers.new("StreamingTalker")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True).fcurves


def slot_fcurves(action: Any, slot: Any) -> list[Any]:
    """The F-curves of ``action`` that animate ``slot``: every layer's strips' channelbags for it
    (Blender 4.4+), or all of ``action.fcurves`` (4.2–4.3, where ``slot`` is ignored)."""
    if not layered_actions():
        return list(action.fcurves)
    if slot is None:
        return []
    return [fc for layer in action.layers for strip in layer.strips
            if (cb := strip.channelbag(slot)) is not None for fc in cb.fcurves]


def find_fcurves(key: Any) -> dict[str, Any]:
    """data_path → F-curve of the action currently animating ``key`` (empty if none)."""
    ad = key.animation_data
    if ad is None or ad.action is None:
        return {}
    return {fc.data_path: fc for fc in slot_fcurves(ad.action, getattr(ad, "action_slot", None))}


def prepare_take(obj: Any, take_name: str, mode: str = "REPLACE") -> tuple[Any, Any]:
    """Return (action, fcurve collection) for a new take on ``obj``'s shape keys.

    REPLACE reuses the action of the previous take (its curves are cleared by
    the writer, never duplicated) and renames it ``take_name``; NEW makes a fresh
    action. A user's own action that was assigned is kept with a fake user, never deleted.
    """
    key = obj.data.shape_keys
    ad = key.animation_data or key.animation_data_create()
    old = ad.action
    if mode == "REPLACE" and old is not None and old.get(TAKE_PROP):
        action = old
        if action.name != take_name:  # the take is named after its audio
            action.name = take_name
    else:
        if old is not None:
            old.use_fake_user = True
        action = bpy.data.actions.new(take_name)
        action[TAKE_PROP] = True
        if not layered_actions():
            setattr(action, "id_root", "KEY")  # 4.2-4.3 only
    return action, fcurve_collection(action, key)


class TakeWriter:
    """Appends resampled frames as keyframes on ``obj``'s shape keys, through a binding.

    ``binding`` is a :class:`~..logic.binding.Binding` (a name map or a linear map: one
    curve per driven key) or plain ``(channel index, channel, key)`` pairs.
    """

    def __init__(self, obj: Any, binding: Binding | Sequence[tuple[int, str, str]], frame_start: int,
                 mode: str = "REPLACE", take_name: str | None = None, expected_frames: int = 0):
        if obj is None or obj.type != "MESH" or obj.data.shape_keys is None:
            raise ValueError("the target must be a mesh with shape keys")
        self.binding = binding if isinstance(binding, Binding) else Binding(pairs=list(binding))
        if not self.binding.pairs:
            raise ValueError("no channel is bound to a shape key")
        self.obj = obj
        self.key = obj.data.shape_keys
        self.frame_start = int(frame_start)
        self.shape_keys = self.binding.keys
        self.action, coll = prepare_take(obj, take_name or f"{obj.name}_StreamingTalker", mode)
        wanted = {data_path_for(k) for k in self.shape_keys}
        existing = {fc.data_path: fc for fc in coll}
        for path, fc in existing.items():  # curves of a previous take that this one does not write
            if path.startswith("key_blocks[") and path not in wanted:
                coll.remove(fc)
        self.fcurves = []
        for k in self.shape_keys:
            path = data_path_for(k)
            fc = existing.get(path) or coll.new(path)
            fc.keyframe_points.clear()
            self.fcurves.append(fc)
        self.written = 0
        self.capacity = 0
        self._values = np.zeros((0, len(self.fcurves)), np.float32)
        self.finished = False
        if expected_frames > 0:
            self._grow(expected_frames)

    @property
    def last_frame(self) -> int:
        return self.frame_start + self.written - 1

    def _grow(self, need: int) -> None:
        """Raise capacity to at least ``need`` keys per curve; O(new capacity), amortised."""
        if need <= self.capacity:
            return
        new_cap = max(need, 2 * self.capacity, _MIN_CAPACITY)
        values = np.zeros((new_cap, len(self.fcurves)), np.float32)
        values[: self.written] = self._values[: self.written]
        self._values = values
        co = np.empty((new_cap, 2), np.float32)
        co[:, 0] = self.frame_start + np.arange(new_cap, dtype=np.float32)
        interp = np.full(new_cap, _LINEAR, np.int32)
        for j, fc in enumerate(self.fcurves):
            kps = fc.keyframe_points
            kps.add(new_cap - len(kps))
            co[:, 1] = values[:, j]
            kps.foreach_set("co", co.ravel())
            kps.foreach_set("interpolation", interp)
        self.capacity = new_cap

    def append(self, frames: np.ndarray) -> int:
        """Write ``(m, K)`` scene-rate frames (all model channels) after the last written one."""
        if self.finished:
            raise RuntimeError("take already finished")
        frames = np.asarray(frames, dtype=np.float32)
        m = len(frames)
        if m == 0:
            return 0
        vals = self.binding.values(frames)
        n0 = self.written
        self._grow(n0 + m)
        self._values[n0:n0 + m] = vals
        frames_x = (self.frame_start + np.arange(n0, n0 + m)).tolist()
        for j, fc in enumerate(self.fcurves):
            kps = fc.keyframe_points
            col = vals[:, j].tolist()
            for i in range(m):
                kps[n0 + i].co = (frames_x[i], col[i])
        self.written = n0 + m
        return m

    def write_bulk(self, frames: np.ndarray) -> int:
        """Write a whole take at once (empty take only): one allocation, one foreach_set per curve."""
        if self.written or self.capacity:
            raise RuntimeError("write_bulk needs an empty take")
        frames = np.asarray(frames, dtype=np.float32)
        n = len(frames)
        vals = self.binding.values(frames)
        co = np.empty((n, 2), np.float32)
        co[:, 0] = self.frame_start + np.arange(n, dtype=np.float32)
        interp = np.full(n, _LINEAR, np.int32)
        for j, fc in enumerate(self.fcurves):
            kps = fc.keyframe_points
            kps.add(n)
            co[:, 1] = vals[:, j]
            kps.foreach_set("co", co.ravel())
            kps.foreach_set("interpolation", interp)
        self._values = vals.copy()
        self.written = self.capacity = n
        return n

    def values(self) -> np.ndarray:
        """The written values, ``(written, bound channels)`` (what the curves hold)."""
        return self._values[: self.written].copy()

    def finish(self) -> int:
        """Trim unwritten capacity and recalculate the curves; returns frames written."""
        if self.finished:
            return self.written
        extra = self.capacity - self.written
        rebuild = extra > 256 and extra * 8 > self.written  # many removals: one vectorised rewrite is cheaper
        if rebuild:
            n = self.written
            co = np.empty((n, 2), np.float32)
            co[:, 0] = self.frame_start + np.arange(n, dtype=np.float32)
            interp = np.full(n, _LINEAR, np.int32)
        for j, fc in enumerate(self.fcurves):
            kps = fc.keyframe_points
            if rebuild:
                kps.clear()
                if n:
                    kps.add(n)
                    co[:, 1] = self._values[:n, j]
                    kps.foreach_set("co", co.ravel())
                    kps.foreach_set("interpolation", interp)
                continue
            for _ in range(extra):
                kps.remove(kps[len(kps) - 1], fast=True)
            # no fc.update(): keys are written in frame order and LINEAR, so there is
            # nothing to sort and no handle to recalculate (update() is O(n log n) per curve)
        self.capacity = self.written
        self.finished = True
        self.key.update_tag()
        return self.written
