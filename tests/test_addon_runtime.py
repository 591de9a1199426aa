"""Which runtime runs the model, and the fallbacks, for real: Blender's own Python with ONNX Runtime
when nothing is configured; a torch runtime when the ONNX files are missing or damaged or
onnxruntime will not import; a message saying what is missing and what to do when neither works."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.timeout(300)]

from inference_core.runtime.onnx_backend import GRAPHS  # noqa: E402
from inference_core.shared.paths import DEFAULT_MODEL  # noqa: E402
from streamingtalker_addon import state as addon_state  # noqa: E402
from streamingtalker_addon.client.runtime import (BUILTIN, RuntimeSettings, onnxruntime_site_dir,  # noqa: E402
                                                  plan_runtimes)
from streamingtalker_addon.client.core import BridgeError  # noqa: E402

from addon_helpers import PY, arkit_mesh, curve_values, write_wav  # noqa: E402

ONNX_FILES = (".onnx.json", *(f".{suffix}" for suffix, _, _ in GRAPHS.values()))


def _copy_model(dest: Path, onnx: bool = True) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    model = dest / DEFAULT_MODEL.name
    shutil.copy(DEFAULT_MODEL, model)
    if onnx:
        for suffix in ONNX_FILES:
            shutil.copy(DEFAULT_MODEL.with_name(DEFAULT_MODEL.stem + suffix), dest)
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {"no_onnx": _copy_model(root / "no_onnx", onnx=False), "damaged": _copy_model(root / "damaged")}
    head = out["damaged"].with_name(out["damaged"].stem + ".head.onnx")
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    return out


@pytest.fixture()
def blender(tmp_path, monkeypatch):
    """The add-on with nothing configured: no Python in the preferences, no venv, no $STREAMINGTALKER_PYTHON."""
    monkeypatch.delenv("STREAMINGTALKER_PYTHON", raising=False)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module="streamingtalker_addon")
    st = addon_state.get()
    st.user_dir = tmp_path / "user"  # no 'Set up runtime' venv in there
    yield st
    st.server.shutdown()


def _generate(model: Path, wav: Path) -> tuple[set, str]:
    p = bpy.context.preferences.addons["streamingtalker_addon"].preferences
    assert p.python_path == ""
    p.model_path = str(model)
    sc = bpy.context.scene.streamingtalker
    sc.target = arkit_mesh()
    sc.audio_file = str(wav)
    try:
        result = bpy.ops.streamingtalker.generate(timeout=120)
    except RuntimeError:  # background operators report errors as exceptions
        result = {"CANCELLED"}
    return result, sc.status


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    import numpy as np

    t = np.arange(16000) / 16000
    return write_wav(tmp_path_factory.mktemp("audio") / "tone.wav",
                     0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)))


def test_nothing_configured_runs_blenders_python_with_onnx_runtime(blender, wav):
    result, status = _generate(DEFAULT_MODEL, wav)
    assert result == {"FINISHED"}, status
    assert blender.server.runtime.label == BUILTIN and blender.server.runtime.python == sys.executable
    hello = blender.server.client.hello.get("runtime")
    assert (hello["backend"], hello["head_precision"], hello["python"]) == ("onnx", "int8", sys.executable)
    assert blender.runtime_lines()[0].startswith(f"Runtime: onnx (int8 head) on cpu, {BUILTIN}")
    assert len(curve_values(bpy.context.scene.streamingtalker.target)["jawOpen"]) > 10
    # Test connection reports the model and the runtime in use
    assert bpy.ops.streamingtalker.test_connection() == {"FINISHED"}
    p = bpy.context.preferences.addons["streamingtalker_addon"].preferences
    bundled_name = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())["name"]
    assert f"model '{bundled_name}'" in p.status and f"Runtime: onnx (int8 head) on cpu, {BUILTIN}" in p.status
    assert '"channel_space": "arkit"' in p.model_card


def test_missing_onnx_files_without_a_torch_runtime_say_what_to_do(blender, models, wav):
    result, status = _generate(models["no_onnx"], wav)
    assert result == {"CANCELLED"}
    assert "has no ONNX files" in status and "no torch runtime is set up" in status
    assert "export-onnx" in status and "Set up runtime" in status
    assert blender.server.client is None  # nothing was started


def test_missing_onnx_files_fall_back_to_the_torch_runtime(blender, models, wav, monkeypatch):
    monkeypatch.setenv("STREAMINGTALKER_PYTHON", PY)
    result, status = _generate(models["no_onnx"], wav)
    assert result == {"FINISHED"}, status
    assert blender.server.client.hello.get("runtime")["backend"] == "torch"
    lines = blender.runtime_lines()
    assert "$STREAMINGTALKER_PYTHON" in lines[0] and "has no ONNX files" in lines[1]


def test_damaged_onnx_file_falls_back_or_says_what_to_do(blender, models, wav, monkeypatch):
    result, status = _generate(models["damaged"], wav)
    assert result == {"CANCELLED"}
    assert "could not run the model" in status and "does not match its checksum" in status
    assert "No torch runtime is set up to fall back on" in status
    monkeypatch.setenv("STREAMINGTALKER_PYTHON", PY)
    result, status = _generate(models["damaged"], wav)
    assert result == {"FINISHED"}, status
    assert blender.server.client.hello.get("runtime")["backend"] == "torch"
    assert any("does not match its checksum" in line for line in blender.runtime_lines())


def test_onnxruntime_that_will_not_import_falls_back(blender, wav, tmp_path, monkeypatch):
    broken = tmp_path / "site"
    (broken / "onnxruntime").mkdir(parents=True)
    (broken / "onnxruntime" / "__init__.py").write_text("raise ImportError('a wheel for another platform')\n")
    monkeypatch.syspath_prepend(str(broken))  # where this process (Blender) would import it from
    # Blender's process never imports onnxruntime itself; an earlier test in this process may have
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    assert onnxruntime_site_dir() == str(broken)
    result, status = _generate(DEFAULT_MODEL, wav)
    assert result == {"CANCELLED"} and "onnxruntime does not import" in status, status
    monkeypatch.setenv("STREAMINGTALKER_PYTHON", PY)
    result, status = _generate(DEFAULT_MODEL, wav)
    assert result == {"FINISHED"}, status
    assert blender.server.runtime.label == "$STREAMINGTALKER_PYTHON"


def test_runtime_plan(tmp_path):
    venv = tmp_path / "venv"
    model = str(DEFAULT_MODEL)
    site = "/ext/site-packages"
    plan, notes = plan_runtimes(RuntimeSettings(), model, venv, onnxruntime_dir=site)
    assert [(r.backend, r.site_dirs) for r in plan] == [("onnx", (site,))] and not notes
    # a platform with no onnxruntime wheel and no torch runtime: what to do
    with pytest.raises(BridgeError, match="no ONNX Runtime for this platform.*install the extension build made "
                                          "for your platform.*Set up runtime"):
        plan_runtimes(RuntimeSettings(), model, venv, onnxruntime_dir=None)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    plan, notes = plan_runtimes(RuntimeSettings(), model, venv, onnxruntime_dir=None, env_python=PY)
    assert [r.label for r in plan] == ["runtime made by 'Set up runtime'", "$STREAMINGTALKER_PYTHON"]
    assert "no ONNX Runtime for this platform" in notes[0]
    # CUDA: the torch runtimes first; an explicit Python: only that one, backend auto
    plan, _ = plan_runtimes(RuntimeSettings(device="cuda"), model, venv, onnxruntime_dir=site)
    assert [r.backend for r in plan] == ["auto", "onnx"]
    plan, _ = plan_runtimes(RuntimeSettings(python_path=PY), model, venv, onnxruntime_dir=site)
    assert [(r.python, r.backend) for r in plan] == [(PY, "auto")]
    with pytest.raises(BridgeError, match="does not exist"):
        plan_runtimes(RuntimeSettings(python_path=str(tmp_path / "nope")), model, venv, onnxruntime_dir=site)
