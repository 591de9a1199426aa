"""Operators: generate, live, follow playback, stop, export, demo head, mapping.

Interactive runs are modal and timer-driven (Blender stays responsive, the
mesh moves as chunks arrive, Esc cancels and keeps the keys). In background
mode there are no timers or events, so ``execute`` steps the same job to the
end in a loop (see :mod:`.jobs`).
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import bpy
from bpy.props import FloatProperty, StringProperty

from . import audio, jobs, prefs
from ._typing import OpResult
from .core import ARKIT_52, BridgeError

#: The last finished job (scripts, tests and the status line read its figures).
LAST_JOB: Any = None

_USER_ERRORS = (audio.AudioError, jobs.InputError, BridgeError, ValueError)


def optional_module(name: str) -> Any:
    """A sibling module written by another part of the project, or None if absent."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None


def _props(context: Any) -> Any:
    return context.scene.streamingtalker


def _redraw(context: Any) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in ("VIEW_3D", "PROPERTIES", "DOPESHEET_EDITOR", "GRAPH_EDITOR", "TIMELINE"):
            area.tag_redraw()


def _sample_rate() -> int:
    return int(jobs.LAST_CARD.get("sample_rate", 16000))


class _ModalJob(bpy.types.Operator):
    """Shared modal plumbing: a timer steps the job; Esc cancels; status goes to the panel."""

    _timer: Any = None
    job: Any = None

    def _begin_modal(self, context: Any) -> OpResult:
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.02, window=context.window)
        wm.modal_handler_add(self)
        _props(context).running = self.job.kind
        return {"RUNNING_MODAL"}

    def _end_modal(self, context: Any) -> OpResult:
        global LAST_JOB
        context.window_manager.event_timer_remove(self._timer)
        props = _props(context)
        props.running = ""
        props.status = self.job.status_text()
        LAST_JOB = self.job
        _redraw(context)
        state = self.job.driver.state
        if state == "error":
            self.report({"ERROR"}, props.status)
        else:
            self.report({"INFO"}, props.status)
        # FINISHED (not CANCELLED) whenever keys were written, so one undo step covers the run.
        return {"FINISHED"} if self.job.written or state in ("done", "stopped") else {"CANCELLED"}

    def modal(self, context: Any, event: Any) -> OpResult:
        if event.type == "ESC" and event.value == "PRESS":
            self.job.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        active = self.job.step(0.015)
        props = _props(context)
        props.status = self.job.status_text()
        props.progress = getattr(self.job.driver, "progress", 0.0)
        self._after_step(context)
        _redraw(context)
        if not active:
            return self._end_modal(context)
        return {"PASS_THROUGH"}

    def _after_step(self, context: Any) -> None:
        pass


class STK_OT_generate(_ModalJob):
    """Generate facial animation from the chosen audio, writing keys as they arrive (Esc cancels)"""

    bl_idname = "streamingtalker.generate"
    bl_label = "Generate from audio"
    bl_options = {"REGISTER", "UNDO"}

    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="Background mode: give up after this many seconds (0 = none)")  # type: ignore[valid-type]

    def _build(self, context: Any) -> None:
        t_click = time.monotonic()
        jobs.refuse_if_busy()
        props = _props(context)
        scene = context.scene
        pcm, frame_start, path = jobs.resolve_audio(scene, props, _sample_rate())
        obj = props.target
        job = jobs.GenerationJob(scene, obj, pcm, frame_start, jobs.session_options(props),
                                 props.take_mode, prefs.settings(context), t_click=t_click)
        if props.audio_source == "FILE" and props.add_strip:
            jobs.ensure_sound_strip(scene, path, frame_start)
        self.job = jobs.CURRENT = job

    def _fail(self, context: Any, exc: Exception) -> OpResult:
        _props(context).status = f"Error: {exc}"
        self.report({"ERROR"}, str(exc))
        return {"CANCELLED"}

    def execute(self, context: Any) -> OpResult:
        global LAST_JOB
        if not bpy.app.background:
            return self.invoke(context, None)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            return self._fail(context, exc)
        state = self.job.run_sync(self.timeout or None)
        LAST_JOB = self.job
        props = _props(context)
        props.status = self.job.status_text()
        props.progress = self.job.driver.progress
        if state == "error":
            self.report({"ERROR"}, props.status)
        else:
            self.report({"INFO"}, props.status)
        return {"FINISHED"} if self.job.written or state == "done" else {"CANCELLED"}

    def invoke(self, context: Any, event: Any) -> OpResult:
        if bpy.app.background:
            return self.execute(context)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            return self._fail(context, exc)
        self._start_frame = context.scene.frame_current
        return self._begin_modal(context)

    def _after_step(self, context: Any) -> None:
        # Move the playhead along the written keys, so the mesh animates while it generates.
        w = self.job.writer
        if w is not None and w.written and context.scene.frame_current != w.last_frame:
            context.scene.frame_current = w.last_frame


