"""The built extension zips: contents, manifest rules (Blender's own validator), locked wheels;
the linux-x64 zip installed in real Blender with no runtime configured generates keys; the
extracted zip runs in a clean Python with only numpy and its onnxruntime wheel; mypy passes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from addon_helpers import ROOT, write_wav

pytestmark = pytest.mark.blender

BLENDER_EXT = Path(importlib.util.find_spec("bpy").origin).parent / "5.0/scripts/addons_core/bl_pkg/cli/blender_ext.py" \
    if importlib.util.find_spec("bpy") else None

INSTALL_SCRIPT = r"""
import importlib.machinery, sys, bpy
zip_path, wav = sys.argv[-2], sys.argv[-1]


class OnlyTheExtensionsOnnxruntime:
    # Blender's own Python has no onnxruntime; this test's bpy runs in a venv that has one: hide it,
    # so the add-on must find the copy Blender unpacks from the zip's wheel
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "onnxruntime":
            return None
        dirs = [d for d in sys.path if "extensions" in d]
        return importlib.machinery.PathFinder.find_spec(name, dirs) or importlib.machinery.ModuleSpec(name, None)


sys.meta_path.insert(0, OnlyTheExtensionsOnnxruntime)
bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                enable_on_install=True) == {"FINISHED"}
mod = "bl_ext.user_default.streamingtalker"
assert mod in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
assert hasattr(bpy.types.Scene, "streamingtalker")
assert bpy.ops.streamingtalker.generate.get_rna_type().name == "Generate from audio"
import importlib
core = importlib.import_module(mod + ".client.core")
assert core.inference_core.__name__ == mod + ".inference_core", core.inference_core.__name__
from bl_ext.user_default.streamingtalker import state
user = state.get().user_dir
assert "extensions" in str(user) and user.is_dir(), user
print("USER_DIR", user)
# no runtime configured: Blender's own Python runs the bundled model with the zip's onnxruntime wheel
prefs = bpy.context.preferences.addons[mod].preferences
assert prefs.python_path == "" and not state.get().venv_dir.exists()
bpy.ops.streamingtalker.add_demo_head()
st = bpy.context.scene.streamingtalker
st.audio_file = wav
assert bpy.ops.streamingtalker.generate(timeout=120) == {"FINISHED"}, st.status
job = state.get().last_job
assert job.driver.state == "done" and job.written > 30, st.status
print("KEYED", job.written, len(job.binding.channels_bound))
server = state.get().server
print("RUNTIME", server.runtime.backend, server.runtime.python, server.runtime.site_dirs[0])
print("HELLO", server.client.hello.get("runtime"))
maps = open(f"/proc/{server.client.proc.pid}/maps").read()
print("LOADED", sorted({line.split()[-1] for line in maps.splitlines() if "onnxruntime_pybind11" in line})[0])
bpy.ops.preferences.addon_disable(module=mod)
assert mod not in bpy.context.preferences.addons
assert not hasattr(bpy.types.Scene, "streamingtalker")
bpy.ops.preferences.addon_enable(module=mod)
assert hasattr(bpy.types.Scene, "streamingtalker")
bpy.ops.preferences.addon_disable(module=mod)
print("OK")
"""

BRIDGE_SCRIPT = r"""
import sys
import numpy as np
from inference_core.shared.client import BridgeClient
from inference_core.shared.protocol import Msg
wav, npz = sys.argv[1], sys.argv[2]
from inference_core.audio.io import load_file
pcm = load_file(wav)
client = BridgeClient.launch(python=sys.executable, backend="onnx")
rt = client.hello.get("runtime")
assert rt["backend"] == "onnx" and rt["python"] == sys.executable, rt
client.send(Msg.START, session="s")
client.wait_for({Msg.STARTED}, 30)
for i in range(0, len(pcm), 4000):
    client.send(Msg.AUDIO, pcm[i:i + 4000].astype("<f4").tobytes(), session="s")
client.send(Msg.END, session="s")
frames = []
while True:
    msg = client.poll(30)
    assert msg is not None
    client.raise_for(msg)
    if msg.type == Msg.FRAMES:
        frames.append(np.frombuffer(msg.payload, "<f4").reshape(msg.get("count"), msg.get("channels")))
    elif msg.type == Msg.DONE:
        break
