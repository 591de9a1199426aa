"""The inference runtime: which Python runs the server, starting it, setting it up.

Blender's Python has no torch, so the model runs in a child process started
with another interpreter: the one in the preferences, else the venv that *Set
up runtime* creates under the extension's user folder, else
``$STREAMINGTALKER_PYTHON`` (CI, pipelines). One server is kept alive between
operator runs so the model loads once; it is started on a worker thread, so
the UI never waits for the model to load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .core import BridgeClient, BridgeError, bridge_client, paths

ADDON_DIR = Path(__file__).resolve().parent


def user_dir() -> Path:
    """Writable per-user folder for the runtime venv and logs (never the add-on folder)."""
    try:
        import bpy

        if __package__ and __package__.startswith("bl_ext."):
            return Path(bpy.utils.extension_path_user(__package__, create=True))
        return Path(bpy.utils.user_resource("CONFIG", path="streamingtalker", create=True))
    except (ImportError, ValueError, AttributeError):
        d = Path.home() / ".streamingtalker"
        d.mkdir(parents=True, exist_ok=True)
        return d


def venv_dir() -> Path:
    return user_dir() / "runtime"


def venv_python(root: Path | None = None) -> Path:
    root = root or venv_dir()
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def resolve_python(configured: str = "") -> str:
    """Interpreter for the server, or a BridgeError telling the user what to do."""
    if configured:
        p = Path(os.path.expanduser(configured))
        if not p.is_file():
            raise BridgeError(f"The runtime Python '{configured}' does not exist. Fix it in the "
                              "add-on preferences or click 'Set up runtime'.", "no_runtime")
        return str(p)
    vp = venv_python()
    if vp.is_file():
        return str(vp)
    env = os.environ.get("STREAMINGTALKER_PYTHON")
    if env and Path(env).is_file():
        return env
    raise BridgeError("No inference runtime yet: open Preferences → Add-ons → StreamingTalker and "
                      "click 'Set up runtime' (or choose a Python that has torch).", "no_runtime")


def resolve_model(configured: str = "") -> str:
    path = Path(os.path.expanduser(configured)) if configured else Path(paths.DEFAULT_MODEL)
    if not path.is_file():
        what = "The model file" if configured else "The bundled model"
        raise BridgeError(f"{what} was not found: {path}", "no_model")
    return str(path)


class ServerManager:
    """Owns the one long-lived server; starts it in the background on demand."""

    def __init__(self) -> None:
        self.client: Any = None
        self.config: tuple = ()
        self._thread: threading.Thread | None = None
        self._launch_error: BridgeError | None = None
        self._pending: Any = None
        self.hello_timeout = 120.0
        self.launch_seconds: float | None = None

    def request(self, python: str, model: str, device: str = "cpu", threads: int = 0) -> "ServerManager":
        """Make sure a server with this configuration is running or starting."""
        config = (python, model, device, threads)
        if self.client is not None and (config != self.config or not self.client.alive):
            self.shutdown()
        if self.client is None and self._thread is None:
            self.config = config
            self._launch_error = None
            self._thread = threading.Thread(target=self._launch, args=config, daemon=True,
                                            name="stk-server-launch")
            self._thread.start()
        return self

    def _launch(self, python: str, model: str, device: str, threads: int) -> None:
        t0 = time.monotonic()
        try:
            self._pending = BridgeClient.launch(python=python, model=model, device=device,
                                                threads=threads or None,
                                                hello_timeout=self.hello_timeout)
            self.launch_seconds = time.monotonic() - t0
        except BridgeError as exc:
            self._launch_error = exc
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
            self._launch_error = BridgeError(f"Could not start the inference runtime: {exc}")

    def poll_ready(self) -> Any:
        """The running client, None while it starts; raises the launch error once."""
        if self.client is not None:
            if not self.client.alive:
                self.discard()
                raise BridgeError("The inference process stopped.", "process_exited")
            return self.client
        if self._thread is None:
            raise BridgeError("The inference runtime was not requested.", "no_runtime")
        if self._thread.is_alive():
            return None
        self._thread = None
        if self._launch_error is not None:
            err, self._launch_error = self._launch_error, None
            raise err
        self.client, self._pending = self._pending, None
        return self.client

    def wait_ready(self, timeout: float) -> Any:
        """Blocking variant for background mode and *Test connection*."""
        deadline = time.monotonic() + timeout
        while True:
            client = self.poll_ready()
            if client is not None:
                return client
            if time.monotonic() > deadline:
                raise bridge_client.BridgeTimeout(f"The inference runtime did not start within {timeout:.0f} s.")
            time.sleep(0.02)

    def discard(self) -> None:
        """Kill a broken (crashed or hung) server so the next run starts a fresh one."""
        client, self.client = self.client, None
        if client is not None:
            client.kill()
            client.close(timeout=1.0)

    def shutdown(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close(timeout=3.0)
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            if self._pending is not None:
                self._pending.close(timeout=3.0)
                self._pending = None
            self._thread = None


#: The add-on's one server (module state survives between operator runs).
SERVER = ServerManager()


# -- runtime set-up ------------------------------------------------------------
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
