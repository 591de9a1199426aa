"""The built extension zip installs, registers and unregisters in real Blender; mypy passes."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from addon_helpers import ROOT

pytestmark = pytest.mark.blender

INSTALL_SCRIPT = r"""
import sys, bpy
zip_path = sys.argv[-1]
bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                enable_on_install=True) == {"FINISHED"}
mod = "bl_ext.user_default.streamingtalker"
assert mod in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
assert hasattr(bpy.types.Scene, "streamingtalker")
assert bpy.ops.streamingtalker.generate.get_rna_type().name == "Generate from audio"
import importlib
ext = importlib.import_module(mod)
core = importlib.import_module(mod + ".client.core")
assert core.inference_core.__name__ == mod + ".inference_core", core.inference_core.__name__
from bl_ext.user_default.streamingtalker import state
user = state.get().user_dir
assert "extensions" in str(user) and user.is_dir(), user
print("USER_DIR", user)
bpy.ops.preferences.addon_disable(module=mod)
assert mod not in bpy.context.preferences.addons
assert not hasattr(bpy.types.Scene, "streamingtalker")
bpy.ops.preferences.addon_enable(module=mod)
assert hasattr(bpy.types.Scene, "streamingtalker")
bpy.ops.preferences.addon_disable(module=mod)
print("OK")
"""


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out)], capture_output=True,
                         text=True, timeout=120, check=True)
    return Path(res.stdout.strip().splitlines()[-1])


def test_zip_contents(built_zip):
    names = zipfile.ZipFile(built_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "ui/operators.py" in names
    assert "inference_core/shared/protocol.py" in names and "inference_core/shared/client.py" in names
    assert "requirements_core.txt" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    import tomllib
    manifest = tomllib.loads(zipfile.ZipFile(built_zip).read("blender_manifest.toml").decode())
    assert manifest["id"] == "streamingtalker" and manifest["schema_version"] == "1.0.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"files", "microphone"}
    assert all(len(v) <= 64 and not v.endswith(".") for v in manifest["permissions"].values())
    assert len(manifest["tagline"]) <= 64


def test_zip_installs_enables_and_disables(built_zip, tmp_path):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("PYTHONPATH", None)
    res = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(built_zip)], capture_output=True, text=True,
                         timeout=240, env=env, cwd=str(tmp_path))  # cwd away from the checkout
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout[-2000:] + res.stderr[-3000:]
    assert str(tmp_path / "user") in res.stdout  # user data goes under the extension user dir


def test_mypy_with_fake_bpy_module():
    res = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "tests/addon_mypy.ini",
                          "streamingtalker_addon"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
