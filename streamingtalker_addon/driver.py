"""One generation session over the bridge, advanced in small non-blocking steps.

Why a plain class: in Blender's UI a modal operator's timer calls
:meth:`StreamingDriver.step`; in background mode (the ``bpy`` module, ``blender
-b``, the tests) timers and modal events never fire, so the same object is
stepped from a loop instead (:meth:`run_sync`). No bpy here: frames go to a
callback the caller supplies, which runs on the caller's (main) thread.

Flow control keeps at most ``max_inflight`` seconds of audio unanswered, well
under a pipe buffer, so a write to a hung server can never block Blender.
Every wait is bounded by ``stall_timeout`` seconds without a message.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Protocol

import numpy as np

from .core import BridgeError, bridge_client

_session_ids = itertools.count(1)

#: States in which the driver still expects something from the server.
ACTIVE = ("launching", "starting", "streaming", "flushing", "cancelling")


class ClientSource(Protocol):
    def poll_ready(self) -> Any: ...  # BridgeClient, or None while it starts; raises BridgeError

    def discard(self) -> None: ...  # the client is broken (hung, crashed): drop it


class StreamingDriver:
    """Streams ``pcm`` through a server session and hands back frames in order."""

    def __init__(self, source: ClientSource, pcm: np.ndarray, options: dict[str, Any],
                 on_frames: Callable[[np.ndarray, int], None], *,
                 chunk_seconds: float = 0.25, max_inflight: float = 0.75,
                 stall_timeout: float = 30.0, launch_timeout: float = 120.0,
                 audio_limit: Callable[[], float] | None = None,
                 on_ready: Callable[[dict[str, Any], Any], None] | None = None):
        self.source = source
        self.pcm = np.ascontiguousarray(pcm, dtype="<f4")
        self.options = {k: v for k, v in options.items() if v is not None}
        self.on_frames = on_frames
        self.chunk_seconds = chunk_seconds
        self.max_inflight = max_inflight
        self.stall_timeout = stall_timeout
        self.launch_timeout = launch_timeout
        self.audio_limit = audio_limit  # seconds of audio that may be sent so far (follow mode)
        self.on_ready = on_ready  # (model card, client) once the server is up; may raise to abort
        self.session = f"stk-{next(_session_ids)}"
        self.client: Any = None
        self.card: dict[str, Any] = {}
        self.sample_rate = 16000
        self.fps = 30.0
        self.state = "launching"
        self.error = ""
        self.error_code = ""
        self.sent_samples = 0
        self.acked_seconds = 0.0
        self.frames_received = 0
        self.frames_reported: int | None = None
        self.t_begin = time.monotonic()
        self.t_first_frames: float | None = None
        self._last_activity = self.t_begin

    # -- public ---------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate

    @property
    def progress(self) -> float:
        """Fraction of the audio turned into frames (0..1)."""
        if self.state == "done":
            return 1.0
        total = self.duration * self.fps
        return min(1.0, self.frames_received / total) if total > 0 else 0.0

    def cancel(self) -> None:
        """Ask the server to drop the session; frames already handed over are kept."""
        if self.state in ("launching",):
            self.state = "cancelled"
            return
        if self.state not in ("starting", "streaming", "flushing"):
            return
        try:
            self.client.send("cancel", session=self.session)
            self.state = "cancelling"
            self._last_activity = time.monotonic()
        except BridgeError as exc:
            self._fail(str(exc), exc.code, broken=True)

    def step(self, budget: float = 0.02) -> bool:
        """Do up to ``budget`` seconds of work; returns True while the session is active."""
        if not self.active:
            return False
        try:
            if self.state == "launching":
                self._step_launch()
            if self.state in ("starting", "streaming", "flushing", "cancelling"):
                self._pump(budget)
            if self.state == "streaming":
                self._send_audio()
            self._check_stall()
        except BridgeError as exc:
            self._fail(str(exc), exc.code, broken=exc.code in ("process_exited", "timeout", "protocol"))
        return self.active

    def run_sync(self, timeout: float | None = None, cancel_after_frames: int | None = None,
                 on_step: Callable[["StreamingDriver"], None] | None = None) -> str:
        """Step until finished (background mode). Returns the final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.step(0.05):
            if on_step:
                on_step(self)
            if cancel_after_frames is not None and self.frames_received >= cancel_after_frames \
                    and self.state in ("streaming", "flushing"):
                self.cancel()
            if deadline is not None and time.monotonic() > deadline:
                self._fail(f"Generation did not finish within {timeout:.0f} s.", "timeout", broken=True)
                break
            if self.client is not None:
                self.client.wait_message(0.05)  # sleep until the server answers: no busy polling
            else:
                time.sleep(0.01)
        return self.state

    # -- internals ------------------------------------------------------
    def _fail(self, message: str, code: str = "error", broken: bool = False) -> None:
        self.state = "error"
        self.error = message
        self.error_code = code
        if broken:
            self.source.discard()

    def _step_launch(self) -> None:
        if not attach_when_ready(self):
            if self.state == "launching":
                self._last_activity = time.monotonic()
            elif self.state == "error":
                self.error_code = "bad_input"  # on_ready refused the target
            return
        self.sample_rate = int(self.card.get("sample_rate", 16000))
        self.client.send("start", session=self.session, **self.options)
        self.state = "starting"
        self._last_activity = time.monotonic()

    def _pump(self, budget: float) -> None:
        t_end = time.monotonic() + budget
        while True:
            msg = self.client.poll(0)
            if msg is None:
                return
            self._last_activity = time.monotonic()
            self._handle(msg)
            if not self.active or time.monotonic() > t_end:
                return

    def _handle(self, msg: Any) -> None:
        kind = msg.type
        sess = msg.get("session")
        if kind == bridge_client.EXIT:
            self.client.raise_for(msg)
        if kind == "error":
            if sess in (None, self.session):
                fatal = bool(msg.get("fatal"))
                self._fail(msg.get("message", "inference error"), msg.get("code", "error"), broken=fatal)
            return
        if sess != self.session:
            return  # leftovers of another session
        if kind == "started" and self.state == "starting":
            self.state = "streaming"
        elif kind == "frames":
            if self.state == "cancelling":
                return
            count, k = int(msg.get("count", 0)), int(msg.get("channels", 0))
            start = int(msg.get("start", -1))
            if start != self.frames_received:
                raise BridgeError(f"Frames arrived out of order (got {start}, expected "
                                  f"{self.frames_received}).", "protocol")
            arr = np.frombuffer(msg.payload, dtype="<f4")
            if arr.size != count * k:
                raise BridgeError("Frame payload size does not match its header.", "protocol")
            if self.t_first_frames is None and count:
                self.t_first_frames = time.monotonic()
            self.on_frames(arr.reshape(count, k), start)
            self.frames_received += count
            self.acked_seconds = max(self.acked_seconds, self.frames_received / self.fps)
        elif kind == "progress":
            self.acked_seconds = max(self.acked_seconds, float(msg.get("audio_seconds", 0.0)))
        elif kind == "done":
            self.frames_reported = msg.get("frames")
            self.state = "done"
        elif kind == "cancelled":
            self.state = "cancelled"

    def _send_audio(self) -> None:
        total = len(self.pcm)
        limit = total
        if self.audio_limit is not None:
            limit = min(total, int(self.audio_limit() * self.sample_rate))
        chunk = max(1, int(self.chunk_seconds * self.sample_rate))
        while self.sent_samples < limit:
            sent_s = self.sent_samples / self.sample_rate
            if sent_s - self.acked_seconds >= self.max_inflight:
                return
            end = min(limit, self.sent_samples + chunk)
            self.client.send("audio", self.pcm[self.sent_samples:end].tobytes(), session=self.session)
            if self.sent_samples == 0:
                self._last_activity = time.monotonic()
            self.sent_samples = end
        if self.sent_samples >= total:
            self.client.send("end", session=self.session)
            self.state = "flushing"

    def _check_stall(self) -> None:
        if not self.active or self.state == "launching":
            return
        waiting = self.state in ("starting", "flushing", "cancelling") or (
            self.sent_samples / self.sample_rate - self.acked_seconds > 1e-6)
        if waiting and time.monotonic() - self._last_activity > self.stall_timeout:
            raise bridge_client.BridgeTimeout(
                f"The inference process stopped answering (nothing for {self.stall_timeout:.0f} s); "
                "it was stopped. Keys written so far are kept.")


