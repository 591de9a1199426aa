"""Operators: generate, live, follow playback, stop, export, demo head, mapping.

Interactive runs are modal and timer-driven (Blender stays responsive, the
mesh moves as chunks arrive, Esc cancels and keeps the keys). In background
mode there are no timers or events, so ``execute`` steps the same job to the
end in a loop (see :mod:`..jobs`).

Stop never waits on the server: a job that ends for the user before the server
confirms (follow playback) hands its session to the add-on state, and
:func:`_settle_stopped`, a ``bpy.app.timers`` callback, steps it to its end.
"""

from __future__ import annotations

import time
from typing import Any

import bpy
from bpy.props import FloatProperty, StringProperty

from .. import state
from .._typing import OpResult
from ..blender import audio, fbx_export
from ..client.core import ARKIT_52, BridgeError
from ..demo_head import blender as demo_head
from ..jobs import inputs
from ..jobs.follow import FollowController
from ..jobs.generation import GenerationJob
from ..jobs.live import LiveJob
from ..logic.audio_checks import AudioError
from .prefs import runtime_settings
from .props import audio_choice, session_options, take_options
from .reporting import fail, outcome
from .runtime_ops import redraw_all

_USER_ERRORS = (AudioError, inputs.InputError, BridgeError, ValueError)


def _props(context: Any) -> Any:
    return context.scene.streamingtalker


def _redraw(context: Any) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in ("VIEW_3D", "PROPERTIES", "DOPESHEET_EDITOR", "GRAPH_EDITOR", "TIMELINE"):
            area.tag_redraw()


def _settle_stopped() -> float | None:
    """Timer: step the sessions Stop handed off until the server confirms, or their stall timeout
    kills a hung server; each call does at most a few milliseconds of work."""
    try:
        st = state.get()
    except RuntimeError:  # unregistered meanwhile
        return None
    if st.settle(0.01):
        return 0.05
    redraw_all()
    return None


def _settle_later(st: state.AddonState) -> None:
    """Have the timer step the stopped sessions (in background mode the next run waits for them instead)."""
    if st.stopping and not bpy.app.timers.is_registered(_settle_stopped):
        bpy.app.timers.register(_settle_stopped, first_interval=0.02, persistent=True)


def _sample_rate() -> int:
    return int(state.get().card.get("sample_rate", 16000))


class _JobOperator(bpy.types.Operator):
    """Shared plumbing: build a job, then step it by a timer (UI) or in a loop (background)."""

    _timer: Any = None
    job: Any = None
    warning = ""  # kept on the status line when the job ends (reporting.outcome)

    def _build(self, context: Any) -> None:
        raise NotImplementedError

    def _run_sync(self, context: Any) -> None:
        raise NotImplementedError

    def execute(self, context: Any) -> OpResult:
        if not bpy.app.background:
            return self.invoke(context, None)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            return fail(self, exc, _props(context))
        self._run_sync(context)
        state.get().last_job = self.job
        _props(context).progress = getattr(self.job.driver, "progress", 0.0)
        return outcome(self, _props(context), self.job)

    def invoke(self, context: Any, event: Any) -> OpResult:
        if bpy.app.background:
            return self.execute(context)
        try:
            self._build(context)
        except _USER_ERRORS as exc:
            return fail(self, exc, _props(context))
        return self._begin_modal(context)

    def _begin_modal(self, context: Any) -> OpResult:
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.02, window=context.window)
        wm.modal_handler_add(self)
        _props(context).running = self.job.kind
        return {"RUNNING_MODAL"}

    def _end_modal(self, context: Any) -> OpResult:
        context.window_manager.event_timer_remove(self._timer)
        props = _props(context)
        props.running = ""
        st = state.get()
        st.last_job = self.job
        _settle_later(st)
        result = outcome(self, props, self.job)
        _redraw(context)
        return result

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

    def _sound_strip(self, scene: Any, path: str, frame_start: int) -> None:
        """Add the audio as a sound strip, or warn (never fail) where this Blender cannot."""
        self.warning = inputs.ensure_sound_strip(scene, path, frame_start)
        if self.warning:
            self.report({"WARNING"}, self.warning)

    @staticmethod
    def _idle_state(context: Any) -> tuple[Any, Any]:
        """(add-on state, panel settings), once sure no other job runs."""
        st = state.get()
        if bpy.app.background:
            st.wait_settled()  # no timers here: the last stopped session ends first (bounded)
        inputs.refuse_if_busy(st)
        return st, _props(context)


class STK_OT_generate(_JobOperator):
    """Generate facial animation from the chosen audio, writing keys as they arrive (Esc cancels)"""

    bl_idname = "streamingtalker.generate"
    bl_label = "Generate from audio"
    bl_options = {"REGISTER", "UNDO"}

    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE"},
                           description="Background mode: give up after this many seconds (0 = none)")  # type: ignore[valid-type]

    def _build(self, context: Any) -> None:
        t_click = time.monotonic()
        st, props = self._idle_state(context)
        scene = context.scene
        pcm, frame_start, path = inputs.resolve_audio(scene, audio_choice(props), _sample_rate())
        job = GenerationJob(st, scene, props.target, pcm, frame_start, session_options(props), props.take_mode,
                            runtime_settings(context), t_click=t_click, take=take_options(props, path))
        if props.audio_source == "FILE" and props.add_strip:
            self._sound_strip(scene, path, frame_start)
        self.job = st.job = job

    def _run_sync(self, context: Any) -> None:
        self.job.run_sync(self.timeout or None)

    def _after_step(self, context: Any) -> None:
        # Move the playhead along the written keys, so the mesh animates while it generates.
        w = self.job.writer
        if w is not None and w.written and context.scene.frame_current != w.last_frame:
            context.scene.frame_current = w.last_frame


