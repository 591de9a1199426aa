"""Editable takes in real Blender: actions named after the audio, NLA strips, Blender's own key thinning,
and the FBX round trip of thinned and NLA takes. The plain functions a headless caller uses are tested
directly; the panel's Generate is tested once through the real bridge."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from streamingtalker_addon.blender import fbx_export, keyframes, takes  # noqa: E402
from streamingtalker_addon.client.core import ARKIT_52  # noqa: E402
from streamingtalker_addon.logic import presets  # noqa: E402

from addon_helpers import arkit_mesh, curve_values, make_speech, reset_blender  # noqa: E402

FBX_TOLERANCE = 1e-4  # FBX stores animation as float32 percent


def _smooth_frames(n: int, seed: int = 0) -> np.ndarray:
    """Speech-like motion: smooth random curves in [0, 1] for every channel."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n + 40, 52)).cumsum(0)
    kernel = np.hanning(15) / np.hanning(15).sum()
    x = np.stack([np.convolve(x[:, c], kernel, "valid")[:n] for c in range(52)], 1)
    x = (x - x.min(0)) / np.maximum(np.ptp(x, 0), 1e-6)
    return x.astype(np.float32)


def _take(obj, name: str, n: int = 240, start: int = 1, mode: str = "REPLACE", seed: int = 0):
    b = presets.auto_bind(ARKIT_52, [kb.name for kb in obj.data.shape_keys.key_blocks[1:]])
    w = keyframes.TakeWriter(obj, b, start, mode, take_name=name)
    w.write_bulk(_smooth_frames(n, seed))
    w.finish()
    return w


def _evaluate(fcurves: dict, frames) -> dict[str, np.ndarray]:
    return {p: np.array([fc.evaluate(float(f)) for f in frames]) for p, fc in fcurves.items()}


def test_take_name_comes_from_the_audio():
    assert takes.take_name("/x/Line 042 (take 2).wav") == "Line 042 (take 2)"
    assert takes.take_name("") == "StreamingTalker" and takes.take_name(None, "Head") == "Head"
    assert len(takes.take_name("a" * 200 + ".wav")) == 60


def test_thinning_keeps_the_curves_within_the_bound_and_touches_nothing_else():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = arkit_mesh("Face")
    other = arkit_mesh("Other", names=["jawOpen"], extra=())
    w_other = _take(other, "other take", n=50)
    other.select_set(True)
    bpy.context.view_layer.objects.active = other
    w = _take(face, "line")
    frames = range(1, 241)
    before = _evaluate({fc.data_path: fc for fc in w.fcurves}, frames)
    n_before, n_after = takes.thin_take(face, 0.01, list(w.fcurves))
    assert n_before == 240 * 52 and n_after < n_before / 4, (n_before, n_after)
    after = _evaluate({fc.data_path: fc for fc in w.fcurves}, frames)
    worst = max(np.abs(after[p] - before[p]).max() for p in before)
    assert worst <= 0.01 + 1e-6, worst
    assert len(w_other.fcurves[0].keyframe_points) == 50  # another object's take is untouched
    assert other.select_get() and bpy.context.view_layer.objects.active == other  # selection put back
    with pytest.raises(ValueError):
        takes.thin_take(face, 0.0)