class STK_OT_live(_ModalJob):
    """Drive the mesh live from the microphone (or the audio file played in real time)"""

    bl_idname = "streamingtalker.live"
    bl_label = "Live"
    bl_options = {"REGISTER", "UNDO"}

    max_seconds: FloatProperty(name="Max seconds", default=0.0, min=0.0, options={"SKIP_SAVE"},
                               description="Stop after this long (0 = until Stop/Esc)")  # type: ignore[valid-type]

    def _build(self, context: Any) -> None:
        jobs.refuse_if_busy()
        props = _props(context)
        if props.live_input == "FILE":
            if not props.audio_file:
                raise jobs.InputError("Choose an audio file for live playback input.")
            source = bpy.path.abspath(props.audio_file)
            audio.decode_file(source)  # a clear error now rather than from the runtime
        else:
            source = "microphone"
        self.job = jobs.CURRENT = jobs.LiveJob(context.scene, props.target, source,
                                               jobs.session_options(props), props.live_record,
                                               prefs.settings(context))
        self._t0 = time.monotonic()

    def execute(self, context: Any) -> OpResult:
        global LAST_JOB
        if not bpy.app.background:
            return self.invoke(context, None)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            _props(context).status = f"Error: {exc}"
            return {"CANCELLED"}
        limit = self.max_seconds or 3600.0
        while self.job.step(0.05):
            if time.monotonic() - self._t0 > limit and self.job.driver.state == "running":
                self.job.cancel()
            time.sleep(0.005)
        LAST_JOB = self.job
        _props(context).status = self.job.status_text()
        self.report({"ERROR"} if self.job.driver.state == "error" else {"INFO"}, self.job.status_text())
        return {"FINISHED"}

    def invoke(self, context: Any, event: Any) -> OpResult:
        if bpy.app.background:
            return self.execute(context)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            _props(context).status = f"Error: {exc}"
            return {"CANCELLED"}
        return self._begin_modal(context)

    def _after_step(self, context: Any) -> None:
        if self.max_seconds and time.monotonic() - self._t0 > self.max_seconds:
            self.job.cancel()
        if self.job.writer is not None and self.job.writer.written:
            context.scene.frame_current = self.job.writer.last_frame


class FollowController:
    """Generates just ahead of the playhead while the timeline plays the scene's audio.

    A scrub outside the generated window restarts generation at the playhead.
    Steppable without a UI (the tests move ``frame_current`` themselves).
    """

    kind = "follow"

    def __init__(self, scene: Any, obj: Any, pcm: Any, audio_frame_start: int, options: dict[str, Any],
                 settings: prefs.Settings, ahead: float, sample_rate: int = 16000):
        self.scene, self.obj, self.pcm = scene, obj, pcm
        self.audio_frame_start = audio_frame_start
        self.options, self.settings, self.ahead = options, settings, ahead
        self.sr = sample_rate
        self.fps = jobs.scene_fps(scene)
        self.job: Any = None
        self.restarts = 0
        self.stopped = False
        self._start_at(scene.frame_current)

    def _start_at(self, frame: int) -> None:
        offset_frames = max(0, frame - self.audio_frame_start)
        first = int(round(offset_frames / self.fps * self.sr))
        if first >= len(self.pcm) - self.sr // 10:
            self.job = None
            return
        start_frame = self.audio_frame_start + offset_frames
        scene, fps, ahead = self.scene, self.fps, self.ahead
        self.job = jobs.GenerationJob(scene, self.obj, self.pcm[first:], start_frame, self.options,
                                      "REPLACE", self.settings,
                                      audio_limit=lambda: (scene.frame_current - start_frame) / fps + ahead)

    @property
    def driver(self) -> Any:
        return self.job.driver if self.job else None

    @property
    def active(self) -> bool:
        return not self.stopped

    @property
    def written(self) -> int:
        return self.job.written if self.job else 0

    def step(self, budget: float = 0.02) -> bool:
        if self.stopped:
            return False
        job = self.job
        frame = self.scene.frame_current
        if job is None:
            if frame < self.audio_frame_start + len(self.pcm) / self.sr * self.fps:
                self._start_at(frame)
            return True
        if job.active:
            last = job.writer.last_frame if job.writer and job.writer.written else job.frame_start
            if frame < job.frame_start or frame > last + self.fps * (self.ahead + 1.0):
                job.cancel()  # scrubbed away: restart at the playhead once cancelled
            job.step(budget)
        else:
            last = job.writer.last_frame if job.writer and job.writer.written else job.frame_start
            if job.driver.state == "error":
                self.stopped = True
                return False
            if frame < job.frame_start or (job.driver.state == "cancelled" and frame > last):
                self.restarts += 1
                self._start_at(frame)
        return True

    def cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.job.cancel()
            while self.job.step(0.05):
                time.sleep(0.002)
        self.stopped = True
        if jobs.CURRENT is self:
            jobs.CURRENT = None

    def status_text(self) -> str:
        if self.job is None:
            return "Follow playback: waiting (playhead outside the audio)"
        return f"Follow playback: {self.job.status_text()}"


