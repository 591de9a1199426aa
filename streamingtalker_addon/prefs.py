"""Add-on preferences: inference runtime, device, model, set-up and connection test."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import runtime
from ._typing import OpResult

ADDON_ID = __package__ or "streamingtalker_addon"


@dataclass
class Settings:
    """Plain copy of the preferences (also the defaults when the add-on is not enabled as such)."""

    python_path: str = ""
    device: str = "cpu"
    model_path: str = ""
    threads: int = 0
    stall_timeout: float = 30.0


def settings(context: Any = None) -> Settings:
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    p = addon.preferences if addon else None
    if p is None:
        return Settings()
    return Settings(p.python_path, p.device.lower(), p.model_path, p.threads, p.stall_timeout)


def request_server(s: Settings) -> runtime.ServerManager:
    """Start (or reuse) the server for these settings; raises BridgeError with advice."""
    python = runtime.resolve_python(bpy.path.abspath(s.python_path) if s.python_path else "")
    model = runtime.resolve_model(bpy.path.abspath(s.model_path) if s.model_path else "")
    return runtime.SERVER.request(python, model, s.device, s.threads)


#: The set-up job currently running (module state, polled by a timer).
SETUP_JOB: runtime.SetupJob | None = None


class STK_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Runtime Python", subtype="FILE_PATH",
        description="Python with torch that runs the model; empty = the runtime made by 'Set up runtime'")  # type: ignore[valid-type]
    device: EnumProperty(name="Device", items=[("CPU", "CPU", ""), ("CUDA", "CUDA", "NVIDIA GPU")],
                         default="CPU")  # type: ignore[valid-type]
    model_path: StringProperty(name="Model file", subtype="FILE_PATH",
                               description="Checkpoint (.safetensors); empty = the bundled model")  # type: ignore[valid-type]
    threads: IntProperty(name="CPU threads", default=0, min=0, max=64,
                         description="0 = the runtime's default")  # type: ignore[valid-type]
    stall_timeout: FloatProperty(name="Timeout (s)", default=30.0, min=1.0, max=600.0,
                                 description="Give up on a runtime that sends nothing for this long")  # type: ignore[valid-type]
    status: StringProperty(default="")  # type: ignore[valid-type]
    model_card: StringProperty(default="")  # type: ignore[valid-type]

    def draw(self, context: Any) -> None:
        layout = self.layout
        assert layout is not None
        col = layout.column()
        col.prop(self, "python_path")
        if not self.python_path:
            col.label(text=f"Default runtime: {runtime.venv_python()}", icon="INFO")
        row = col.row(align=True)
        row.operator("streamingtalker.setup_runtime", icon="CONSOLE")
        row.operator("streamingtalker.test_connection", icon="PLUGIN")
        col.prop(self, "device")
        col.prop(self, "model_path")
        col.prop(self, "threads")
        col.prop(self, "stall_timeout")
        job = SETUP_JOB
        if job is not None and job.status == "running":
            col.progress(factor=job.progress, text=f"{job.title}… {job.last_line[:60]}")
        if self.status:
            for line in self.status.splitlines()[:6]:
                col.label(text=line)
        if self.model_card:
            try:
                card = json.loads(self.model_card)
                box = col.box()
                box.label(text=f"Model: {card.get('name')}  {card.get('fps')} fps  "
                               f"{len(card.get('channels', []))} {card.get('channel_space', 'arkit')} channels")
                box.label(text=f"Look-ahead {card.get('lookahead_ms')} ms, styles: "
                               f"{', '.join(map(str, card.get('styles', [])))}")
            except ValueError:
                pass


def _prefs(context: Any) -> Any:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


class STK_OT_setup_runtime(bpy.types.Operator):
    """Create a Python environment with torch and the core's requirements (runs in the background)"""

    bl_idname = "streamingtalker.setup_runtime"
    bl_label = "Set up runtime"

    def execute(self, context: Any) -> OpResult:
        global SETUP_JOB
        if SETUP_JOB is not None and SETUP_JOB.status == "running":
            self.report({"WARNING"}, "Runtime set-up is already running")
            return {"CANCELLED"}
        p = _prefs(context)
        device = p.device.lower() if p else "cpu"
        target = runtime.venv_dir()
        SETUP_JOB = runtime.SetupJob(runtime.setup_steps(target, device), runtime.user_dir() / "setup.log").start()
        if bpy.app.background:
            SETUP_JOB.wait()
            return _finish_setup(self, p)
        bpy.app.timers.register(_poll_setup, first_interval=0.5)
        self.report({"INFO"}, f"Setting up the runtime in {target} (log: {SETUP_JOB.log_path})")
        return {"FINISHED"}


def _finish_setup(op: Any, p: Any) -> OpResult:
    job = SETUP_JOB
    assert job is not None
    if p is not None:
        p.status = job.message
    if job.status == "ok":
        op.report({"INFO"}, job.message)
        return {"FINISHED"}
    op.report({"ERROR"}, job.message)
    return {"CANCELLED"}


def _poll_setup() -> float | None:
    job = SETUP_JOB
    p = _prefs(bpy.context)
    wm = bpy.context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            area.tag_redraw()
    if job is None:
        return None
    if job.status == "running":
        if p is not None:
            p.status = f"{job.title} ({job.index + 1}/{len(job.steps)}): {job.last_line[:80]}"
        return 0.5
    if p is not None:
        p.status = job.message
    return None


class STK_OT_test_connection(bpy.types.Operator):
    """Start the inference runtime and show the model card it reports"""

    bl_idname = "streamingtalker.test_connection"
    bl_label = "Test connection"

    def execute(self, context: Any) -> OpResult:
        p = _prefs(context)
        s = settings(context)
        t0 = time.monotonic()
        try:
            client = request_server(s).wait_ready(max(30.0, s.stall_timeout))
            client.send("ping")
            client.wait_for({"pong"}, timeout=s.stall_timeout)
        except runtime.BridgeError as exc:
            if p is not None:
                p.status = f"Connection failed: {exc}"
            self.report({"ERROR"}, f"Connection failed: {exc}")
            return {"CANCELLED"}
        card = client.model_card
        text = (f"Connected in {time.monotonic() - t0:.1f} s: model '{card.get('name')}', "
                f"{len(card.get('channels', []))} channels at {card.get('fps')} fps")
        if p is not None:
            p.status = text
            p.model_card = json.dumps(card)
        self.report({"INFO"}, text)
        return {"FINISHED"}


CLASSES = (STK_AddonPreferences, STK_OT_setup_runtime, STK_OT_test_connection)
