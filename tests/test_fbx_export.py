"""FBX export → import round trip of shape-key animation in the real Blender (bpy 5.0)."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.bpy_matrix]  # every Blender of the matrix

from streamingtalker_addon.blender import fbx_export, keyframes  # noqa: E402
from streamingtalker_addon.demo_head import blender as demo_head  # noqa: E402

#: FBX stores animation as float32 in percent; the round trip must agree to this
TOLERANCE = 1e-4


def _reset() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _small_mesh(names=("jawOpen", "mouthClose", "mouthFunnel", "eyeBlinkLeft")):
    """A grid with a few shape keys, each moving a different set of vertices."""
    me = bpy.data.meshes.new("Face")
    verts = [(x * 0.01, 0.0, z * 0.01) for z in range(6) for x in range(6)]
    faces = [(z * 6 + x, z * 6 + x + 1, (z + 1) * 6 + x + 1, (z + 1) * 6 + x) for z in range(5) for x in range(5)]
    me.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new("Face", me)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i, n in enumerate(names):
        kb = obj.shape_key_add(name=n, from_mix=False)
        kb.value = 0.0  # Blender 5.0 adds keys at 1.0
        co = np.array(verts, np.float32)
        co[i * 7 % 36::5, 1] -= 0.004 * (i + 1)
        kb.data.foreach_set("co", co.ravel())
    return obj


def _animate(obj, values: dict[str, np.ndarray], start: int = 1) -> None:
    """Bulk-write one key per frame per shape key into a (Blender 5 layered) action."""
    key = obj.data.shape_keys
    ad = key.animation_data or key.animation_data_create()
    action = bpy.data.actions.new("Take")
    ad.action = action
    if bpy.app.version >= (4, 4, 0):
        slot = action.slots.new(id_type="KEY", name=key.name)
        ad.action_slot = slot
        strip = action.layers.new("Layer").strips.new(type="KEYFRAME")
        fcurves = strip.channelbag(slot, ensure=True).fcurves
    else:
        fcurves = action.fcurves
    for name, vals in values.items():
        fc = fcurves.new(f'key_blocks["{name}"].value')
        n = len(vals)
        fc.keyframe_points.add(n)
        co = np.empty((n, 2), np.float32)
        co[:, 0] = np.arange(start, start + n)
        co[:, 1] = vals
        fc.keyframe_points.foreach_set("co", co.ravel())
        fc.update()


def _curves(n_frames: int, names, seed: int = 0) -> dict[str, np.ndarray]:
    """Varied curves in [0, 1]: sine, smoothed noise, a hold-and-jump, a ramp."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    shapes = [
        0.5 + 0.5 * np.sin(t / 4.0),
        np.clip(np.convolve(rng.random(n_frames + 8), np.ones(9) / 9, "valid")[:n_frames] * 1.6 - 0.3, 0, 1),
        np.where((t // 7) % 2 == 0, 0.0, 1.0),
        t / max(1, n_frames - 1),
    ]
    return {n: shapes[i % len(shapes)].astype(np.float32) for i, n in enumerate(names)}


def _reimport(path) -> dict[str, object]:
    _reset()
    # FBX times are absolute (frame / fps); the importer adds anim_offset (1 by default)
    assert bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0) == {"FINISHED"}
    return {o.name: o for o in bpy.context.scene.objects}


def _sample(obj, frames: np.ndarray) -> dict[str, np.ndarray]:
    curves = fbx_export._shape_key_curves(obj)
    return {name: np.array([fc.evaluate(float(f)) for f in frames]) for name, fc in curves.items()}


def test_round_trip_small_mesh(tmp_path):
    _reset()
    obj = _small_mesh()
    names = [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]
    values = _curves(60, names)
    _animate(obj, values, start=1)
    assert fbx_export.check_exportable(obj) == []
    report = fbx_export.export_fbx(bpy.context, obj, tmp_path / "face")  # extension added
    assert report["path"].endswith("face.fbx") and report["bytes"] > 1000
    assert (report["frame_start"], report["frame_end"]) == (1, 60)
    assert report["shape_keys"] == 4 and report["animated_shape_keys"] == 4

    objs = _reimport(report["path"])
    meshes = [o for o in objs.values() if o.type == "MESH"]
    assert len(meshes) == 1
    face = meshes[0]
    kbs = face.data.shape_keys.key_blocks
    assert [kb.name for kb in kbs[1:]] == names
    assert face.data.shape_keys.use_relative
    got = _sample(face, np.arange(1, 61))
    assert set(got) == set(names)
    worst = max(float(np.abs(got[n] - values[n]).max()) for n in names)
    assert worst < TOLERANCE, worst
    # the shapes themselves came back (FBX stores offsets; same vertex order for a plain mesh)
    basis = np.empty(len(face.data.vertices) * 3, np.float32)
    kbs[0].data.foreach_get("co", basis)
    shape = np.empty_like(basis)
    kbs["mouthFunnel"].data.foreach_get("co", shape)
    assert np.abs(shape - basis).max() == pytest.approx(0.012, abs=1e-5)