class STK_OT_follow_playback(_ModalJob):
    """Play the timeline and generate motion just ahead of the playhead from the scene's audio"""

    bl_idname = "streamingtalker.follow_playback"
    bl_label = "Follow playback"

    def invoke(self, context: Any, event: Any) -> OpResult:
        try:
            jobs.refuse_if_busy()
            props = _props(context)
            pcm, frame_start, path = jobs.resolve_audio(context.scene, props, _sample_rate())
            if props.audio_source == "FILE" and props.add_strip:
                jobs.ensure_sound_strip(context.scene, path, frame_start)
            self.job = jobs.CURRENT = FollowController(
                context.scene, props.target, pcm, frame_start, jobs.session_options(props),
                prefs.settings(context), props.follow_ahead, _sample_rate())
        except _USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            _props(context).status = f"Error: {exc}"
            return {"CANCELLED"}
        if not bpy.app.background and not context.screen.is_animation_playing:
            bpy.ops.screen.animation_play()
        return self._begin_modal(context)

    def execute(self, context: Any) -> OpResult:
        if bpy.app.background:
            self.report({"ERROR"}, "Follow playback needs an interactive Blender (timeline playback)")
            return {"CANCELLED"}
        return self.invoke(context, None)


class STK_OT_stop(bpy.types.Operator):
    """Stop the running generation or live session (keys already written are kept)"""

    bl_idname = "streamingtalker.stop"
    bl_label = "Stop"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return jobs.CURRENT is not None

    def execute(self, context: Any) -> OpResult:
        job = jobs.CURRENT
        if job is not None:
            job.cancel()
        return {"FINISHED"}


class STK_OT_refresh_mapping(bpy.types.Operator):
    """Fill the channel → shape key list of the target by matching names, and report unmapped channels"""

    bl_idname = "streamingtalker.refresh_mapping"
    bl_label = "Match by name"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        obj = _props(context).target
        if obj is None or obj.type != "MESH":
            self.report({"ERROR"}, "Choose a target mesh first")
            return {"CANCELLED"}
        channels = list(jobs.LAST_CARD.get("channels") or ARKIT_52)
        b = jobs.fill_mapping(obj, channels)
        self.report({"INFO"} if b.ok else {"WARNING"}, b.summary(len(channels)))
        return {"FINISHED"}


class STK_OT_add_demo_head(bpy.types.Operator):
    """Add the project's demo head (ARKit shape keys) and make it the target"""

    bl_idname = "streamingtalker.add_demo_head"
    bl_label = "Add demo head"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        mod = optional_module("demo_head")
        if mod is None:
            self.report({"ERROR"}, "The demo head module is not part of this build")
            return {"CANCELLED"}
        obj = mod.add_demo_head(context, name="StreamingTalker Head")
        _props(context).target = obj
        self.report({"INFO"}, f"Added '{obj.name}' with {len(obj.data.shape_keys.key_blocks) - 1} shape keys")
        return {"FINISHED"}


class STK_OT_export_fbx(bpy.types.Operator):
    """Export the target mesh with its shape-key animation as FBX (settings that survive a round trip)"""

    bl_idname = "streamingtalker.export_fbx"
    bl_label = "Export FBX"

    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: Any, event: Any) -> OpResult:
        obj = _props(context).target
        if not self.filepath:
            base = bpy.path.abspath("//") or ""
            self.filepath = f"{base}{bpy.path.clean_name(obj.name) if obj else 'face'}.fbx"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: Any) -> OpResult:
        mod = optional_module("fbx_export")
        if mod is None:
            self.report({"ERROR"}, "The FBX export module is not part of this build")
            return {"CANCELLED"}
        obj = _props(context).target
        if obj is None:
            self.report({"ERROR"}, "Choose a target mesh first")
            return {"CANCELLED"}
        problems = mod.check_exportable(obj)
        for text in problems:
            self.report({"WARNING"}, text)
        if not self.filepath:
            self.report({"ERROR"}, "Choose a file name")
            return {"CANCELLED"}
        try:
            info = mod.export_fbx(context, obj, bpy.path.abspath(self.filepath))
        except (RuntimeError, ValueError, OSError) as exc:
            self.report({"ERROR"}, f"FBX export failed: {exc}")
            return {"CANCELLED"}
        _props(context).status = f"Exported {self.filepath}"
        self.report({"INFO"}, f"Exported {self.filepath} ({info})")
        return {"FINISHED"}


CLASSES = (STK_OT_generate, STK_OT_live, STK_OT_follow_playback, STK_OT_stop, STK_OT_refresh_mapping,
           STK_OT_add_demo_head, STK_OT_export_fbx)