client.close()
got = np.concatenate(frames)
want = np.load(npz)["weights"]
assert got.shape == want.shape and np.array_equal(got, want), (got.shape, want.shape)
assert "torch" not in sys.modules
print("BRIDGE", got.shape)
"""


def _build(out: Path, *args: str) -> list[Path]:
    res = subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out), *args], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return [Path(line) for line in res.stdout.split()]


def _load_build_module():
    spec = importlib.util.spec_from_file_location("stk_build", ROOT / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built_zips(tmp_path_factory) -> dict[str, Path]:
    """Every platform's zip (the wheels come from build/wheel_cache, downloaded once and hash-checked)."""
    zips = _build(tmp_path_factory.mktemp("dist"), "--all")
    return {z.stem.rsplit("-", 1)[-1].replace("_", "-"): z for z in zips}


@pytest.fixture(scope="module")
def built_zip(built_zips) -> Path:
    return built_zips["linux-x64"]


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory) -> Path:
    from inference_core.audio.io import load_file
    from inference_core.shared.paths import DEMO_SPEECH

    return write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", load_file(DEMO_SPEECH)[: 16000 * 2])


def test_zip_contents(built_zip):
    zf = zipfile.ZipFile(built_zip)
    names = zf.namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "ui/operators.py" in names
    assert "inference_core/shared/protocol.py" in names and "inference_core/shared/client.py" in names
    assert "requirements_core.txt" in names
    assert {"inference_core/models/streamingtalker_arkit.safetensors",
            "inference_core/models/streamingtalker_arkit.onnx.json",
            "inference_core/models/streamingtalker_arkit.head.onnx",
            "inference_core/models/streamingtalker_arkit.head_int8.onnx"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["id"] == "streamingtalker" and manifest["schema_version"] == "1.0.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later", "SPDX:MIT"]  # MIT: the demo head's asset
    assert "USC Institute for Creative Technologies" in manifest["copyright"][0]
    head = zf.getinfo("demo_head/ict_face.npz")  # the demo head travels with its licence notice
    assert 500_000 < head.file_size < 3_000_000
    assert "MIT License" in zf.read("demo_head/LICENSE-ICT-FaceKit.txt").decode()
    # the recorded voices the bundled model learned from are credited in a plain file (CC-BY-SA, GPL)
    voices = json.loads(zf.read("inference_core/models/streamingtalker_arkit.json"))["training"]["voice_credits"]
    credits = zf.read("TRAINING_DATA_CREDITS.txt").decode()
    assert voices and all(f"- {c['voice']} ({c['licence']}): {c['attribution']}" in credits for c in voices)
    assert set(manifest["permissions"]) == {"files", "microphone"}
    assert all(len(v) <= 64 and not v.endswith(".") for v in manifest["permissions"].values())
    assert len(manifest["tagline"]) <= 64
    assert manifest["platforms"] == ["linux-x64"]
    assert manifest["wheels"] == ["./wheels/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"]
    assert [n for n in names if n.startswith("wheels/")] == [w[2:] for w in manifest["wheels"]]
    assert not [n for n in names if "numpy" in n.lower() and n.endswith(".whl")]  # Blender ships numpy


def test_every_platform_zip_carries_its_locked_wheel_and_validates(built_zips, tmp_path):
    lock = tomllib.loads((ROOT / "requirements" / "wheels.lock.toml").read_text())["onnxruntime"]["platforms"]
    assert set(built_zips) == {"linux-x64", "windows-x64", "macos-arm64", "macos-x64"}
    build = _load_build_module()
    for plat, zpath in built_zips.items():
        zf = zipfile.ZipFile(zpath)
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
        assert manifest["platforms"] == [plat]
        wheels = [n for n in zf.namelist() if n.startswith("wheels/")]
        if lock[plat]["file"]:
            assert manifest["wheels"] == [f"./wheels/{lock[plat]['file']}"] and len(wheels) == 1
            out = tmp_path / Path(wheels[0]).name
            out.write_bytes(zf.read(wheels[0]))
            assert build.sha256(out) == lock[plat]["sha256"]
        else:  # no onnxruntime 1.31.1 wheel exists for this platform: none is faked
            assert "wheels" not in manifest and not wheels
        if BLENDER_EXT is not None:  # Blender's own `extension validate`
            res = subprocess.run([sys.executable, str(BLENDER_EXT), "validate", str(zpath)], capture_output=True,
                                 text=True, timeout=120)
            assert res.returncode == 0 and "Success" in res.stdout, res.stdout + res.stderr