class LiveDriver:
    """Live capture in the server (microphone or a file played in real time).

    Frames of session ``live`` go to ``on_frames`` as they arrive; :meth:`stop`
    asks for the tail and waits (bounded) for ``live_stopped``.
    """

    SESSION = "live"

    def __init__(self, source: ClientSource, live_input: str, options: dict[str, Any],
                 on_frames: Callable[[np.ndarray, int], None], *, stall_timeout: float = 30.0,
                 launch_timeout: float = 120.0,
                 on_ready: Callable[[dict[str, Any], Any], None] | None = None):
        self.source = source
        self.live_input = live_input
        self.options = {k: v for k, v in options.items() if v is not None}
        self.on_frames = on_frames
        self.on_ready = on_ready
        self.stall_timeout = stall_timeout
        self.launch_timeout = launch_timeout
        self.client: Any = None
        self.card: dict[str, Any] = {}
        self.fps = 30.0
        self.state = "launching"  # launching, starting, running, stopping, stopped, error
        self.error = ""
        self.description = ""
        self.frames_received = 0
        self.t_begin = time.monotonic()
        self._last_activity = self.t_begin

    @property
    def active(self) -> bool:
        return self.state in ("launching", "starting", "running", "stopping")

    def _fail(self, message: str, broken: bool = False) -> None:
        self.state, self.error = "error", message
        if broken:
            self.source.discard()

    def stop(self) -> None:
        if self.state == "launching":
            self.state = "stopped"
        elif self.state in ("starting", "running"):
            try:
                self.client.send("live_stop")
                self.state = "stopping"
                self._last_activity = time.monotonic()
            except BridgeError as exc:
                self._fail(str(exc), broken=True)

    def step(self, budget: float = 0.02) -> bool:
        if not self.active:
            return False
        try:
            if self.state == "launching":
                if not attach_when_ready(self):
                    return self.active
                self.client.send("live_start", input=self.live_input, **self.options)
                self.state = "starting"
                self._last_activity = time.monotonic()
            t_end = time.monotonic() + budget
            while self.active and (msg := self.client.poll(0)) is not None:
                self._last_activity = time.monotonic()
                self._handle(msg)
                if time.monotonic() > t_end:
                    break
            if self.state in ("starting", "stopping") and \
                    time.monotonic() - self._last_activity > self.stall_timeout:
                raise bridge_client.BridgeTimeout("The inference process stopped answering; it was stopped.")
        except BridgeError as exc:
            self._fail(str(exc), broken=exc.code in ("process_exited", "timeout", "protocol"))
        return self.active

    def _handle(self, msg: Any) -> None:
        if msg.type == bridge_client.EXIT:
            self.client.raise_for(msg)
        if msg.type == "error":
            self._fail(msg.get("message", "live error"), broken=bool(msg.get("fatal")))
            return
        if msg.get("session") not in (None, self.SESSION):
            return
        if msg.type == "live_started":
            self.state = "running"
            self.description = str(msg.get("input", ""))
        elif msg.type == "frames":
            count, k = int(msg.get("count", 0)), int(msg.get("channels", 0))
            arr = np.frombuffer(msg.payload, dtype="<f4")
            if arr.size != count * k:
                raise BridgeError("Frame payload size does not match its header.", "protocol")
            self.on_frames(arr.reshape(count, k), int(msg.get("start", self.frames_received)))
            self.frames_received += count
        elif msg.type == "live_stopped":
            self.state = "stopped"


def attach_when_ready(driver: Any) -> bool:
    """Launch phase both drivers share: take the server once it is up and let
    ``on_ready`` vet its model card (it may refuse the target mesh).

    Returns True when attached; False while still starting or after a refusal
    (the driver is then in state ``error``). A runtime that never starts raises.
    """
    client = driver.source.poll_ready()
    if client is None:
        if time.monotonic() - driver.t_begin > driver.launch_timeout:
            raise bridge_client.BridgeTimeout(
                f"The inference runtime did not start within {driver.launch_timeout:.0f} s.")
        return False
    driver.client, driver.card = client, client.model_card
    driver.fps = float(driver.card.get("fps", 30))
    client.drain()  # stale messages of an earlier session
    if driver.on_ready is not None:
        try:
            driver.on_ready(driver.card, client)
        except (ValueError, RuntimeError) as exc:
            if isinstance(exc, BridgeError):
                raise
            driver._fail(str(exc))
            return False
    return True
