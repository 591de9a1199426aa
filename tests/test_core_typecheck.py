"""mypy passes over inference_core (the add-on's own check is in test_addon_package.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_inference_core():
    res = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "tests/mypy_core.ini",
                          "inference_core"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
