"""*Set up runtime*: an optional torch venv, for training and CUDA (no bpy).

The add-on runs without it (the built-in ONNX runtime); this creates a Python
environment with torch and the core's requirements under the add-on's user folder,
on a worker thread, logging every command's output to a file.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from .runtime import venv_python

ADDON_DIR = Path(__file__).resolve().parent.parent


def requirements_file() -> Path | None:
    for cand in (ADDON_DIR / "requirements_core.txt", ADDON_DIR.parent / "requirements" / "core.txt"):
        if cand.is_file():
            return cand
    return None


def setup_steps(target: Path, device: str = "cpu", base_python: str | None = None,
                pip_extra: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """Commands that create the runtime venv and install torch + the core's requirements."""
    base = base_python or sys.executable
    py = str(venv_python(target))
    extra = list(pip_extra or [])
    torch_cmd = [py, "-m", "pip", "install", "torch", *extra]
    if device == "cpu" and sys.platform.startswith("linux"):
        torch_cmd += ["--index-url", "https://download.pytorch.org/whl/cpu"]
    steps = [("Creating virtual environment", [base, "-m", "venv", str(target)]),
             ("Installing torch", torch_cmd)]
    req = requirements_file()
    if req is not None:
        steps.append(("Installing the core's requirements", [py, "-m", "pip", "install", "-r", str(req), *extra]))
    steps.append(("Checking the runtime", [py, "-c", "import torch, numpy, safetensors; print('torch', torch.__version__)"]))
    return steps


class SetupJob:
    """Runs the set-up commands one after another on a worker thread, logging to a file."""

    def __init__(self, steps: list[tuple[str, list[str]]], log_path: Path):
        self.steps = steps
        self.log_path = log_path
        self.index = 0
        self.status = "running"  # running | ok | failed | cancelled
        self.message = ""
        self.last_line = ""
        self._proc: subprocess.Popen | None = None
        self._cancel = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="stk-runtime-setup")

    def start(self) -> "SetupJob":
        self._thread.start()
        return self

    @property
    def progress(self) -> float:
        return 1.0 if self.status == "ok" else self.index / max(1, len(self.steps))

    @property
    def title(self) -> str:
        return self.steps[min(self.index, len(self.steps) - 1)][0]

    def cancel(self) -> None:
        self._cancel = True
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()

    def wait(self, timeout: float | None = None) -> str:
        self._thread.join(timeout)
        return self.status

    def _run(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w", encoding="utf-8") as log:
            for self.index, (title, cmd) in enumerate(self.steps):
                log.write(f"== {title}: {' '.join(cmd)}\n")
                log.flush()
                try:
                    self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                  text=True, errors="replace")
                except OSError as exc:
                    self.status, self.message = "failed", f"{title} failed: {exc}"
                    log.write(self.message + "\n")
                    return
                assert self._proc.stdout is not None
                for line in self._proc.stdout:
                    log.write(line)
                    if line.strip():
                        self.last_line = line.strip()[:200]
                rc = self._proc.wait()
                if self._cancel:
                    self.status, self.message = "cancelled", "Runtime set-up cancelled."
                    return
                if rc != 0:
                    self.status = "failed"
                    self.message = (f"{title} failed (exit code {rc}): {self.last_line}. "
                                    f"Full log: {self.log_path}")
                    log.write(self.message + "\n")
                    return
            self.index = len(self.steps)
            self.status, self.message = "ok", f"Runtime ready: {self.last_line}"
