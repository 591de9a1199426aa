"""Takes an animator can edit: an action named after the audio, an optional NLA strip, optional thinning.

Plain functions (no operator, no UI), so the panel's *Generate* and a headless bake share them:

* :func:`take_name` — the action's (and strip's) name, from the audio file.
* :func:`push_to_nla` — the take becomes a strip on the shape keys' NLA track (the action is
  pushed down, as Blender's own *Push Down* does), so takes can be moved, blended and muted.
* :func:`thin_take` — Blender's own F-curve decimation (the Graph Editor's *Decimate*, by
  allowed error) on the take's curves only: far fewer keys, the curve within the bound.
* :func:`finish_take` — the three in the order a job needs them.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import keyframes

TRACK_NAME = "StreamingTalker"


@dataclass(frozen=True)
class TakeOptions:
    """How a finished take is kept: its name, on an NLA track or not, thinned or not."""

    name: str = ""
    nla: bool = False
    thin_error: float = 0.0  # > 0: decimate the curves with this largest allowed error


def take_name(audio_path: str | Path | None, fallback: str = "StreamingTalker") -> str:
    """``…/Line 042 (take 2).wav`` → ``Line 042 (take 2)``: the audio's file name without extension."""
    stem = Path(str(audio_path)).stem if audio_path else ""
    stem = re.sub(r"[\x00-\x1f]", "", stem).strip()
    return (stem or fallback)[:60]  # Blender names are at most 63 bytes


def take_fcurves(key: Any) -> dict[str, Any]:
    """data_path → F-curve of ``key``'s take: its active action's, else those of its NLA strips."""
    found = keyframes.find_fcurves(key)
    if found or key is None or key.animation_data is None:
        return found
    out: dict[str, Any] = {}
    for strip in _strips(key):
        for fc in keyframes.slot_fcurves(strip.action, getattr(strip, "action_slot", None)):
            out.setdefault(fc.data_path, fc)
    return out


def nla_range(key: Any) -> tuple[int, int] | None:
    """First and last frame covered by ``key``'s unmuted NLA strips, or None."""
    spans = [(s.frame_start, s.frame_end) for s in _strips(key)]
    if not spans:
        return None
    return int(round(min(a for a, _ in spans))), int(round(max(b for _, b in spans)))


def _strips(key: Any) -> Iterator[Any]:
    ad = getattr(key, "animation_data", None)
    for track in ad.nla_tracks if ad is not None else ():
        if not track.mute:
            yield from (s for s in track.strips if not s.mute and s.action is not None)


def push_to_nla(obj: Any, action: Any, frame_start: int, name: str, replace: bool = True) -> Any:
    """Put ``action`` on the shape keys' StreamingTalker NLA track as a strip; returns the strip.

    The active action is cleared (the strip plays it). ``replace``: earlier take strips on
    the track that overlap this one are removed (with their actions, when nothing else uses
    them); otherwise an overlapping take goes on a new track above.
    """
    import bpy

    key = obj.data.shape_keys
    ad = key.animation_data or key.animation_data_create()
    slot = ad.action_slot if keyframes.layered_actions() else None
    start = float(frame_start)
    end = start + max(1.0, action.frame_range[1] - action.frame_range[0])
    tracks = [t for t in ad.nla_tracks if t.name.startswith(TRACK_NAME)]
    track = tracks[-1] if tracks else None

    def overlaps(t: Any) -> list[Any]:
        return [s for s in t.strips if s.frame_start < end and s.frame_end > start]

    if track is not None and replace:
        for t in tracks:
            for s in overlaps(t):
                old = s.action
                t.strips.remove(s)
                if old is not None and old != action and old.users == 0 and old.get(keyframes.TAKE_PROP):
                    bpy.data.actions.remove(old)
    elif track is not None and overlaps(track):
        track = None
    if track is None:
        track = ad.nla_tracks.new(prev=tracks[-1] if tracks else None)
        track.name = TRACK_NAME
    ad.action = None  # pushed down: the strip plays it (and keeps a user of the action)
    if action.name != name:  # "line.001" while the replaced take still held "line"
        action.name = name
    strip = track.strips.new(name, int(start), action)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    strip.name = name
    return strip


