"""``python -m streamingtalker_addon.bake``: batch outputs and audio lines into one character, one action
per line, FBX per line that round-trips; the add-on's own errors for a bad mesh (issue 17)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from addon_helpers import ROOT, arkit_mesh, make_speech  # noqa: E402
from fixtures import syllable_audio, write_wav  # noqa: E402
from test_core_cli import cli  # noqa: E402

from streamingtalker_addon.blender import fbx_export  # noqa: E402
from streamingtalker_addon.logic import framerate  # noqa: E402


def bake(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "streamingtalker_addon.bake", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def character(tmp_path_factory):
    """A character file: an ARKit-keyed face and a plain mesh without shape keys, at 24 fps."""
    folder = tmp_path_factory.mktemp("bake")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    arkit_mesh("Face")
    plain = bpy.data.meshes.new("Prop")
    plain.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    bpy.context.scene.collection.objects.link(bpy.data.objects.new("Prop", plain))
    bpy.context.scene.render.fps = 24
    path = folder / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


@pytest.fixture(scope="module")
def npz_lines(tmp_path_factory, random_model):
    """The batch's outputs for lines with the same stem in two folders, and one line more."""
    src = tmp_path_factory.mktemp("lines")
    for i, rel in enumerate(["a/line.wav", "b/line.wav", "solo.wav"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(src / rel, syllable_audio(1.0 + 0.5 * i, i)[0])
    out = src.parent / (src.name + "_out")
    r = cli("generate", src, "-o", out, "--model", random_model, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_bake_writes_one_named_action_per_line_and_fbx_that_round_trips(character, npz_lines, random_model,
                                                                        tmp_path):
    speech = make_speech(tmp_path / "hello.wav", "Hello there.")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    out = tmp_path / "baked"
    r = bake("--blend", character, "--mesh", "Face", npz_lines, speech, tmp_path / "broken.npz", "--out", out,
             "--fbx", "--actions", "--model", random_model, "--python", sys.executable)
    assert r.returncode == 1, r.stderr[-3000:]  # one bad line: reported, the others are kept
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "broken.npz" in err[0] and "Traceback" not in r.stderr
    assert "baked 4 of 5 line(s)" in r.stdout

    bpy.ops.wm.open_mainfile(filepath=str(out / "hero_lines.blend"))
    names = {"a/line", "b/line", "solo", "hello"}
    acts = {a.name: a for a in bpy.data.actions}
    assert names <= set(acts) and all(acts[n].use_fake_user for n in names)
    face = bpy.data.objects["Face"]
    assert face.data.shape_keys.animation_data is None or face.data.shape_keys.animation_data.action is None
    # the keys are the batch's weights at the scene's 24 fps, written by the add-on's writer
    z = np.load(npz_lines / "b" / "line.npz")
    jaw = framerate.resample(z["weights"], float(z["fps"]), 24.0)[:, list(z["channels"]).index("jawOpen")]
    from streamingtalker_addon.blender import keyframes

    curves = keyframes.find_fcurves(_assign(face, acts["b/line"]))
    fc = curves['key_blocks["jawOpen"].value']
    got = np.array([fc.evaluate(1 + i) for i in range(len(jaw))])
    np.testing.assert_allclose(got, jaw, atol=1e-6)
    assert len(fc.keyframe_points) == len(jaw) == framerate.scene_frame_count(len(z["weights"]), 30, 24) == 36
    assert len(keyframes.find_fcurves(_assign(face, acts["hello"]))) == 52  # the audio line, through the bridge

    # one FBX per line; it comes back with the line's animation
    fbx = sorted(p.relative_to(out / "fbx").as_posix() for p in (out / "fbx").rglob("*.fbx"))
    assert fbx == ["a/line.fbx", "b/line.fbx", "hello.fbx", "solo.fbx"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 24
    assert bpy.ops.import_scene.fbx(filepath=str(out / "fbx" / "b" / "line.fbx"), anim_offset=0.0) == {"FINISHED"}
    mesh = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    back = fbx_export._shape_key_curves(mesh)["jawOpen"]
    np.testing.assert_allclose([back.evaluate(1 + i) for i in range(len(jaw))], jaw, atol=1e-4)


def _assign(obj, action):
    from streamingtalker_addon.blender import keyframes

    keyframes.fcurve_collection(action, obj.data.shape_keys)
    return obj.data.shape_keys


@pytest.mark.parametrize("mesh, message", [
    ("Nobody", "no object named 'Nobody' in the file (meshes: Face, Prop)"),
    ("Prop", "'Prop' has no shape keys named after the model's ARKit channels"),
])
def test_a_bad_mesh_is_the_addons_one_line_error(character, npz_lines, tmp_path, mesh, message):
    r = bake("--blend", character, "--mesh", mesh, npz_lines, "--out", tmp_path / "baked", timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: " + message), r.stderr
    assert not (tmp_path / "baked").exists()
