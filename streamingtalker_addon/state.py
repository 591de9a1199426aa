"""The one owner of the add-on's state: the server, the running job, the last model card.

Created by ``register()`` and closed by ``unregister()``; there are no other module
globals. Operators, the panel and the jobs reach it through :func:`get` (jobs get
it passed in). No bpy here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

from .client.runtime import (RuntimeSettings, ServerManager, onnxruntime_site_dir, plan_runtimes,
                             resolve_model)
from .client.setup import SetupJob


class Job(Protocol):
    """What every job (generation, live, follow playback) offers the UI."""

    kind: str

    @property
    def active(self) -> bool: ...

    @property
    def written(self) -> int: ...

    def step(self, budget: float = 0.02) -> bool: ...

    def cancel(self) -> None: ...

    def status_text(self) -> str: ...


class Stopping(Protocol):
    """A session stopped for the user whose server has not confirmed yet (a driver in *cancelling*)."""

    stall_timeout: float

    def step(self, budget: float = 0.02) -> bool: ...


class AddonState:
    def __init__(self, user_dir: Path):
        #: writable per-user folder (the torch runtime venv, logs)
        self.user_dir = user_dir
        #: the one inference server, kept between runs so the model loads once
        self.server = ServerManager()
        #: the job running now: Stop reaches it, and two jobs never share the server
        self.job: Job | None = None
        #: the last finished job (scripts, tests and the status line read its figures)
        self.last_job: Any = None
        #: model card of the last server that answered (channel names, styles, sample rate)
        self.card: dict[str, Any] = {}
        #: *Set up runtime*, while it runs and after
        self.setup: SetupJob | None = None
        #: sessions stopped for the user that still wait for the server's confirmation: the UI's
        #: timer steps them (:meth:`settle`), no new run starts before they end, and each ends
        #: within its stall timeout (a hung server is killed then)
        self.stopping: list[Stopping] = []

    @property
    def venv_dir(self) -> Path:
        """Where *Set up runtime* puts the optional torch runtime."""
        return self.user_dir / "runtime"

    def request_server(self, settings: RuntimeSettings) -> ServerManager:
        """Start (or reuse) the server for these settings; BridgeError saying what to do otherwise."""
        model = resolve_model(settings.model_path)
        plan, notes = plan_runtimes(settings, model, self.venv_dir, onnxruntime_dir=onnxruntime_site_dir(),
                                    env_python=os.environ.get("STREAMINGTALKER_PYTHON"))
        return self.server.request(plan, model, settings.device, settings.threads, notes)

    def busy(self) -> Job | None:
        return self.job if self.job is not None and self.job.active else None

    def hand_off(self, session: Stopping) -> None:
        """Keep stepping ``session`` after its job ended for the user, so Stop never waits on the server."""
        self.stopping.append(session)

    def settle(self, budget: float = 0.0) -> bool:
        """One step of each stopped session; True while any still waits for the server."""
        self.stopping = [s for s in self.stopping if s.step(budget)]
        return bool(self.stopping)

    def wait_settled(self) -> None:
        """Background mode, where no timer runs: step the stopped sessions to their end.

        Bounded: each ends within its stall timeout (its clock started at the cancel); one that a
        chatty server keeps alive longer is given up and the server killed.
        """
        deadline = time.monotonic() + max((s.stall_timeout for s in self.stopping), default=0.0) + 1.0
        while self.settle(0.05):
            if time.monotonic() > deadline:
                self.stopping.clear()
                self.server.discard()
                return
            time.sleep(0.005)

    def runtime_lines(self) -> list[str]:
        """Which runtime serves the model (from the server's hello) and why others were passed over."""
        text = self.server.describe()
        return ([f"Runtime: {text}"] if text else []) + list(self.server.notes)

    def close(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.cancel()
        self.stopping.clear()  # the server goes down below: nothing left to confirm
        if self.setup is not None and self.setup.status == "running":
            self.setup.cancel()
        self.server.shutdown()


_STATE: AddonState | None = None


def start(user_dir: Path) -> AddonState:
    global _STATE
    if _STATE is not None:
        _STATE.close()
    _STATE = AddonState(user_dir)
    return _STATE


def stop() -> None:
    global _STATE
    state, _STATE = _STATE, None
    if state is not None:
        state.close()


def get() -> AddonState:
    """The add-on's state (RuntimeError when the add-on is not registered)."""
    if _STATE is None:
        raise RuntimeError("the StreamingTalker add-on is not registered")
    return _STATE
