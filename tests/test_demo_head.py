"""The demo head: the ICT FaceKit head carried as a compact asset, built into Blender objects.

The asset is checked against its source in ``../shared/assets/ict_face`` when that is present
(skipped otherwise: the product itself never needs it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamingtalker_addon.client.core import ARKIT_52
from streamingtalker_addon.demo_head import asset as head_asset
from streamingtalker_addon.demo_head import looks

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "assets" / "ict_face" / "ict_face_arkit.npz"


def test_asset_is_compact_licensed_and_complete():
    assert head_asset.ASSET.stat().st_size < 3_000_000
    notice = head_asset.LICENSE.read_text()
    assert "MIT License" in notice and "USC Institute for Creative Technologies" in notice
    h = head_asset.load_head()
    assert list(h.parts) == ["face", "head_neck", "mouth_socket", "eye_socket_left", "eye_socket_right",
                             "gums_tongue", "teeth", "eyeball_left", "eyeball_right"]
    assert len(h.vertices) == 23051 and len(h.shapes) == 53 and int(h.sizes.sum()) == len(h.corners)
    assert set(h.shapes) >= set(ARKIT_52) - {"tongueOut", "cheekPuff", "browInnerUp"}
    # metres, +Z up, looking down -Y: the nose tip is the front-most point and the crown the top
    lo, hi = h.vertices.min(0), h.vertices.max(0)
    assert 0.2 < hi[2] - lo[2] < 0.4 and 0.2 < hi[0] - lo[0] < 0.3
    nose = h.vertices[h.landmarks68[30]]
    assert nose[1] < np.percentile(h.vertices[:, 1], 1) and abs(nose[0]) < 0.002
    # a wide-open jaw moves the chin down by centimetres; no expression moves an eyeball
    chin = h.landmarks68[8]
    assert -0.05 < h.shapes["jawOpen"][chin, 2] < -0.02
    a, _ = h.parts["eyeball_left"]
    assert all(np.abs(d[a:]).max() == 0 for d in h.shapes.values())


@pytest.mark.skipif(not SOURCE.is_file(), reason="needs ../shared/assets/ict_face (the asset's source)")
def test_asset_matches_its_source_within_a_hundredth_of_a_millimetre():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_asset", ROOT / "scripts" / "build_demo_head_asset.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    src = np.load(SOURCE)
    keep = np.ones(len(src["neutral"]), bool)
    for name, s, e in build.part_ranges():
        keep[s:e] = name not in build.DROP
    h = head_asset.load_head()
    assert np.abs(h.vertices - build.to_blender(src["neutral"])[keep]).max() < 5e-6
    deltas = build.to_blender(src["deltas"].astype(np.float32))[:, keep]
    for i, name in enumerate(src["names"]):
        assert np.abs(h.shapes[str(name)] - deltas[i]).max() <= 1.0001e-5, name
    np.testing.assert_array_equal(h.landmarks68, src["landmarks68"])  # the face comes first: same indices


def test_look_splits_eyes_and_paints_lips():
    h = head_asset.load_head()
    look = looks.build_look(h)
    n = len(look.head.vertices)
    assert n == 21451 and all(v.shape == (n, 3) for v in look.shapes.values())
    assert [e.side for e in look.eyes] == ["Left", "Right"] and look.eyes[0].centre[0] > 0
    for eye in look.eyes:  # a ball around its own origin, with iris and pupil in front
        r = np.linalg.norm(eye.mesh.vertices, axis=1)
        assert 0.011 < r.mean() < 0.016 and set(np.unique(eye.mesh.materials)) == {0, 1, 2}
    assert set(np.unique(look.head.materials)) == set(range(len(looks.MATERIALS)))
    lip = look.paint[h.landmarks68[51], :3]  # upper lip centre
    cheek = look.paint[h.landmarks68[2], :3]
    assert lip[0] / lip[2] > cheek[0] / cheek[2] + 0.3  # redder than the skin
    assert np.allclose(cheek, looks.MATERIAL_COLOURS["Skin"][:3])
    fc = look.face_centre
    assert h.vertices[h.landmarks68[57], 2] < fc[2] < h.vertices[h.landmarks68[27], 2]


# -- in Blender ------------------------------------------------------------------------------------------------
@pytest.mark.blender
@pytest.mark.bpy_matrix
def test_add_demo_head_builds_a_ready_target():
    bpy = pytest.importorskip("bpy")
    from addon_helpers import evaluated_co
    from streamingtalker_addon.demo_head import blender as demo_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = demo_head.add_demo_head(bpy.context, location=(1.0, 0.0, 0.5))
    look = looks.build_look(head_asset.load_head())
    assert bpy.context.view_layer.objects.active == head and head.select_get()
    assert tuple(head.location) == (1.0, 0.0, 0.5)
    key = head.data.shape_keys
    assert key.use_relative
    assert [kb.name for kb in key.key_blocks] == ["Basis", *look.shapes]
    assert all(kb.value == 0.0 for kb in key.key_blocks[1:])
    assert len(head.data.vertices) == 21451 and len(head.data.polygons) == len(look.head.sizes)
    assert all(p.use_smooth for p in head.data.polygons)
    np.testing.assert_allclose(evaluated_co(head), look.head.vertices, atol=1e-6)
    key.key_blocks["jawOpen"].value = 1.0
    np.testing.assert_allclose(evaluated_co(head), look.head.vertices + look.shapes["jawOpen"], atol=1e-6)
    key.key_blocks["jawOpen"].value = 0.0
    assert head.data.color_attributes.get(demo_head.COLOUR_ATTRIBUTE) is not None
    assert [m.name for m in head.data.materials] == [f"StreamingTalker {n}" for n in looks.MATERIALS]
    assert "MIT" in head[demo_head.SOURCE_PROP]
    eyes = sorted(head.children, key=lambda o: o.location.x)
    assert len(eyes) == 2 and [len(e.data.vertices) for e in eyes] == [800, 800]
    left = eyes[1]
    assert left.location.x > 0 and [m.name for m in left.data.materials][1] == "StreamingTalker Iris"
    key.key_blocks["eyeLookUpLeft"].value = 1.0
    bpy.context.view_layer.update()
    assert left.matrix_world.to_euler().x < -0.3  # looks up
    assert abs(eyes[0].matrix_world.to_euler().x) < 1e-6  # the right eye did not move
    key.key_blocks["eyeLookUpLeft"].value = 0.0
    key.key_blocks["eyeLookOutRight"].value = 1.0
    bpy.context.view_layer.update()
    assert eyes[0].matrix_world.to_euler().z < -0.3  # the right eye turns to the character's right (-X)


@pytest.mark.blender
@pytest.mark.bpy_matrix
def test_camera_frames_the_face():
    bpy = pytest.importorskip("bpy")
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from streamingtalker_addon.demo_head import blender as demo_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = demo_head.add_demo_head(bpy.context)
    cam = demo_head.setup_preview_camera(bpy.context, head)
    scene = bpy.context.scene
    scene.render.resolution_x = scene.render.resolution_y = 480  # the preview's square frame
    assert scene.camera == cam
    lm = head_asset.load_head().landmarks68
    for name, i in (("chin", 8), ("mouth corner L", 54), ("mouth corner R", 48), ("outer eye L", 45),
                    ("outer eye R", 36), ("brow", 24)):
        u, v, depth = world_to_camera_view(scene, cam, head.matrix_world @ Vector(head.data.vertices[lm[i]].co))
        assert 0.08 < u < 0.92 and 0.08 < v < 0.92 and depth > 0, name
    demo_head.setup_preview_camera(bpy.context, head)  # a second call reuses the camera and lights
    assert len([o for o in scene.objects if o.type == "CAMERA"]) == 1
    assert len([o for o in scene.objects if o.type == "LIGHT"]) == 3
