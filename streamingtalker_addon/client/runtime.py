"""Which Python runs the inference server, and the one server the add-on keeps (no bpy).

The model runs in a child process (``python -m inference_core serve``). Runtimes are
tried in this order:

1. The Python chosen in the preferences, if any (backend ``auto``): an explicit
   choice, so nothing else is tried.
2. The **built-in runtime**: Blender's own interpreter (``sys.executable``) with the
   extension's bundled ``onnxruntime`` wheel put on the child's path, backend
   ``onnx``. Nothing to install: Blender ships Python 3.11 and numpy, and installs
   the wheel listed in the extension's manifest.
3. A **torch runtime**, if one exists: the venv *Set up runtime* made, then
   ``$STREAMINGTALKER_PYTHON`` (CI, pipelines); backend ``auto``.

With device CUDA the torch runtimes come first (the bundled wheel is CPU only). The
built-in runtime is skipped when it cannot work (this build has no onnxruntime, the
model has no ONNX files), and left behind when its server refuses to start (a
damaged ONNX file, an onnxruntime that will not import): the next runtime is tried.
When none is left, the error says what is missing and what to do.

One server is kept alive between operator runs so the model loads once; it is
started on a worker thread, so the UI never waits for it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import BridgeClient, BridgeError, Err, onnx_files, paths

BUILTIN = "Blender's Python + ONNX Runtime"
_SET_UP = ("open Preferences → Add-ons → StreamingTalker and click 'Set up runtime' "
           "(installs torch), or choose a Python that has torch")


@dataclass(frozen=True)
class RuntimeSettings:
    """Plain copy of the add-on preferences (paths already absolute; defaults when not enabled)."""

    python_path: str = ""
    device: str = "cpu"
    model_path: str = ""
    threads: int = 0
    stall_timeout: float = 30.0


@dataclass(frozen=True)
class Runtime:
    """One way to run the server."""

    python: str
    backend: str  # "onnx" (built-in) or "auto" (torch runtimes: onnx when it can, else torch)
    label: str    # what the panel calls it
    site_dirs: tuple[str, ...] = ()


def venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def onnxruntime_site_dir() -> str | None:
    """The folder this process would import ``onnxruntime`` from (not importing it).

    In Blender that is the extensions' ``site-packages``, where Blender unpacks the
    wheels listed in an extension's manifest; the child gets it on its path.
    """
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


def onnx_files_problem(model: str) -> str | None:
    """Why the model cannot run on the built-in runtime for lack of files, or None.

    Only presence is checked here; the server verifies the checksums and refuses a
    damaged file, which makes the add-on move on to the next runtime."""
    for path in [onnx_files.manifest_path(model), *(onnx_files.graph_path(model, k) for k in onnx_files.GRAPHS)]:
        if not Path(path).is_file():
            return f"the model {Path(model).name} has no ONNX files ({Path(path).name} is missing)"
    return None


def resolve_model(configured: str = "") -> str:
    path = Path(os.path.expanduser(configured)) if configured else Path(paths.DEFAULT_MODEL)
    if not path.is_file():
        what = "The model file" if configured else "The bundled model"
        raise BridgeError(f"{what} was not found: {path}", Err.NO_MODEL)
    return str(path)


def plan_runtimes(settings: RuntimeSettings, model: str, venv: Path, *,
                  python: str = sys.executable, onnxruntime_dir: str | None = None,
                  env_python: str | None = None) -> tuple[list[Runtime], list[str]]:
    """(runtimes to try in order, why the built-in one was skipped); BridgeError when there is none."""
    if settings.python_path:
        configured = Path(os.path.expanduser(settings.python_path))
        if not configured.is_file():
            raise BridgeError(f"The runtime Python '{settings.python_path}' does not exist. Fix it in the "
                              "add-on preferences (or clear it to use Blender's own Python).", Err.NO_RUNTIME)
        return [Runtime(str(configured), "auto", "Python from the preferences")], []
    torch_runtimes = []
    if venv_python(venv).is_file():
        torch_runtimes.append(Runtime(str(venv_python(venv)), "auto", "runtime made by 'Set up runtime'"))
    if env_python and Path(env_python).is_file():
        torch_runtimes.append(Runtime(env_python, "auto", "$STREAMINGTALKER_PYTHON"))
    builtin: list[Runtime] = []
    if onnxruntime_dir is None:
        problem: str | None = ("this build of the extension has no ONNX Runtime for this platform "
                               "(onnxruntime is not importable in Blender's Python)")
    elif (problem := onnx_files_problem(model)) is None:
        builtin.append(Runtime(python, "onnx", BUILTIN, (onnxruntime_dir,)))
    plan = torch_runtimes + builtin if settings.device == "cuda" else builtin + torch_runtimes
    if plan:
        return plan, [f"{BUILTIN} cannot be used: {problem}"] if problem else []
    todo = ("install the extension build made for your platform" if onnxruntime_dir is None else
            "export them with `python -m inference_core export-onnx MODEL`")
    raise BridgeError(f"No inference runtime can run the model: {problem}, and no torch runtime is set up. "
                      f"To fix it, {todo}, or {_SET_UP}.", Err.NO_RUNTIME)


class ServerManager:
    """Owns the one long-lived server; starts it in the background on demand."""

    def __init__(self) -> None:
        self.client: BridgeClient | None = None
        self.config: tuple[Any, ...] = ()
        self.runtime: Runtime | None = None
        #: why runtimes before the one running were skipped or failed (shown in the panel)
        self.notes: list[str] = []
        self.hello_timeout = 120.0
        self.launch_seconds: float | None = None
        self._thread: threading.Thread | None = None
        self._launch_error: BridgeError | None = None
        self._pending: tuple[BridgeClient, Runtime] | None = None

    def request(self, plan: list[Runtime], model: str, device: str = "cpu", threads: int = 0,
                notes: list[str] | None = None) -> "ServerManager":
        """Make sure a server for this plan is running or starting."""
        config = (tuple(plan), model, device, threads)
        if self.client is not None and (config != self.config or not self.client.alive):
            self.shutdown()
        if self.client is None and self._thread is None:
            self.config = config
            self.notes = list(notes or [])
            self._launch_error = None
            self._thread = threading.Thread(target=self._launch, args=(plan, model, device, threads),
                                            daemon=True, name="stk-server-launch")
            self._thread.start()
        return self

    def _launch(self, plan: list[Runtime], model: str, device: str, threads: int) -> None:
        t0 = time.monotonic()
        failures: list[str] = []
        for i, rt in enumerate(plan):
            try:
                client = BridgeClient.launch(python=rt.python, model=model, device=device, threads=threads or None,
                                             backend=rt.backend, site_dirs=rt.site_dirs,
                                             hello_timeout=self.hello_timeout)
            except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
                err = exc if isinstance(exc, BridgeError) else BridgeError(
                    f"Could not start the inference runtime: {exc}", Err.LAUNCH_FAILED)
                failures.append(f"{rt.label} could not run the model: {err}")
                if i + 1 < len(plan):
                    continue
                self._launch_error = self._final_error(err, failures, plan)
                return
            self.launch_seconds = time.monotonic() - t0
            self.notes += failures
            self._pending = (client, rt)
            return

    @staticmethod
    def _final_error(err: BridgeError, failures: list[str], plan: list[Runtime]) -> BridgeError:
        if len(plan) == 1 and plan[0].label != BUILTIN:
            return err
        text = " ".join(f if f.endswith(".") else f + "." for f in failures)
        if all(rt.label == BUILTIN for rt in plan):
            text += f" No torch runtime is set up to fall back on: {_SET_UP}."
        return BridgeError(text, err.code, err.detail)

    def poll_ready(self) -> BridgeClient | None:
        """The running client, None while it starts; raises the launch error once."""
        if self.client is not None:
            if not self.client.alive:
                self.discard()
                raise BridgeError("The inference process stopped.", Err.PROCESS_EXITED)
            return self.client
        if self._thread is None:
            raise BridgeError("The inference runtime was not requested.", Err.NO_RUNTIME)
        if self._thread.is_alive():
            return None
        self._thread = None
        if self._launch_error is not None:
            err, self._launch_error = self._launch_error, None
            raise err
        assert self._pending is not None
        (self.client, self.runtime), self._pending = self._pending, None
        return self.client

    def describe(self) -> str:
        """Which runtime serves the model, from the server's ``hello`` (empty when none runs)."""
        client, rt = self.client, self.runtime
        if client is None or rt is None or client.hello is None:
            return ""
        info = client.hello.get("runtime") or {}
        started = f", started in {self.launch_seconds:.1f} s" if self.launch_seconds is not None else ""
        int8 = " (int8 head)" if info.get("head_precision") == "int8" else ""
        return (f"{info.get('backend', rt.backend)}{int8} on {info.get('device', '?')}, {rt.label} "
                f"(Python {info.get('python_version', '?')}: {info.get('python', rt.python)}){started}")

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
                self._pending[0].close(timeout=3.0)
                self._pending = None
            self._thread = None