def test_fbx_round_trip_of_a_thinned_take(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = arkit_mesh("Face")
    w = _take(face, "line", n=90, start=5)
    report = takes.finish_take(face, w, takes.TakeOptions(name="line", thin_error=0.02))
    assert report["keys"] < report["keys_before_thinning"] / 3
    thinned = {p.split('"')[1]: fc for p, fc in keyframes.find_fcurves(face.data.shape_keys).items()}
    # what plays (and what the exporter bakes) is the curve clamped to the key's slider range [0, 1]:
    # the fitted Béziers may dip a little below 0 between keys
    expected = {k: np.clip([fc.evaluate(float(f)) for f in range(5, 95)], 0, 1) for k, fc in thinned.items()}
    out = fbx_export.export_fbx(bpy.context, face, tmp_path / "thin.fbx")
    assert (out["frame_start"], out["frame_end"]) == (5, 94) and out["animated_shape_keys"] == 52
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_scene.fbx(filepath=out["path"], anim_offset=0.0) == {"FINISHED"}
    back = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    got = {p.split('"')[1]: np.array([fc.evaluate(float(f)) for f in range(5, 95)])
           for p, fc in keyframes.find_fcurves(back.data.shape_keys).items()}
    assert set(expected) <= set(got) and all(np.ptp(got[k]) < FBX_TOLERANCE for k in set(got) - set(expected))
    assert max(np.abs(got[k] - expected[k]).max() for k in expected) < FBX_TOLERANCE


def test_nla_strips_named_after_the_audio_replace_or_stack(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    face = arkit_mesh("Face")
    key = face.data.shape_keys
    w = _take(face, "hello", n=60, start=10)
    values = w.values()
    strip = takes.push_to_nla(face, w.action, 10, "hello")
    assert key.animation_data.action is None and strip.name == "hello" and strip.action.name == "hello"
    assert (strip.frame_start, strip.frame_end) == (10, 69)
    bpy.context.scene.frame_set(30)  # the strip plays the take
    col = w.shape_keys.index("jawOpen")
    assert key.key_blocks["jawOpen"].value == pytest.approx(values[20, col], abs=1e-5)
    # FBX exports the NLA take (no active action) over the strip's range
    out = fbx_export.export_fbx(bpy.context, face, tmp_path / "nla.fbx")
    assert (out["frame_start"], out["frame_end"]) == (10, 69) and out["animated_shape_keys"] == 52
    # REPLACE: a new take over the same frames replaces the strip (and its orphaned action)
    w2 = _take(face, "hello again", n=60, start=10, seed=1)
    takes.push_to_nla(face, w2.action, 10, "hello again", replace=True)
    strips = [s for t in key.animation_data.nla_tracks for s in t.strips]
    assert [s.name for s in strips] == ["hello again"] and "hello" not in bpy.data.actions
    # the same line again: its new action takes the name back from the take it replaces
    w2b = _take(face, "hello again", n=60, start=10, seed=4)
    assert w2b.action.name == "hello again.001"
    takes.push_to_nla(face, w2b.action, 10, "hello again", replace=True)
    assert [a.name for a in bpy.data.actions] == ["hello again"]
    # NEW: an overlapping take stacks on a new track; takes elsewhere share the track
    w3 = _take(face, "other line", n=60, start=10, mode="NEW", seed=2)
    takes.push_to_nla(face, w3.action, 10, "other line", replace=False)
    w4 = _take(face, "later line", n=30, start=200, mode="NEW", seed=3)
    takes.push_to_nla(face, w4.action, 200, "later line", replace=False)
    tracks = key.animation_data.nla_tracks
    assert [[s.name for s in t.strips] for t in tracks] == [["hello again"], ["other line", "later line"]]


def test_generate_writes_the_take_as_asked(tmp_path):
    from inference_core.shared.paths import DEFAULT_MODEL

    speech = make_speech(tmp_path / "Greeting line.wav", "Hello there, nice to meet you.")
    reset_blender(DEFAULT_MODEL)
    scene = bpy.context.scene
    scene.render.fps = 30
    st = scene.streamingtalker
    st.target, st.audio_file, st.add_strip = arkit_mesh(), str(speech), False
    assert bpy.ops.streamingtalker.generate(timeout=120) == {"FINISHED"}, st.status
    key = st.target.data.shape_keys
    assert key.animation_data.action.name == "Greeting line"
    dense = curve_values(st.target)
    assert all(len(v) == len(dense["jawOpen"]) for v in dense.values())
    st.take_nla, st.take_thin, st.take_thin_error = True, True, 0.02
    assert bpy.ops.streamingtalker.generate(timeout=120) == {"FINISHED"}, st.status
    assert "thinned to" in st.status
    assert key.animation_data.action is None
    (strip,) = [s for t in key.animation_data.nla_tracks for s in t.strips]
    assert strip.name == "Greeting line" and strip.action.name == "Greeting line"
    thinned = fbx_export._shape_key_curves(st.target)  # the strip's curves
    assert sum(len(fc.keyframe_points) for fc in thinned.values()) < sum(len(v) for v in dense.values()) / 2
    from streamingtalker_addon import state

    state.get().server.shutdown()
