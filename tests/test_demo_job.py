"""The main job (``make demo``) end to end on a short clip: .blend, .fbx and a preview appear."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import write_wav

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.blender, pytest.mark.slow]


def test_demo_script_writes_blend_fbx_and_preview(tmp_path, random_model):
    from inference_core.shared.paths import DEMO_SPEECH
    from inference_core.audio.io import load_file

    clip = load_file(DEMO_SPEECH)[: 16000 * 2]
    wav = write_wav(tmp_path / "clip.wav", clip)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out),
                        "--audio", str(wav), "--model", str(random_model)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["frames_keyed"] == 60 and summary["channels_bound"] == 52
    assert (out / "demo.blend").stat().st_size > 100_000
    assert (out / "demo.fbx").stat().st_size > 100_000
    preview = Path(summary["preview"])
    assert preview.exists() and preview.suffix in (".mp4", ".png") and preview.stat().st_size > 10_000
