"""Generation, live and follow-playback jobs: the bpy side of a streaming session.

A job owns a driver (no bpy) and the keyframe writer (bpy) and is stepped on
Blender's main thread: by a modal operator's timer in the UI, or in a plain
loop in background mode. ``CURRENT`` is the one job running, so *Stop* can
reach it and two jobs never fight over the server.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from . import audio, binding, keyframes, motion, prefs, runtime
from .core import ARKIT_52, BridgeError, model_card
from .driver import LiveDriver, StreamingDriver

#: The job currently running (None when idle).
CURRENT: Any = None
#: Model card of the last server that answered (channel names for pre-checks).
LAST_CARD: dict[str, Any] = {}


class InputError(ValueError):
    """Bad user input (audio, mesh, settings); the message is for the user."""


def scene_fps(scene: Any) -> float:
    return scene.render.fps / scene.render.fps_base


def session_options(props: Any) -> dict[str, Any]:
    """Options for a session; sampling settings only when the user overrides the model card's."""
    opts = {"seed": props.seed, "style": props.style, "intensity": props.intensity,
            "smoothing": props.smoothing}
    if not props.use_model_defaults:
        opts.update(steps=props.steps, guidance=props.guidance, temperature=props.temperature)
    return opts


# -- inputs --------------------------------------------------------------------
def _strips(scene: Any) -> Any:
    sed = scene.sequence_editor
    if sed is None:
        return []
    return sed.strips_all if hasattr(sed, "strips_all") else sed.sequences_all


def sound_path(sound: Any) -> str:
    """A readable file for a sound datablock (packed sounds are written to a temp file)."""
    if sound.packed_file is not None:
        suffix = Path(sound.filepath).suffix or ".wav"
        fd, tmp = tempfile.mkstemp(prefix="stk_", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sound.packed_file.data)
        return tmp
    return bpy.path.abspath(sound.filepath, library=sound.library)


def resolve_audio(scene: Any, props: Any, sample_rate: int = 16000) -> tuple[np.ndarray, int, str]:
    """(pcm, start frame, path) for the panel's audio source; raises AudioError/InputError."""
    fps = scene_fps(scene)
    if props.audio_source == "STRIP":
        strip = next((s for s in _strips(scene) if s.name == props.strip_name), None)
        if strip is None:
            raise InputError(f"Sound strip '{props.strip_name}' is not in the scene's sequencer."
                             if props.strip_name else "Choose a sound strip.")
        if strip.type != "SOUND" or strip.sound is None:
            raise InputError(f"Strip '{strip.name}' is not a sound strip.")
        path = sound_path(strip.sound)
        offset = (strip.frame_final_start - strip.frame_start) / fps + float(getattr(strip, "sound_offset", 0.0))
        pcm = audio.decode_file(path, sample_rate, start_s=offset,
                                duration_s=strip.frame_final_duration / fps)
        return pcm, int(strip.frame_final_start), path
    if not props.audio_file:
        raise InputError("Choose an audio file.")
    path = bpy.path.abspath(props.audio_file)
    return audio.decode_file(path, sample_rate), int(props.frame_start), path


def ensure_sound_strip(scene: Any, path: str, frame_start: int) -> Any:
    """Put the audio file in the sequencer at ``frame_start`` (once) so playback stays in sync."""
    sed = scene.sequence_editor or scene.sequence_editor_create()
    target = os.path.normcase(os.path.abspath(path))
    for s in _strips(scene):
        if s.type == "SOUND" and s.get("streamingtalker") and s.sound is not None and \
                os.path.normcase(os.path.abspath(bpy.path.abspath(s.sound.filepath))) == target:
            s.frame_start = frame_start
            return s
    coll = sed.strips if hasattr(sed, "strips") else sed.sequences
    channel = 1 + max((s.channel for s in _strips(scene)), default=0)
    strip = coll.new_sound(Path(path).stem, path, channel, frame_start)
    strip["streamingtalker"] = True
    scene.sync_mode = "AUDIO_SYNC"
    return strip


def resolve_binding(obj: Any, channels: list[str], channel_space: str = "arkit") -> binding.Binding:
    if obj is None:
        raise InputError("Choose a target mesh (or click 'Add demo head').")
    if obj.type != "MESH":
        raise InputError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh.")
    key = obj.data.shape_keys
    names = [kb.name for kb in key.key_blocks if kb != key.reference_key] if key else []
    settings = obj.streamingtalker
    if settings.use_mapping and len(settings.mapping):
        rows = [(r.channel, r.shape_key, r.enabled) for r in settings.mapping]
        b = binding.explicit_bind(channels, rows, names)
    else:
        b = binding.auto_bind(channels, names)
    if not b.ok:
        raise InputError(binding.refusal_message(obj.name, len(names), channel_space, len(obj.data.vertices)))
    return b


