"""The demo head as Blender objects: mesh, 52 relative keys at rest, materials, eyes, camera."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.bpy_matrix]  # every Blender of the matrix

from inference_core.shared.channels import ARKIT_52  # noqa: E402
from streamingtalker_addon.demo_head import blender as demo_head  # noqa: E402
from streamingtalker_addon.demo_head import geometry as head_geometry  # noqa: E402


def _evaluated_co(obj) -> np.ndarray:
    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    return co.reshape(-1, 3)


def test_add_demo_head_builds_a_ready_target():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = demo_head.add_demo_head(bpy.context, location=(1.0, 0.0, 0.5))
    data = head_geometry.build_head()
    assert bpy.context.view_layer.objects.active == head and head.select_get()
    assert tuple(head.location) == (1.0, 0.0, 0.5)
    key = head.data.shape_keys
    assert key.use_relative
    assert [kb.name for kb in key.key_blocks] == ["Basis", *ARKIT_52]
    assert all(kb.value == 0.0 for kb in key.key_blocks[1:])
    assert len(head.data.vertices) == len(data.vertices)
    assert all(p.use_smooth for p in head.data.polygons)
    # at rest the evaluated mesh is the basis; jawOpen=1 moves it exactly by the numpy offsets
    np.testing.assert_allclose(_evaluated_co(head), data.vertices, atol=1e-6)
    key.key_blocks["jawOpen"].value = 1.0
    np.testing.assert_allclose(_evaluated_co(head), data.vertices + data.shape_keys["jawOpen"], atol=1e-6)
    key.key_blocks["jawOpen"].value = 0.0
    # painted colours, materials, eyes as children whose gaze follows the eyeLook keys
    assert head.data.color_attributes.get(demo_head.COLOUR_ATTRIBUTE) is not None
    assert [m.name for m in head.data.materials] == [f"StreamingTalker {n}" for n in head_geometry.MATERIALS]
    eyes = sorted(head.children, key=lambda o: o.location.x)
    assert len(eyes) == 2 and all(e.type == "MESH" for e in eyes)
    left = eyes[1]
    assert left.location.x > 0
    key.key_blocks["eyeLookUpLeft"].value = 1.0
    bpy.context.view_layer.update()
    assert left.matrix_world.to_euler().x < -0.3  # looks up
    assert abs(eyes[0].matrix_world.to_euler().x) < 1e-6  # the right eye did not move
    assert "lm_upper_lip_centre" in head.vertex_groups and "jaw" in head.vertex_groups


def test_camera_frames_the_face():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = demo_head.add_demo_head(bpy.context)
    cam = demo_head.setup_preview_camera(bpy.context, head)
    scene = bpy.context.scene
    scene.render.resolution_x = scene.render.resolution_y = 480  # the preview's square frame
    assert scene.camera == cam
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector
    for name in ("upper_lip_centre", "eyelid_upper_left", "eyelid_upper_right", "chin"):
        p = head.matrix_world @ Vector(head.data.vertices[head_geometry.build_head().landmarks[name]].co)
        u, v, depth = world_to_camera_view(scene, cam, p)
        assert 0.1 < u < 0.9 and 0.1 < v < 0.9 and depth > 0, name
    # a second call reuses the same camera and lights
    demo_head.setup_preview_camera(bpy.context, head)
    assert len([o for o in scene.objects if o.type == "CAMERA"]) == 1
    assert len([o for o in scene.objects if o.type == "LIGHT"]) == 3
