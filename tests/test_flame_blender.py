"""FLAME heads and vertex-space models in real Blender (bpy 5.0): import, bind, FBX, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.timeout(400)]

from addon_helpers import ADDON, PY, ROOT, curve_values, evaluated_co, reset_blender, write_wav  # noqa: E402
from flame_helpers import synthetic_flame, vertex_sequences, write_flame_pkl, write_vocaset  # noqa: E402
from inference_core.flame import model as fm  # noqa: E402
from inference_core.flame import shapekeys as sk  # noqa: E402
from inference_core.flame.loader import load_flame  # noqa: E402


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("flame")
    return write_flame_pkl(d / "generic_model.pkl", synthetic_flame(7, eyelids=True))


@pytest.fixture()
def fresh():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=ADDON)
    yield bpy.context.scene


def _import(path):
    assert bpy.ops.streamingtalker.flame_import(filepath=str(path)) == {"FINISHED"}
    return bpy.context.active_object


def _evaluated(obj):
    return evaluated_co(obj).astype(np.float64)


@pytest.mark.bpy_matrix
def test_import_head(fresh, flame_file):
    obj = _import(flame_file)
    model = load_flame(flame_file)
    assert len(obj.data.vertices) == 5023 and len(obj.data.polygons) == 9976
    assert obj.data.shape_keys.key_blocks[0].name == "Basis"
    np.testing.assert_allclose(_evaluated(obj), model.v_template, atol=1e-6)
    assert abs(obj.rotation_euler.x - np.pi / 2) < 1e-6  # FLAME is Y-up: stands upright in Blender
    assert fresh.streamingtalker.target == obj
    assert fresh.stk_flame.model_path == str(flame_file)


def test_import_refuses_bad_files(fresh, tmp_path):
    bad = tmp_path / "evil.pkl"
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(RuntimeError, match="refusing to load"):
        bpy.ops.streamingtalker.flame_import(filepath=str(bad))
    assert not (tmp_path / "pwned").exists()
    assert len(bpy.data.objects) == 0


@pytest.mark.bpy_matrix
def test_bind_flame_keys_reproduce_forward_pass(fresh, flame_file):
    obj = _import(flame_file)
    fs = fresh.stk_flame
    fs.bind_mode, fs.n_expr = "FLAME", 10
    assert bpy.ops.streamingtalker.flame_bind() == {"FINISHED"}
    blocks = obj.data.shape_keys.key_blocks
    assert [b.name for b in blocks][:3] == ["Basis", "FLAME_exp_000", "FLAME_exp_001"]
    assert "FLAME_jaw_open" in blocks and "FLAME_eyelid_left" in blocks
    model = load_flame(flame_file)
    psi = np.zeros(10)
    psi[[0, 3, 7]] = [1.2, -0.8, 2.0]
    theta = 0.5 * sk.JAW_SPEECH_RANGE
    for i, v in enumerate(psi):
        blocks[sk.exp_key_name(i)].value = v
    # expression alone: FLAME's expression blendshapes are linear, the keys exact
    np.testing.assert_allclose(_evaluated(obj), fm.forward(model, expression=psi)[0], atol=1e-6)
    # jaw alone: within the linearisation error the binder reports
    for i in range(10):
        blocks[sk.exp_key_name(i)].value = 0.0
    blocks["FLAME_jaw_open"].value = 0.5
    _, rep = sk.flame_keys(model, model.v_template, 1)
    jaw_err = np.linalg.norm(_evaluated(obj) - fm.forward(model, pose=fm.pose_vector(jaw=[theta, 0, 0]))[0], axis=1).max()
    assert 0 < jaw_err <= rep["jaw"]["max"] + 1e-6
    # both: additive keys cannot rotate the expression offsets with the jaw; that cross term is
    # bounded by theta x the expression offset (plus the joint shift the expression causes)
    for i, v in enumerate(psi):
        blocks[sk.exp_key_name(i)].value = v
    got = _evaluated(obj)
    want = fm.forward(model, expression=psi, pose=fm.pose_vector(jaw=[theta, 0, 0]))[0]
    err = np.linalg.norm(got - want, axis=1).max()
    expr_mag = np.linalg.norm(np.einsum("vdk,k->vd", model.expr_dirs[:, :, :10], psi), axis=1).max()
    print(f"Blender keys vs forward pass: jaw {theta:.3f} rad alone {jaw_err * 1000:.3f} mm; with expression "
          f"({expr_mag * 1000:.1f} mm offsets) {err * 1000:.3f} mm")
    assert err <= rep["jaw"]["max"] + 2.0 * theta * expr_mag
    # rebinding replaces, never duplicates, and leaves foreign keys alone
    obj.shape_key_add(name="other_tool_key", from_mix=False)
    n = len(blocks)
    assert bpy.ops.streamingtalker.flame_bind() == {"FINISHED"}
    assert len(obj.data.shape_keys.key_blocks) == n


@pytest.mark.bpy_matrix
def test_bind_arkit_and_vertex_count_refused(fresh, flame_file):
    obj = _import(flame_file)
    fresh.stk_flame.bind_mode = "ARKIT"
    assert bpy.ops.streamingtalker.flame_bind() == {"FINISHED"}
    names = {b.name for b in obj.data.shape_keys.key_blocks}
    assert {"jawOpen", "jawLeft", "eyeBlinkLeft", "eyeLookUpRight"} <= names
    assert "13 ARKit keys" in fresh.stk_flame.report
    # the add-on's by-name binding now finds the FLAME head's ARKit keys
    from streamingtalker_addon.client.core import ARKIT_52
    from streamingtalker_addon.logic import presets
    b = presets.auto_bind(ARKIT_52, sorted(names))
    assert ("jawOpen" in [c for _, c, _ in b.pairs]) and len(b.pairs) == 13
    # a mesh of another topology is refused with a clear message and keeps its data
    me = bpy.data.meshes.new("cube")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    other = bpy.data.objects.new("cube", me)
    fresh.collection.objects.link(other)
    bpy.context.view_layer.objects.active = other
    with pytest.raises(RuntimeError, match="3 vertices; a FLAME mesh has 5023"):
        bpy.ops.streamingtalker.flame_bind()
    assert other.data.shape_keys is None


@pytest.mark.bpy_matrix
def test_fbx_round_trip_of_bound_animated_head(fresh, flame_file, tmp_path):
    obj = _import(flame_file)
    fresh.stk_flame.bind_mode, fresh.stk_flame.n_expr = "FLAME", 4
    assert bpy.ops.streamingtalker.flame_bind() == {"FINISHED"}
    blocks = obj.data.shape_keys.key_blocks
    jaw = 0.5 + 0.5 * np.sin(np.arange(1, 21) / 3.0)
    exp = np.cos(np.arange(1, 21) / 4.0)
    for f, (a, b) in enumerate(zip(jaw, exp), start=1):
        blocks["FLAME_jaw_open"].value = a
        blocks["FLAME_jaw_open"].keyframe_insert("value", frame=f)
        blocks["FLAME_exp_002"].value = b
        blocks["FLAME_exp_002"].keyframe_insert("value", frame=f)
    fresh.frame_start, fresh.frame_end = 1, 20
    out = tmp_path / "head.fbx"
    for o in bpy.context.selected_objects:
        o.select_set(False)
    obj.select_set(True)
    try:
        from streamingtalker_addon.blender import fbx_export  # the add-on's exporter, when present
        fbx_export.export_fbx(bpy.context, obj, str(out))
    except ImportError:
        bpy.ops.export_scene.fbx(filepath=str(out), use_selection=True, bake_anim=True,
                                 bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False,
                                 bake_anim_simplify_factor=0.0, add_leaf_bones=False)
    assert out.stat().st_size > 100_000
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(out))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1
    back = meshes[0]
    assert len(back.data.vertices) == 5023
    kb = back.data.shape_keys.key_blocks
    assert {"FLAME_jaw_open", "FLAME_exp_002", "FLAME_exp_000"} <= {k.name for k in kb}
    curves = curve_values(back)
    np.testing.assert_allclose(curves["FLAME_jaw_open"][:, 1][:20], jaw, atol=1e-3)
    np.testing.assert_allclose(curves["FLAME_exp_002"][:, 1][:20], exp, atol=1e-3)
    # the key shapes survive too (FBX stores them in the object's local frame)
    rest = np.array([v.co[:] for v in kb[0].data])
    jaw_shape = np.array([v.co[:] for v in kb["FLAME_jaw_open"].data]) - rest
    model = load_flame(flame_file)
    ref, _ = sk.flame_keys(model, model.v_template, 1)
    ref_jaw = {k.name: k for k in ref}["FLAME_jaw_open"].offsets
    scale = np.linalg.norm(jaw_shape) / np.linalg.norm(ref_jaw)   # FBX unit conversion, if any
    assert np.linalg.norm(jaw_shape - scale * ref_jaw) < 1e-3 * np.linalg.norm(jaw_shape)


# -- vertex-space model, end to end --------------------------------------------------------
@pytest.fixture(scope="module")
def vertex_model(tmp_path_factory, flame_file):
    """VOCASET-layout data of synthetic FLAME heads → dataset → a tiny model trained a few steps."""
    from inference_core.data.datasets import vertex as vd
    d = tmp_path_factory.mktemp("vocaset")
    arrays = synthetic_flame(7, eyelids=True)
    seqs, templates = vertex_sequences(n_subjects=2, n_sentences=2, seconds=2.0, fps=60.0, sr=16000,
                                       flame_arrays=arrays, seed=3)
    src = write_vocaset(d / "src", seqs, templates)
    report = vd.convert(*vd.read_vocaset(src), d / "ds", components=8, prefix="VOCASET", val_speakers=[])
    out = d / "vertex.safetensors"
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 128})
    r = subprocess.run([PY, "-m", "inference_core", "train", "--data", str(d / "ds"), "--out", str(out),
                        "--iters", "4", "--batch", "2", "--quiet", "--arch", arch, "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wav = write_wav(d / "speech.wav", _to16k(seqs[0][2], seqs[0][3]))
    return out, wav, report


def _to16k(pcm, sr):
    from inference_core.data.datasets.vertex import resample_audio
    return resample_audio(pcm, sr)


@pytest.mark.bpy_matrix
def test_bind_vertex_model_then_generate(flame_file, vertex_model):
    from streamingtalker_addon import state
    from streamingtalker_addon.logic import vertex_basis as flame_binding
    model_path, wav, report = vertex_model
    print(f"fixture PCA: {report['components']} components keep {report['train']['energy_kept']:.5f} of the energy")
    reset_blender(model_path)
    scene = bpy.context.scene
    scene.render.fps = 24
    try:
        head = _import(flame_file)
        basis, template, card = flame_binding.read_vertex_basis(model_path)
        assert card["channel_space"] == "vertex" and basis.shape == (8, 5023, 3)
        assert bpy.ops.streamingtalker.bind_vertex_model() == {"FINISHED"}  # model from the prefs
        kb = head.data.shape_keys.key_blocks
        assert [k.name for k in kb][1:] == card["channels"] == [f"VOCASET_pc{i:03d}" for i in range(8)]
        rest = np.array([v.co[:] for v in kb[0].data])
        comp3 = np.array([v.co[:] for v in kb["VOCASET_pc003"].data]) - rest
        # head and training template differ in identity only: the fitted frame is ~identity ...
        assert np.linalg.norm(comp3 - basis[3]) < 0.05 * np.linalg.norm(basis[3])
        # ... and the key is exactly the basis component carried through that frame
        frame = sk.fit_similarity(template.astype(np.float64), rest)
        assert abs(frame.scale - 1) < 0.05
        np.testing.assert_allclose(comp3, frame.offsets_to_mesh(basis[3].astype(np.float64)), atol=1e-6)
        # a mesh of another vertex count is refused
        me = bpy.data.meshes.new("tri")
        me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        tri = bpy.data.objects.new("tri", me)
        scene.collection.objects.link(tri)
        bpy.context.view_layer.objects.active = tri
        with pytest.raises(RuntimeError, match="3 vertices; the model's basis has 5023"):
            bpy.ops.streamingtalker.bind_vertex_model()
        # generation through the real bridge keyframes the basis keys by name
        st = scene.streamingtalker
        st.target, st.audio_file, st.frame_start = head, str(wav), 1
        assert bpy.ops.streamingtalker.generate() == {"FINISHED"}, st.status
        curves = curve_values(head)
        assert set(curves) == set(card["channels"])
        n = len(curves["VOCASET_pc000"])
        assert abs(n - 2.0 * 24) <= 2 and all(np.isfinite(c[:, 1]).all() for c in curves.values())
        assert max(np.ptp(c[:, 1]) for c in curves.values()) > 0  # the coefficients move
        scene.frame_set(10)
        moved = _evaluated(head) - rest
        assert np.linalg.norm(moved, axis=1).max() > 0
    finally:
        state.get().server.shutdown()


def test_generate_makes_the_fitted_basis_keys_on_a_mesh_outside_the_training_frame(flame_file, vertex_model):
    """No Bind first: Generate asks the server for the basis (without blocking) and creates the keys
    through the same similarity fit as Bind, so a mesh stored in centimetres, turned and moved gets
    the basis mapped into its own frame."""
    from streamingtalker_addon import state
    from streamingtalker_addon.logic import vertex_basis
    model_path, wav, _ = vertex_model
    reset_blender(model_path)
    scene = bpy.context.scene
    scene.render.fps = 24
    try:
        head = _import(flame_file)
        basis, template, card = vertex_basis.read_vertex_basis(model_path)
        angle = 0.7
        rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        scale, shift = 100.0, np.array([0.3, -2.0, 5.0])
        rest = np.array([v.co[:] for v in head.data.vertices])
        moved = (scale * rest @ rot.T + shift).astype(np.float32)
        head.data.vertices.foreach_set("co", moved.ravel())
        head.data.shape_keys.key_blocks[0].data.foreach_set("co", moved.ravel())
        st = scene.streamingtalker
        st.target, st.audio_file, st.frame_start = head, str(wav), 1
        assert bpy.ops.streamingtalker.generate() == {"FINISHED"}, st.status
        assert state.get().last_job.driver.state == "done"
        kb = head.data.shape_keys.key_blocks
        assert [k.name for k in kb][1:] == card["channels"]
        frame = sk.fit_similarity(template.astype(np.float64), moved.astype(np.float64))
        assert abs(frame.scale / scale - 1) < 0.05 and np.abs(frame.rotation - rot).max() < 0.05
        for i, name in enumerate(card["channels"]):
            comp = np.array([v.co[:] for v in kb[name].data]) - moved
            want = frame.offsets_to_mesh(basis[i].astype(np.float64))
            np.testing.assert_allclose(comp, want, atol=1e-5)  # float32 coordinates of about 10
            # and that is (about) the basis scaled and turned like the mesh, not the raw basis
            assert np.linalg.norm(comp - scale * basis[i] @ rot.T) < 0.05 * np.linalg.norm(comp)
        assert set(curve_values(head)) == set(card["channels"])
    finally:
        state.get().server.shutdown()
