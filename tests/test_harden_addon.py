"""Hardening seen from Blender (issue 18, rows 1 and 12): real bpy, the real bridge subprocess."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.timeout(300)]

from streamingtalker_addon import state as addon_state  # noqa: E402

from addon_helpers import arkit_mesh, curve_values, make_model, reset_blender  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def scene(model):
    reset_blender(model)
    yield bpy.context.scene
    addon_state.get().server.shutdown()


def test_generate_on_huge_levels_writes_only_finite_keys_and_warns(scene, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    wav = tmp_path / "huge.wav"
    sf.write(str(wav), (rng.standard_normal(32000) * 1e30).astype(np.float32), 16000, subtype="FLOAT")
    st = scene.streamingtalker
    st.target = arkit_mesh()
    st.audio_file = str(wav)
    assert bpy.ops.streamingtalker.generate() == {"FINISHED"}
    curves = curve_values(st.target)
    assert len(curves) == 52
    values = np.concatenate([c[:, 1] for c in curves.values()])
    assert values.size > 52 * 40 and np.isfinite(values).all()
    assert st.status.startswith("Done") and "exceeds full scale" in st.status


# -- row 12: FLAME files are parsed in a child process ---------------------------------------
def _children_running(module: str) -> bool:
    """Whether a child of this process runs ``python -m <module>`` right now (read from /proc)."""
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = fh.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")
        except OSError:
            continue
        if ppid == me and module.encode() in cmd:
            return True
    return False


@pytest.fixture()
def fresh():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module="streamingtalker_addon")
    yield bpy.context.scene


def test_flame_import_parses_the_file_in_a_child_process(fresh, tmp_path):
    from flame_helpers import synthetic_flame, write_flame_pkl

    path = write_flame_pkl(tmp_path / "generic_model.pkl", synthetic_flame(7))
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            if _children_running("inference_core.flame.isolated"):
                seen.append(True)
                return
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        assert bpy.ops.streamingtalker.flame_import(filepath=str(path)) == {"FINISHED"}
    finally:
        stop.set()
        t.join(5)
    assert seen, "the FLAME file was not parsed in a child process"
    assert len(bpy.context.active_object.data.vertices) == 5023


@pytest.mark.parametrize("kind, needle", [
    ("deep tuple key", "deep"), ("npz claiming 8 TiB", "claims"), ("fifo", "not a regular file"),
])
def test_hostile_flame_files_are_refused_and_blender_goes_on(fresh, tmp_path, kind, needle):
    import zipfile

    from test_harden_flame import deep_tuple_key, npy_header

    path = tmp_path / ("m.npz" if "npz" in kind else "m.pkl")
    if kind == "deep tuple key":
        path.write_bytes(deep_tuple_key(200_000))
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("v_template.npy", npy_header((2**40, 1)) + b"\0" * 64)
    with pytest.raises(RuntimeError, match=needle):
        bpy.ops.streamingtalker.flame_import(filepath=str(path))
    assert len(bpy.data.objects) == 0
    fresh.stk_flame.model_path = str(path)
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(RuntimeError, match=needle):
        bpy.ops.streamingtalker.flame_bind()
    assert fresh.stk_flame.report.startswith("Error") and needle in fresh.stk_flame.report
