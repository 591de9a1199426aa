"""Shared set-up for the add-on tests: a real model file, real speech audio, real bpy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: The Python that runs the core (CLI, bridge server): this one, or the main venv's when the add-on
#: tests run in an older Blender's venv that has no torch (scripts/bpy_lts.sh sets STK_CORE_PYTHON).
PY = os.environ.get("STK_CORE_PYTHON") or sys.executable
ADDON = "streamingtalker_addon"


def make_model(dirpath: Path) -> Path:
    """A randomly initialised checkpoint written by the core's own CLI (fast, deterministic)."""
    out = dirpath / "model.safetensors"
    if not out.exists():
        subprocess.run([PY, "-m", "inference_core", "init-model", "--out", str(out)], cwd=ROOT,
                       check=True, capture_output=True, timeout=120)
    return out


def make_speech(path: Path, text: str = "Hello, this is a test of the streaming talker.",
                voice: str = "en-us") -> Path:
    """Real synthetic speech from espeak-ng (falls back to a voiced buzz if it is missing)."""
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60)
        return path
    import wave
    sr = 22050
    t = np.arange(int(sr * 2.5)) / sr
    sig = (0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((sig * 32767).astype("<i2").tobytes())
    return path


def write_wav(path: Path, pcm: np.ndarray, sr: int = 16000) -> Path:
    import wave
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def reset_blender(model: Path, stall_timeout: float = 30.0):
    """Factory-fresh Blender with the add-on enabled and pointed at ``model``."""
    import bpy

    from streamingtalker_addon import state
    try:
        st = state.get()
    except RuntimeError:
        st = None
    if st is not None and st.job is not None:
        st.job.cancel()
        st.job = None
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=ADDON)
    p = bpy.context.preferences.addons[ADDON].preferences
    p.python_path = PY
    p.model_path = str(model)
    p.stall_timeout = stall_timeout
    return bpy


def arkit_mesh(name: str = "Face", names=None, extra=("Smile_custom",)):
    """A small mesh with ARKit-named shape keys (plus unrelated ones)."""
    import bpy

    from streamingtalker_addon.client.core import ARKIT_52
    mesh = bpy.data.meshes.new(name)
    verts = [(x, y, 0.0) for x in range(4) for y in range(4)]
    mesh.from_pydata(verts, [], [])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i, n in enumerate(list(names if names is not None else ARKIT_52) + list(extra)):
        kb = obj.shape_key_add(name=n, from_mix=False)
        kb.data[i % len(verts)].co.z = 1.0
    return obj


def evaluated_co(obj) -> np.ndarray:
    """(V, 3) vertex positions of ``obj`` as Blender evaluates them (shape keys and modifiers applied)."""
    import bpy

    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    return co.reshape(-1, 3)


def curve_values(obj) -> dict[str, np.ndarray]:
    """shape key name → (n, 2) keyframe co array of the action animating its shape keys."""
    from streamingtalker_addon.blender import keyframes
    out = {}
    for path, fc in keyframes.find_fcurves(obj.data.shape_keys).items():
        n = len(fc.keyframe_points)
        co = np.empty(n * 2, np.float32)
        fc.keyframe_points.foreach_get("co", co)
        name = path.split('"')[1]
        out[name] = co.reshape(n, 2)
    return out


def reference_frames(model: Path, pcm: np.ndarray, options: dict, chunk_seconds: float = 0.25) -> np.ndarray:
    """What the real server outputs for this audio: an independent client loop over the bridge."""
    from inference_core.shared.client import BridgeClient

    client = BridgeClient.launch(python=PY, model=str(model))
    try:
        client.send("start", session="ref", **options)
        client.wait_for({"started"}, 30)
        step = int(chunk_seconds * 16000)
        pcm = np.ascontiguousarray(pcm, "<f4")
        for i in range(0, len(pcm), step):
            client.send("audio", pcm[i:i + step].tobytes(), session="ref")
        client.send("end", session="ref")
        frames = []
        while True:
            msg = client.poll(30)
            assert msg is not None, "reference run timed out"
            client.raise_for(msg)
            if msg.type == "frames":
                frames.append(np.frombuffer(msg.payload, "<f4").reshape(msg.get("count"), msg.get("channels")))
            elif msg.type == "done":
                break
        return np.concatenate(frames)
    finally:
        client.close()


def env_without_bpy_state() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