class STK_OT_live(_JobOperator):
    """Drive the mesh live from the microphone (or the audio file played in real time)"""

    bl_idname = "streamingtalker.live"
    bl_label = "Live"
    bl_options = {"REGISTER", "UNDO"}

    max_seconds: FloatProperty(name="Max seconds", default=0.0, min=0.0, options={"SKIP_SAVE"},
                               description="Stop after this long (0 = until Stop/Esc)")  # type: ignore[valid-type]

    def _build(self, context: Any) -> None:
        st, props = self._idle_state(context)
        if props.live_input == "FILE":
            if not props.audio_file:
                raise inputs.InputError("Choose an audio file for live playback input.")
            source = bpy.path.abspath(props.audio_file)
            audio.decode_file(source)  # a clear error now rather than from the runtime
        else:
            source = "microphone"
        self.job = st.job = LiveJob(st, context.scene, props.target, source, session_options(props),
                                    props.live_record, runtime_settings(context))
        self._t0 = time.monotonic()

    def _run_sync(self, context: Any) -> None:
        limit = self.max_seconds or 3600.0
        while self.job.step(0.05):
            if time.monotonic() - self._t0 > limit and self.job.driver.state == "running":
                self.job.cancel()
            time.sleep(0.005)

    def _after_step(self, context: Any) -> None:
        if self.max_seconds and time.monotonic() - self._t0 > self.max_seconds:
            self.job.cancel()
        if self.job.writer is not None and self.job.writer.written:
            context.scene.frame_current = self.job.writer.last_frame


class STK_OT_follow_playback(_JobOperator):
    """Play the timeline and generate motion just ahead of the playhead from the scene's audio"""

    bl_idname = "streamingtalker.follow_playback"
    bl_label = "Follow playback"
    bl_options = {"REGISTER", "UNDO"}

    def _build(self, context: Any) -> None:
        st, props = self._idle_state(context)
        pcm, frame_start, path = inputs.resolve_audio(context.scene, audio_choice(props), _sample_rate())
        if props.audio_source == "FILE" and props.add_strip:
            self._sound_strip(context.scene, path, frame_start)
        self.job = st.job = FollowController(st, context.scene, props.target, pcm, frame_start,
                                             session_options(props), runtime_settings(context),
                                             props.follow_ahead, _sample_rate())

    def invoke(self, context: Any, event: Any) -> OpResult:
        result = super().invoke(context, event)
        if result == {"RUNNING_MODAL"} and not context.screen.is_animation_playing:
            bpy.ops.screen.animation_play()
        return result

    def execute(self, context: Any) -> OpResult:
        if bpy.app.background:
            return fail(self, "Follow playback needs an interactive Blender (timeline playback)")
        return self.invoke(context, None)


class STK_OT_stop(bpy.types.Operator):
    """Stop the running generation or live session (keys already written are kept)"""

    bl_idname = "streamingtalker.stop"
    bl_label = "Stop"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return state.get().job is not None

    def execute(self, context: Any) -> OpResult:
        st = state.get()
        if st.job is not None:
            st.job.cancel()  # returns at once; what still waits for the server is stepped by a timer
        _settle_later(st)
        return {"FINISHED"}


class STK_OT_add_demo_head(bpy.types.Operator):
    """Add the project's demo head (ARKit shape keys) and make it the target"""

    bl_idname = "streamingtalker.add_demo_head"
    bl_label = "Add demo head"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        obj = demo_head.add_demo_head(context, name="StreamingTalker Head")
        props = _props(context)
        props.target = obj
        channels = list(state.get().card.get("channels") or ARKIT_52)
        props.status = (f"Added '{obj.name}' (ICT FaceKit, MIT): {len(obj.data.shape_keys.key_blocks) - 1} "
                        f"shape keys; {inputs.describe_binding(obj, channels)}")
        self.report({"INFO"}, props.status)
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
        obj = _props(context).target
        if obj is None:
            return fail(self, "Choose a target mesh first")
        for text in fbx_export.check_exportable(obj):
            self.report({"WARNING"}, text)
        if not self.filepath:
            return fail(self, "Choose a file name")
        try:
            info = fbx_export.export_fbx(context, obj, bpy.path.abspath(self.filepath))
        except (RuntimeError, ValueError, OSError) as exc:
            return fail(self, f"FBX export failed: {exc}")
        _props(context).status = f"Exported {self.filepath}"
        self.report({"INFO"}, f"Exported {self.filepath} ({info})")
        return {"FINISHED"}


CLASSES = (STK_OT_generate, STK_OT_live, STK_OT_follow_playback, STK_OT_stop, STK_OT_add_demo_head,
           STK_OT_export_fbx)