def fill_mapping(obj: Any, channels: list[str]) -> binding.Binding:
    """Fill the object's editable mapping list from name matching (unmatched rows left empty)."""
    key = obj.data.shape_keys
    names = [kb.name for kb in key.key_blocks if kb != key.reference_key] if key else []
    b = binding.auto_bind(channels, names)
    matched = {ch: k for _, ch, k in b.pairs}
    rows = obj.streamingtalker.mapping
    rows.clear()
    for ch in channels:
        row = rows.add()
        row.channel = ch
        row.shape_key = matched.get(ch, "")
        row.enabled = ch in matched
    return b


def create_basis_keys(obj: Any, client: Any, card: dict[str, Any], timeout: float) -> None:
    """Vertex-space model on a mesh of its topology: make one shape key per basis component."""
    client.send("get_basis")
    msg = client.wait_for({"basis"}, timeout=timeout)
    k, v = int(msg.get("components")), int(msg.get("vertices"))
    if len(obj.data.vertices) != v:
        raise InputError(binding.refusal_message(obj.name, 0, "vertex", len(obj.data.vertices), v))
    data = np.frombuffer(msg.payload, dtype="<f4")
    basis = data[: k * v * 3].reshape(k, v, 3)
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
    rest = np.empty(v * 3, np.float32)
    obj.data.vertices.foreach_get("co", rest)
    for name, comp in zip(card["channels"], basis):
        kb = obj.data.shape_keys.key_blocks.get(name) or obj.shape_key_add(name=name, from_mix=False)
        kb.slider_min, kb.slider_max = -10.0, 10.0
        kb.value = 0.0  # new keys may start at 1.0 in bpy 5.0: rest until keyed
        kb.data.foreach_set("co", rest + comp.ravel())


def expected_card(settings: prefs.Settings) -> dict[str, Any]:
    """The configured model's card, read from its file header (no server needed).

    Lets a job refuse a bad mesh before anything starts, for ARKit and
    vertex-space models alike; falls back to the last card a server sent.
    """
    try:
        model = runtime.resolve_model(bpy.path.abspath(settings.model_path) if settings.model_path else "")
        return dict(model_card.read_card_header(model))
    except (BridgeError, ValueError, OSError):
        return LAST_CARD or {"channels": list(ARKIT_52), "channel_space": "arkit"}


# -- jobs ----------------------------------------------------------------------
class _DriverJob:
    """What generation and live jobs share: stepping their driver and leaving ``CURRENT``."""

    driver: Any

    @property
    def active(self) -> bool:
        return bool(self.driver.active)

    def step(self, budget: float = 0.02) -> bool:
        active = bool(self.driver.step(budget))
        if not active:
            self.finish()
        return active

    def finish(self) -> int:
        raise NotImplementedError

    def _release(self) -> None:
        global CURRENT
        if CURRENT is self:
            CURRENT = None


class GenerationJob(_DriverJob):
    """Audio → keyframes on ``obj``, one chunk at a time."""

    kind = "generate"

    def __init__(self, scene: Any, obj: Any, pcm: np.ndarray, frame_start: int, options: dict[str, Any],
                 take_mode: str = "REPLACE", settings: prefs.Settings | None = None,
                 audio_limit: Any = None, t_click: float | None = None):
        self.t_click = t_click if t_click is not None else time.monotonic()
        self.scene, self.obj = scene, obj
        self.frame_start = frame_start
        self.take_mode = take_mode
        self.fps = scene_fps(scene)
        self.settings = settings or prefs.settings()
        card = expected_card(self.settings)
        if card.get("channel_space", "arkit") != "vertex":
            resolve_binding(obj, list(card["channels"]))  # refuse a bad mesh before starting anything
        elif obj is None or obj.type != "MESH":
            raise InputError("Choose a target mesh.")
        self.writer: keyframes.TakeWriter | None = None
        self.resampler: motion.StreamResampler | None = None
        self.binding: binding.Binding | None = None
        self.t_first_keys: float | None = None
        self.latest: np.ndarray | None = None
        server = prefs.request_server(self.settings)
        self.driver = StreamingDriver(server, pcm, options, self._on_frames,
                                      stall_timeout=self.settings.stall_timeout,
                                      audio_limit=audio_limit, on_ready=self._on_ready)

    def _on_ready(self, card: dict[str, Any], client: Any) -> None:
        LAST_CARD.clear()
        LAST_CARD.update(card)
        channels = list(card.get("channels", []))
        space = card.get("channel_space", "arkit")
        try:
            self.binding = resolve_binding(self.obj, channels, space)
        except InputError:
            if space != "vertex":
                raise
            create_basis_keys(self.obj, client, card, self.settings.stall_timeout)
            self.binding = resolve_binding(self.obj, channels, space)
        model_fps = float(card.get("fps", 30))
        expected = motion.scene_frame_count(int(self.driver.duration * model_fps) + 1, model_fps, self.fps)
        self.writer = keyframes.TakeWriter(self.obj, self.binding.pairs, self.frame_start, self.take_mode,
                                           take_name=f"{self.obj.name}_StreamingTalker",
                                           expected_frames=expected)
        self.resampler = motion.StreamResampler(model_fps, self.fps, len(channels))

    def _on_frames(self, frames: np.ndarray, start: int) -> None:
        assert self.writer is not None and self.resampler is not None
        out = self.resampler.push(frames)
        if len(out):
            self.writer.append(out)
            self.latest = out[-1]
            if self.t_first_keys is None:
                self.t_first_keys = time.monotonic()

    def cancel(self) -> None:
        self.driver.cancel()

    def finish(self) -> int:
        self._release()
        if self.writer is None:
            return 0
        n = self.writer.finish()
        if n and self.scene.frame_end < self.writer.last_frame:
            self.scene.frame_end = self.writer.last_frame
        return n

    @property
    def written(self) -> int:
        return self.writer.written if self.writer else 0

    @property
    def first_motion_seconds(self) -> float | None:
        return None if self.t_first_keys is None else self.t_first_keys - self.t_click

    def status_text(self) -> str:
        d = self.driver
        if d.state == "launching":
            return "Starting the inference runtime…"
        if d.state == "error":
            return f"Error: {d.error}" + (f" ({self.written} frames kept)" if self.written else "")
        if d.state == "cancelled":
            return f"Cancelled: {self.written} frames kept"
        if d.state == "done":
            return f"Done: {self.written} frames keyed from {self.frame_start}"
        return f"Generating… {self.written} frames ({d.progress * 100:.0f}%)"

    def run_sync(self, timeout: float | None = None, **kw: Any) -> str:
        """Background mode: step to the end (timers do not run without a UI)."""
        state = self.driver.run_sync(timeout, **kw)
        self.finish()
        return state


