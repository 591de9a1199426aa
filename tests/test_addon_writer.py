"""The keyframe writer in real Blender: layered actions (4.4+) or Action.fcurves (4.2–4.3), O(chunk) appends,
replace semantics. Runs on every Blender of the matrix (bpy_matrix)."""

from __future__ import annotations

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.bpy_matrix]

from streamingtalker_addon.blender import keyframes  # noqa: E402

from addon_helpers import arkit_mesh, curve_values  # noqa: E402


@pytest.fixture()
def obj():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return arkit_mesh(names=["jawOpen", "mouthClose", "eyeBlinkLeft"], extra=())


def _pairs():
    return [(0, "jawOpen", "jawOpen"), (2, "eyeBlinkLeft", "eyeBlinkLeft")]


def test_chunked_appends_write_exact_keys_and_trim(obj):
    rng = np.random.default_rng(1)
    data = rng.random((500, 3)).astype(np.float32)
    w = keyframes.TakeWriter(obj, _pairs(), frame_start=11, expected_frames=100)
    for i in range(0, 470, 47):  # stops at 470 of 500: like a cancelled take
        w.append(data[i:i + 47])
    assert w.capacity > w.written == 470
    assert w.finish() == 470
    curves = curve_values(obj)
    assert set(curves) == {"jawOpen", "eyeBlinkLeft"}
    for name, col in (("jawOpen", 0), ("eyeBlinkLeft", 2)):
        co = curves[name]
        assert len(co) == 470  # unwritten capacity trimmed
        np.testing.assert_array_equal(co[:, 0], np.arange(11, 481))
        np.testing.assert_allclose(co[:, 1], data[:470, col], atol=1e-7)
    ad = obj.data.shape_keys.animation_data
    assert ad.action.get(keyframes.TAKE_PROP)
    if bpy.app.version >= (4, 4, 0):  # a layered action with an explicit KEY slot
        assert keyframes.layered_actions()
        assert ad.action_slot is not None and ad.action_slot.target_id_type == "KEY"
        bag = ad.action.layers[0].strips[0].channelbag(ad.action_slot)
        assert sorted(fc.data_path for fc in bag.fcurves) == sorted(keyframes.data_path_for(k) for k in
                                                                      ("jawOpen", "eyeBlinkLeft"))
    else:  # 4.2–4.3: the legacy Action.fcurves of an action rooted on shape keys
        assert not keyframes.layered_actions()
        assert ad.action.id_root == "KEY" and len(ad.action.fcurves) == 2
    # Blender itself evaluates the take on the shape keys (the action and its slot are really bound)
    bpy.context.scene.frame_set(11 + 200)
    kb = obj.data.shape_keys.key_blocks
    assert kb["jawOpen"].value == pytest.approx(data[200, 0], abs=1e-6)
    assert kb["eyeBlinkLeft"].value == pytest.approx(data[200, 2], abs=1e-6)
    # evaluation between frames is linear (no Bezier overshoot)
    fc = keyframes.find_fcurves(obj.data.shape_keys)[keyframes.data_path_for("jawOpen")]
    assert fc.evaluate(11.5) == pytest.approx((data[0, 0] + data[1, 0]) / 2, abs=1e-6)


def test_replace_reuses_curves_new_keeps_old_take(obj):
    w = keyframes.TakeWriter(obj, _pairs(), 1)
    w.append(np.ones((50, 3), np.float32))
    w.finish()
    first = obj.data.shape_keys.animation_data.action
    # replace with a different binding: old curve of eyeBlinkLeft must disappear, no duplicates
    w = keyframes.TakeWriter(obj, [(1, "mouthClose", "mouthClose"), (0, "jawOpen", "jawOpen")], 5, "REPLACE")
    w.append(np.full((20, 3), 0.25, np.float32))
    w.finish()
    assert obj.data.shape_keys.animation_data.action == first
    curves = curve_values(obj)
    assert sorted(curves) == ["jawOpen", "mouthClose"]
    assert all(len(c) == 20 and c[0, 0] == 5 for c in curves.values())
    w = keyframes.TakeWriter(obj, _pairs(), 1, "NEW")
    w.append(np.zeros((10, 3), np.float32))
    w.finish()
    assert obj.data.shape_keys.animation_data.action != first
    assert first.name in bpy.data.actions and first.use_fake_user


def test_append_cost_is_independent_of_action_length(obj):
    """A 30-frame chunk at frame 27,000 costs about what it costs at frame 0 (O(chunk))."""
    chunk = np.random.default_rng(2).random((30, 3)).astype(np.float32)
    w = keyframes.TakeWriter(obj, _pairs(), 1)

    def timed() -> float:
        t = time.perf_counter()
        for _ in range(20):
            w.append(chunk)
        return (time.perf_counter() - t) / 20

    w.append(chunk)  # first allocation
    early = min(timed() for _ in range(3))
    while w.written < 27000:
        w.append(np.repeat(chunk, 30, axis=0))
    late = min(timed() for _ in range(3))
    assert late < 3 * early + 2e-4, (early, late)
    w.finish()
    assert len(curve_values(obj)["jawOpen"]) == w.written


def test_writer_refuses_mesh_without_keys():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(ValueError, match="shape keys"):
        keyframes.TakeWriter(bpy.context.object, _pairs(), 1)