def test_build_refuses_a_wheel_that_does_not_match_the_lock(tmp_path):
    build = _load_build_module()
    entry = dict(build.lock()["onnxruntime"]["platforms"]["linux-x64"])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / entry["file"]).write_bytes(b"not the wheel")
    with pytest.raises(build.BuildError, match="does not match its sha256"):
        build.fetch_wheel("onnxruntime", "1.31.1", entry, cache)
    assert build.check_manifest(dict(build.manifest(), tagline="x" * 65)) == [
        "tagline: at most 64 characters, no trailing punctuation"]


def test_zip_installs_and_generates_with_no_runtime_configured(built_zip, short_wav, tmp_path):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    for var in ("PYTHONPATH", "STREAMINGTALKER_PYTHON"):
        env.pop(var, None)
    res = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(built_zip), str(short_wav)], capture_output=True,
                         text=True, timeout=300, env=env, cwd=str(tmp_path))  # cwd away from the checkout
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout[-2000:] + res.stderr[-3000:]
    assert str(tmp_path / "user") in res.stdout  # user data goes under the extension user dir
    out = dict(line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("KEYED", "RUNTIME", "LOADED")))
    frames, channels = map(int, out["KEYED"].split())
    assert abs(frames - 2.0 * 24) <= 2 and channels == 51  # 2 s at the factory scene's 24 fps; the head has no tongueOut
    backend, python, site = out["RUNTIME"].split()
    assert backend == "onnx" and python == sys.executable  # Blender's own interpreter
    # the child loaded onnxruntime from where Blender unpacked the zip's wheel (removed again on disable)
    assert site.startswith(str(tmp_path / "user" / "extensions")), site
    assert out["LOADED"].startswith(site + "/onnxruntime/"), out["LOADED"]


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    """Python 3.11 with only numpy<2 and the zip's onnxruntime wheel, installed offline from the cache."""
    python311 = shutil.which("python3.11")
    if python311 is None:
        pytest.skip("python3.11 is not installed")
    build = _load_build_module()
    wheels = [build.onnxruntime_wheel("linux-x64"), build.test_wheel("numpy")]
    venv = tmp_path_factory.mktemp("clean") / "venv"
    subprocess.run([python311, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run([*pip, *map(str, wheels)], check=True, timeout=300, capture_output=True)
    return py


def test_clean_python_runs_generate_and_the_bridge_from_the_extracted_zip(built_zip, clean_venv, short_wav,
                                                                         tmp_path):
    ext = tmp_path / "ext"
    zipfile.ZipFile(built_zip).extractall(ext)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMINGTALKER_PYTHON")}
    env["PYTHONPATH"] = str(ext)
    no_torch = subprocess.run([str(clean_venv), "-c", "import torch"], capture_output=True, text=True, env=env)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    npz = tmp_path / "out.npz"
    gen = subprocess.run([str(clean_venv), "-m", "inference_core", "generate", str(short_wav), "-o", str(npz)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert gen.returncode == 0, gen.stderr[-3000:]
    weights = np.load(npz)["weights"]
    assert weights.shape == (60, 52) and np.isfinite(weights).all()
    bridge = subprocess.run([str(clean_venv), "-c", BRIDGE_SCRIPT, str(short_wav), str(npz)], capture_output=True,
                            text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert bridge.returncode == 0 and "BRIDGE (60, 52)" in bridge.stdout, bridge.stdout + bridge.stderr[-3000:]


def test_mypy_with_fake_bpy_module():
    res = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "tests/addon_mypy.ini",
                          "streamingtalker_addon"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