class LiveJob(_DriverJob):
    """Live input → shape-key values now, optionally recorded as keys from the current frame."""

    kind = "live"

    def __init__(self, scene: Any, obj: Any, live_input: str, options: dict[str, Any], record: bool,
                 settings: prefs.Settings | None = None):
        self.scene, self.obj = scene, obj
        self.record = record
        self.settings = settings or prefs.settings()
        self.fps = scene_fps(scene)
        self.frame_start = scene.frame_current
        card = expected_card(self.settings)
        if card.get("channel_space", "arkit") != "vertex":
            resolve_binding(obj, list(card["channels"]))
        self.binding: binding.Binding | None = None
        self.writer: keyframes.TakeWriter | None = None
        self.resampler: motion.StreamResampler | None = None
        self.frames = 0
        self.latest: np.ndarray | None = None
        server = prefs.request_server(self.settings)
        self.driver = LiveDriver(server, live_input, options, self._on_frames,
                                 stall_timeout=self.settings.stall_timeout, on_ready=self._on_ready)

    def _on_ready(self, card: dict[str, Any], client: Any) -> None:
        LAST_CARD.clear()
        LAST_CARD.update(card)
        channels = list(card.get("channels", []))
        self.binding = resolve_binding(self.obj, channels, card.get("channel_space", "arkit"))
        if self.record:
            self.writer = keyframes.TakeWriter(self.obj, self.binding.pairs, self.frame_start, "REPLACE",
                                               take_name=f"{self.obj.name}_StreamingTalker_live")
            self.resampler = motion.StreamResampler(float(card.get("fps", 30)), self.fps, len(channels))

    def _on_frames(self, frames: np.ndarray, start: int) -> None:
        assert self.binding is not None
        self.latest = frames[-1]
        self.frames += len(frames)
        if self.writer is not None and self.resampler is not None:
            self.writer.append(self.resampler.push(frames))
        else:
            blocks = self.obj.data.shape_keys.key_blocks
            for col, _, name in self.binding.pairs:
                blocks[name].value = float(frames[-1, col])

    def cancel(self) -> None:
        self.driver.stop()

    def finish(self) -> int:
        self._release()
        return self.writer.finish() if self.writer else 0

    @property
    def written(self) -> int:
        return self.writer.written if self.writer else 0

    def status_text(self) -> str:
        d = self.driver
        if d.state == "error":
            return f"Live error: {d.error}"
        if d.state == "stopped":
            return f"Live stopped ({d.frames_received} frames" + (f", {self.written} recorded)" if self.record else ")")
        if d.state == "launching":
            return "Starting the inference runtime…"
        return f"Live: {d.description or d.live_input} — {d.frames_received} frames" + (
            f", recording from frame {self.frame_start}" if self.record else "")


def run_until_done(job: Any, timeout: float, **kw: Any) -> str:
    """Step a job to completion on this thread (background mode, scripts, tests)."""
    if hasattr(job, "run_sync"):
        return job.run_sync(timeout, **kw)
    deadline = time.monotonic() + timeout
    while job.step(0.05):
        if time.monotonic() > deadline:
            job.cancel()
            deadline += job.settings.stall_timeout
        time.sleep(0.002)
    return job.driver.state


def refuse_if_busy() -> None:
    if CURRENT is not None and CURRENT.active:
        raise InputError(f"A {CURRENT.kind} job is running; press Stop first.")


__all__ = ["GenerationJob", "LiveJob", "InputError", "BridgeError", "resolve_audio", "ensure_sound_strip"]
