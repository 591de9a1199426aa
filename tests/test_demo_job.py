"""The main job (``make demo``) end to end on a short clip: a short summary on the terminal, the render and
encoder noise in out/demo.log, and the .blend, .fbx, video and contact sheet in out/."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import write_wav

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.blender, pytest.mark.slow]


def test_demo_script_writes_its_files_and_a_short_summary(tmp_path):
    from inference_core.audio.io import load_file
    from inference_core.shared.paths import DEMO_SPEECH

    clip = load_file(DEMO_SPEECH)[: 16000 * 2]
    wav = write_wav(tmp_path / "clip.wav", clip)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out), "--size", "160",
                        "--audio", str(wav), "--picture", str(tmp_path / "pic.png")],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) <= 20 and not r.stderr.strip(), r.stdout + r.stderr
    assert "Fra:" not in r.stdout and "Video append" not in r.stdout and "EGL" not in r.stdout
    for name in ("demo.blend", "demo.fbx", "demo_preview.mp4", "demo_contact_sheet.png", "demo.log"):
        assert name in r.stdout and (out / name).stat().st_size > 1000, name
    assert "blender " in lines[-1] and "demo.blend" in lines[-1]  # how to open it
    log = (out / "demo.log").read_text()
    assert "Fra:" in log or "Video append" in log  # the render's progress went to the log
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["frames_keyed"] == 60 and summary["channels_bound"] == 51
    assert summary["channels_unmapped"] == ["tongueOut"] and "tongueOut" in r.stdout
    assert summary["head"] == {"vertices": 23051, "head_mesh_vertices": 21451, "eye_vertices": [800, 800],
                               "shape_keys": 53}
    assert summary["take"]["action"] == "clip" and len(summary["contact_sheet_frames"]) == 12
    assert (tmp_path / "pic.png").read_bytes() == (out / "demo_contact_sheet.png").read_bytes()