def test_round_trip_demo_head_with_children(tmp_path):
    _reset()
    head = demo_head.add_demo_head(bpy.context)
    names = ["jawOpen", "mouthClose", "mouthFunnel", "mouthSmileLeft", "eyeBlinkLeft", "eyeLookUpLeft"]
    values = _curves(30, names, seed=3)
    _animate(head, values, start=5)
    other = bpy.data.objects.new("Unrelated", bpy.data.meshes.new("Unrelated"))
    bpy.context.scene.collection.objects.link(other)
    head.select_set(False)
    other.select_set(True)
    bpy.context.view_layer.objects.active = other
    report = fbx_export.export_fbx(bpy.context, head, tmp_path / "head.fbx")
    n_verts = len(head.data.vertices)
    key_names = [kb.name for kb in head.data.shape_keys.key_blocks[1:]]
    # the user's selection and frame range are back as they were
    assert other.select_get() and not head.select_get()
    assert bpy.context.view_layer.objects.active == other
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (1, 250)
    assert (report["frame_start"], report["frame_end"]) == (5, 34)
    assert len(report["objects"]) == 3  # head + two eyeballs, not the unrelated mesh

    objs = _reimport(report["path"])
    meshes = [o for o in objs.values() if o.type == "MESH"]
    assert len(meshes) == 3 and "Unrelated" not in objs
    face = max(meshes, key=lambda o: len(o.data.vertices))
    assert len(face.data.vertices) == n_verts
    kb_names = [kb.name for kb in face.data.shape_keys.key_blocks[1:]]
    assert kb_names == key_names
    got = _sample(face, np.arange(5, 35))
    worst = max(float(np.abs(got[n] - values[n]).max()) for n in names)
    assert worst < TOLERANCE, worst
    # keys that were never animated stay unanimated or flat at 0
    for n, v in got.items():
        if n not in names:
            assert np.abs(v).max() < TOLERANCE, n


def test_check_exportable_flags_problems():
    _reset()
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    assert "not a mesh" in fbx_export.check_exportable(cam)[0]
    assert "No object" in fbx_export.check_exportable(None)[0]
    plain = bpy.data.objects.new("Plain", bpy.data.meshes.new("Plain"))
    bpy.context.scene.collection.objects.link(plain)
    assert "no shape keys" in fbx_export.check_exportable(plain)[0]

    obj = _small_mesh()
    problems = fbx_export.check_exportable(obj)
    assert len(problems) == 1 and "no shape-key animation" in problems[0]
    _animate(obj, _curves(10, ["jawOpen"]))
    assert fbx_export.check_exportable(obj) == []
    obj.data.shape_keys.use_relative = False
    assert any("Relative" in p for p in fbx_export.check_exportable(obj))
    obj.data.shape_keys.use_relative = True
    obj.modifiers.new("Arm", "ARMATURE")
    assert fbx_export.check_exportable(obj) == []  # armatures are fine
    obj.modifiers.new("Smooth", "SUBSURF")
    problems = fbx_export.check_exportable(obj)
    assert len(problems) == 1 and "'Smooth'" in problems[0]


def test_unanimated_keys_come_back_at_rest(tmp_path):
    _reset()
    obj = _small_mesh()
    _animate(obj, _curves(10, ["jawOpen"]))
    obj.data.shape_keys.key_blocks["mouthFunnel"].value = 0.25  # a static, non-zero setting
    report = fbx_export.export_fbx(bpy.context, obj, tmp_path / "rest.fbx")
    face = next(o for o in _reimport(report["path"]).values() if o.type == "MESH")
    got = _sample(face, np.arange(1, 11))
    assert np.abs(got["mouthClose"]).max() < TOLERANCE
    assert np.abs(got["mouthFunnel"] - 0.25).max() < TOLERANCE


def test_modifiers_do_not_cost_the_shape_keys(tmp_path):
    """With a Subdivision modifier the export keeps the keys (modifiers exported un-applied)."""
    _reset()
    obj = _small_mesh()
    values = _curves(12, ["jawOpen", "eyeBlinkLeft"])
    _animate(obj, values)
    obj.modifiers.new("Smooth", "SUBSURF")
    report = fbx_export.export_fbx(bpy.context, obj, tmp_path / "mods.fbx")
    assert report["apply_modifiers"] is False and report["warnings"]
    objs = _reimport(report["path"])
    face = next(o for o in objs.values() if o.type == "MESH")
    assert len(face.data.vertices) == 36 and face.data.shape_keys is not None
    got = _sample(face, np.arange(1, 13))
    assert max(float(np.abs(got[n] - values[n]).max()) for n in values) < TOLERANCE


def test_bad_inputs_raise_clear_errors(tmp_path):
    _reset()
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    with pytest.raises(ValueError):
        fbx_export.export_fbx(bpy.context, cam, tmp_path / "x.fbx")
    obj = _small_mesh()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        fbx_export.export_fbx(bpy.context, obj, blocker / "x.fbx")
    assert keyframes.find_fcurves(obj.data.shape_keys) == {}
