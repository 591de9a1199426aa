"""*Set up runtime* (an optional torch venv) and *Test connection*, both without blocking the UI.

Each runs as a state machine a timer polls (a worker thread for the set-up, the
bridge for the connection test); in background mode, where timers never fire, the
operator steps it to the end instead.
"""

from __future__ import annotations

import json
import time
from typing import Any

import bpy

from .. import state
from .._typing import OpResult
from ..client.core import BridgeError
from ..client.driver import ConnectionCheck
from ..client.setup import SetupJob, setup_steps
from .prefs import preferences, runtime_settings
from .reporting import fail


def redraw_all() -> None:
    """Redraw every area of every window (timers have no context area to tag)."""
    wm = bpy.context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            area.tag_redraw()


class STK_OT_setup_runtime(bpy.types.Operator):
    """Create an optional Python environment with torch (for CUDA and training; runs in the background)"""

    bl_idname = "streamingtalker.setup_runtime"
    bl_label = "Set up runtime"

    def execute(self, context: Any) -> OpResult:
        st = state.get()
        if st.setup is not None and st.setup.status == "running":
            self.report({"WARNING"}, "Runtime set-up is already running")
            return {"CANCELLED"}
        p = preferences(context)
        target = st.venv_dir
        job = st.setup = SetupJob(setup_steps(target, runtime_settings(context).device),
                                  st.user_dir / "setup.log").start()
        if bpy.app.background:
            job.wait()
            return _finish_setup(self, p, job)
        bpy.app.timers.register(_poll_setup, first_interval=0.5)
        self.report({"INFO"}, f"Setting up the runtime in {target} (log: {job.log_path})")
        return {"FINISHED"}


def _finish_setup(op: Any, p: Any, job: SetupJob) -> OpResult:
    if p is not None:
        p.status = job.message
    if job.status == "ok":
        op.report({"INFO"}, job.message)
        return {"FINISHED"}
    return fail(op, job.message)


def _poll_setup() -> float | None:
    try:
        job = state.get().setup
    except RuntimeError:  # unregistered meanwhile
        return None
    p = preferences(bpy.context)
    redraw_all()
    if job is None:
        return None
    if job.status == "running":
        if p is not None:
            p.status = f"{job.title} ({job.index + 1}/{len(job.steps)}): {job.last_line[:80]}"
        return 0.5
    if p is not None:
        p.status = job.message
    return None


def _check_done(check: ConnectionCheck, p: Any, t0: float) -> str:
    """The line to show once the check has ended (and the card, in the preferences)."""
    if check.state != "done":
        return f"Connection failed: {check.error}"
    card = check.card
    lines = [f"Connected in {time.monotonic() - t0:.1f} s: model '{card.get('name')}', "
             f"{len(card.get('channels', []))} channels at {card.get('fps')} fps"]
    lines += state.get().runtime_lines()
    if p is not None:
        p.model_card = json.dumps(card)
    return "\n".join(lines)


class STK_OT_test_connection(bpy.types.Operator):
    """Start the inference runtime and show the model card and the runtime it reports"""

    bl_idname = "streamingtalker.test_connection"
    bl_label = "Test connection"

    def execute(self, context: Any) -> OpResult:
        st = state.get()
        p = preferences(context)
        settings = runtime_settings(context)
        t0 = time.monotonic()
        try:
            check = ConnectionCheck(st.request_server(settings), stall_timeout=settings.stall_timeout)
        except BridgeError as exc:
            return fail(self, exc, p, prefix="Connection failed: ")
        if not bpy.app.background:
            if p is not None:
                p.status = "Starting the inference runtime…"
            bpy.app.timers.register(lambda: _poll_check(check, t0), first_interval=0.05)
            return {"FINISHED"}
        while check.step(0.05):
            time.sleep(0.01)
        text = _check_done(check, p, t0)
        if check.state != "done":
            return fail(self, text, p, prefix="")
        if p is not None:
            p.status = text
        self.report({"INFO"}, text.splitlines()[0])
        return {"FINISHED"}


def _poll_check(check: ConnectionCheck, t0: float) -> float | None:
    if check.step(0.01):
        return 0.05
    p = preferences(bpy.context)
    if p is not None:
        p.status = _check_done(check, p, t0)
    redraw_all()
    return None


CLASSES = (STK_OT_setup_runtime, STK_OT_test_connection)