@contextmanager
def _graph_editor(obj: Any) -> Iterator[dict[str, Any]]:
    """A Graph Editor to run its operators in, headless too (an area borrowed and given back)."""
    import bpy

    wm: Any = bpy.context.window_manager
    if not len(wm.windows):
        raise RuntimeError("thinning keys needs a Blender window (the Graph Editor's decimate operator)")
    win = wm.windows[0]
    graphs = [a for a in win.screen.areas if a.type == "GRAPH_EDITOR"]
    area = graphs[0] if graphs else max(win.screen.areas, key=lambda a: a.width * a.height)
    old_type = area.type
    area.type = "GRAPH_EDITOR"
    space: Any = area.spaces.active
    ds = space.dopesheet
    saved = ds.show_only_selected, ds.show_hidden
    try:
        ds.show_only_selected, ds.show_hidden = True, False
        region = next(r for r in area.regions if r.type == "WINDOW")
        yield dict(window=win, screen=win.screen, area=area, region=region, space_data=space)
    finally:
        ds.show_only_selected, ds.show_hidden = saved
        area.type = old_type


def thin_take(obj: Any, max_error: float, fcurves: list[Any] | None = None) -> tuple[int, int]:
    """Decimate the take's shape-key curves with Blender's own operator; (keys before, keys after).

    Only these curves change: every other key in the file is deselected for the run and the
    selection is put back. The error bound is the operator's *Max Error Margin*.
    """
    import bpy

    if max_error <= 0:
        raise ValueError("the error bound must be positive")
    key = obj.data.shape_keys
    curves = list(fcurves if fcurves is not None else take_fcurves(key).values())
    before = sum(len(fc.keyframe_points) for fc in curves)
    if not curves:
        return 0, 0
    others = [fc for idb in (obj, obj.data) for fc in keyframes.find_fcurves(idb).values()]
    saved_keys = {id(fc): _selection(fc) for fc in others}
    view_layer: Any = bpy.context.view_layer
    saved_sel = [o for o in view_layer.objects if o.select_get()]
    saved_active = view_layer.objects.active
    try:
        for o in saved_sel:
            o.select_set(False)
        obj.select_set(True)
        view_layer.objects.active = obj
        for fc in others:
            _select(fc, False)
        for fc in curves:
            fc.hide = False
            fc.lock = False
            fc.select = True
            _select(fc, True)
        with _graph_editor(obj) as override, bpy.context.temp_override(**override):
            result = bpy.ops.graph.decimate(mode="ERROR", remove_error_margin=float(max_error))
        if result != {"FINISHED"}:
            raise RuntimeError(f"Blender's decimate operator returned {result}")
    finally:
        for fc in others:
            _restore_selection(fc, saved_keys[id(fc)])
        obj.select_set(False)
        for o in saved_sel:
            o.select_set(True)
        view_layer.objects.active = saved_active
    return before, sum(len(fc.keyframe_points) for fc in curves)


def _selection(fc: Any) -> np.ndarray:
    sel = np.zeros(len(fc.keyframe_points), bool)
    fc.keyframe_points.foreach_get("select_control_point", sel)
    return sel


def _select(fc: Any, state: bool) -> None:
    n = len(fc.keyframe_points)
    for prop in ("select_control_point", "select_left_handle", "select_right_handle"):
        fc.keyframe_points.foreach_set(prop, np.full(n, state, bool))


def _restore_selection(fc: Any, sel: np.ndarray) -> None:
    if len(sel) == len(fc.keyframe_points):
        fc.keyframe_points.foreach_set("select_control_point", sel)


def finish_take(obj: Any, writer: keyframes.TakeWriter, options: TakeOptions, replace: bool = True) -> dict[str, Any]:
    """After a take is written: thin it, then push it to the NLA, as ``options`` say; returns what was done."""
    report: dict[str, Any] = {"action": writer.action.name, "keys": writer.written * len(writer.fcurves)}
    if writer.written and options.thin_error > 0:
        before, after = thin_take(obj, options.thin_error, list(writer.fcurves))
        report.update(keys=after, keys_before_thinning=before)
    if writer.written and options.nla:
        strip = push_to_nla(obj, writer.action, writer.frame_start, writer.action.name, replace=replace)
        report["nla_strip"] = f"{strip.id_data.name}: {strip.name}"
    return report
