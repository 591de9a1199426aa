"""One session over the bridge, advanced in small non-blocking steps (no bpy).

Why plain classes: in Blender's UI a modal operator's timer calls ``step``; in
background mode (the ``bpy`` module, ``blender -b``, the tests) timers and modal
events never fire, so the same object is stepped from a loop instead
(:meth:`StreamingDriver.run_sync`). Frames go to a callback the caller supplies,
which runs on the caller's (main) thread.

A session goes through these states::

    launching ─► preparing? ─► starting ─► streaming ─► flushing ─► done
                                    (live: running ─► stopping ─► stopped)
    any ─► cancelling ─► cancelled,  any ─► error

*preparing* is for a job that needs an answer from the server before the
session opens (a vertex-space model's basis, to create shape keys): the request
is sent and the state machine moves on when the answer arrives, so the UI never
waits on it. Every wait is bounded by ``stall_timeout`` seconds without a
message, and flow control keeps at most ``max_inflight`` seconds of audio
unanswered, well under a pipe buffer, so a write to a hung server never blocks.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from .core import BridgeClient, BridgeError, BridgeTimeout, Err, Message, Msg, protocol

_session_ids = itertools.count(1)


class ClientSource(Protocol):
    def poll_ready(self) -> BridgeClient | None: ...  # None while it starts; raises BridgeError

    def discard(self) -> None: ...  # the client is broken (hung, crashed): drop it


@dataclass(frozen=True)
class Prepare:
    """A request a job needs answered before its session starts (e.g. ``get_basis`` → ``basis``)."""

    send: str
    answer: str
    handle: Callable[[Message], None]  # may raise ValueError: the job refuses (the message is for the user)


#: What a job's ``on_ready`` gets (the server's model card) and may answer.
OnReady = Callable[[dict[str, Any]], "Prepare | None"]
OnFrames = Callable[[np.ndarray, int], None]


def frames_of(msg: Message) -> np.ndarray:
    """The ``(count, channels)`` float32 array a ``frames`` message carries."""
    count, k = int(msg.get("count", 0)), int(msg.get("channels", 0))
    arr = np.frombuffer(msg.payload, dtype="<f4")
    if arr.size != count * k:
        raise BridgeError("Frame payload size does not match its header.", Err.PROTOCOL)
    return arr.reshape(count, k)


class _BridgeSession:
    """What both drivers share: attaching to the server, the preparing step, failures."""

    session = ""
    #: states in which the driver still expects something from the server
    ACTIVE: frozenset[str] = frozenset()

    def __init__(self, source: ClientSource, options: dict[str, Any], on_frames: OnFrames, *,
                 stall_timeout: float, launch_timeout: float, on_ready: OnReady | None):
        self.source = source
        self.options = {k: v for k, v in options.items() if v is not None}
        self.on_frames = on_frames
        self.on_ready = on_ready  # the model card, once the server is up; may raise ValueError
        self.stall_timeout = stall_timeout
        self.launch_timeout = launch_timeout
        self.client: BridgeClient | None = None
        self.card: dict[str, Any] = {}
        self.fps = 30.0
        self.state = "launching"
        self.error = ""
        self.error_code = ""  # an Err code, for scripts that branch on the kind of failure
        self.frames_received = 0
        #: what the server warned about this session (audio clipped to full scale, ...)
        self.warnings: list[str] = []
        self.t_begin = time.monotonic()
        self._last_activity = self.t_begin
        self._prepare: Prepare | None = None

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def bridge(self) -> BridgeClient:
        assert self.client is not None, "not attached to a server yet"
        return self.client

    def step(self, budget: float = 0.02) -> bool:
        """Do up to ``budget`` seconds of work; returns True while the session is active."""
        if not self.active:
            return False
        try:
            if self.state == "launching":
                self._step_launch()
            if self.active and self.state != "launching":
                self._pump(budget)
                self._after_pump()
                self._check_stall()
        except BridgeError as exc:
            self._fail(str(exc), exc.code, broken=exc.code in Err.BROKEN)
        return self.active

    # -- launch and prepare ----------------------------------------------
    def _step_launch(self) -> None:
        client = self.source.poll_ready()
        if client is None:
            self._last_activity = time.monotonic()
            if time.monotonic() - self.t_begin > self.launch_timeout:
                raise BridgeTimeout(f"The inference runtime did not start within {self.launch_timeout:.0f} s.")
            return
        self.client, self.card = client, client.model_card
        self.fps = float(self.card.get("fps", 30))
        client.drain()  # stale messages of an earlier session
        self._last_activity = time.monotonic()
        try:
            prepare = self.on_ready(self.card) if self.on_ready is not None else None
        except BridgeError:
            raise
        except (ValueError, RuntimeError) as exc:  # the job refuses this model for its target
            self._fail(str(exc), Err.BAD_INPUT)
            return
        if prepare is None:
            self._begin()
            return
        self._prepare = prepare
        client.send(prepare.send)
        self.state = "preparing"

    def _prepared(self, msg: Message) -> None:
        assert self._prepare is not None
        handle, self._prepare = self._prepare.handle, None
        try:
            handle(msg)
        except BridgeError:
            raise
        except (ValueError, RuntimeError) as exc:
            self._fail(str(exc), Err.BAD_INPUT)
            return
        self._begin()

    # -- messages ---------------------------------------------------------
    def _pump(self, budget: float) -> None:
        t_end = time.monotonic() + budget
        while self.active and (msg := self.bridge.poll(0)) is not None:
            self._last_activity = time.monotonic()
            if msg.type == Msg.EXIT:
                self.bridge.raise_for(msg)
            if msg.type == Msg.ERROR:
                if msg.get("session") in (None, self.session):
                    self._fail(msg.get("message", "inference error"), msg.get("code", Err.INTERNAL),
                               broken=bool(msg.get("fatal")))
            elif msg.type == Msg.LOG:
                if msg.get("level") == "warning" and msg.get("session") == self.session:
                    self.warnings.append(str(msg.get("message", "")))
            elif self._prepare is not None and msg.type == self._prepare.answer:
                self._prepared(msg)
            elif msg.get("session") in (None, self.session):  # else: leftovers of another session
                self._handle(msg)
            if time.monotonic() > t_end:
                return

    def _check_stall(self) -> None:
        if self.active and self._waiting() and time.monotonic() - self._last_activity > self.stall_timeout:
            raise BridgeTimeout(
                f"The inference process stopped answering (nothing for {self.stall_timeout:.0f} s); "
                "it was stopped. Keys written so far are kept.")

    def _fail(self, message: str, code: str = Err.INTERNAL, broken: bool = False) -> None:
        self.state = "error"
        self.error = message
        self.error_code = code
        if broken:
            self.source.discard()

    # -- what each driver adds ----------------------------------------------
    def _begin(self) -> None:
        raise NotImplementedError

    def _handle(self, msg: Message) -> None:
        raise NotImplementedError

    def _after_pump(self) -> None:
        pass

    def _waiting(self) -> bool:
        """True while an answer is due (the stall clock runs)."""
        return self.state == "preparing"


class StreamingDriver(_BridgeSession):
    """Streams ``pcm`` through a server session and hands back frames in order."""

    ACTIVE = frozenset({"launching", "preparing", "starting", "streaming", "flushing", "cancelling"})

    def __init__(self, source: ClientSource, pcm: np.ndarray, options: dict[str, Any], on_frames: OnFrames, *,
                 chunk_seconds: float = 0.25, max_inflight: float = 0.75, stall_timeout: float = 30.0,
                 launch_timeout: float = 120.0, audio_limit: Callable[[], float] | None = None,
                 on_ready: OnReady | None = None):
        super().__init__(source, options, on_frames, stall_timeout=stall_timeout,
                         launch_timeout=launch_timeout, on_ready=on_ready)
        self.pcm = np.ascontiguousarray(pcm, dtype="<f4")
        self.chunk_seconds = chunk_seconds
        self.max_inflight = max_inflight
        self.audio_limit = audio_limit  # seconds of audio that may be sent so far (follow mode)
        self.session = f"stk-{next(_session_ids)}"
        self.sample_rate = 16000
        self.sent_samples = 0
        self.acked_seconds = 0.0
        self.frames_reported: int | None = None

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
        if self.state in ("launching", "preparing"):
            self.state = "cancelled"
            return
        if self.state not in ("starting", "streaming", "flushing"):
            return
        try:
            self.bridge.send(Msg.CANCEL, session=self.session)
            self.state = "cancelling"
            self._last_activity = time.monotonic()
        except BridgeError as exc:
            self._fail(str(exc), exc.code, broken=True)

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
                self._fail(f"Generation did not finish within {timeout:.0f} s.", Err.TIMEOUT, broken=True)
                break
            if self.client is not None:
                self.client.wait_message(0.05)  # sleep until the server answers: no busy polling
            else:
                time.sleep(0.01)
        return self.state

    def _begin(self) -> None:
        self.sample_rate = int(self.card.get("sample_rate", 16000))
        self.bridge.send(Msg.START, session=self.session, **self.options)
        self.state = "starting"
        self._last_activity = time.monotonic()

    def _handle(self, msg: Message) -> None:
        kind = msg.type
        if kind == Msg.STARTED and self.state == "starting":
            self.state = "streaming"
        elif kind == Msg.FRAMES:
            if self.state == "cancelling":
                return
            start = int(msg.get("start", -1))
            if start != self.frames_received:
                raise BridgeError(f"Frames arrived out of order (got {start}, expected "
                                  f"{self.frames_received}).", Err.PROTOCOL)
            frames = frames_of(msg)
            self.on_frames(frames, start)
            self.frames_received += len(frames)
            self.acked_seconds = max(self.acked_seconds, self.frames_received / self.fps)
        elif kind == Msg.PROGRESS:
            self.acked_seconds = max(self.acked_seconds, float(msg.get("audio_seconds", 0.0)))
        elif kind == Msg.DONE:
            self.frames_reported = msg.get("frames")
            self.state = "done"
        elif kind == Msg.CANCELLED:
            self.state = "cancelled"

    def _after_pump(self) -> None:
        if self.state == "streaming":
            self._send_audio()

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
            self.bridge.send(Msg.AUDIO, self.pcm[self.sent_samples:end].tobytes(), session=self.session)
            if self.sent_samples == 0:
                self._last_activity = time.monotonic()
            self.sent_samples = end
        if self.sent_samples >= total:
            self.bridge.send(Msg.END, session=self.session)
            self.state = "flushing"

    def _waiting(self) -> bool:
        return self.state in ("preparing", "starting", "flushing", "cancelling") or (
            self.sent_samples / self.sample_rate - self.acked_seconds > 1e-6)


class LiveDriver(_BridgeSession):
    """Live capture in the server (microphone or a file played in real time).

    Frames of the live session go to ``on_frames`` as they arrive; :meth:`stop`
    asks for the tail and waits (bounded) for ``live_stopped``.
    """

    ACTIVE = frozenset({"launching", "preparing", "starting", "running", "stopping"})
    session = protocol.LIVE_SESSION

    def __init__(self, source: ClientSource, live_input: str, options: dict[str, Any], on_frames: OnFrames, *,
                 stall_timeout: float = 30.0, launch_timeout: float = 120.0, on_ready: OnReady | None = None):
        super().__init__(source, options, on_frames, stall_timeout=stall_timeout,
                         launch_timeout=launch_timeout, on_ready=on_ready)
        self.live_input = live_input
        self.description = ""

    def stop(self) -> None:
        if self.state in ("launching", "preparing"):
            self.state = "stopped"
        elif self.state in ("starting", "running"):
            try:
                self.bridge.send(Msg.LIVE_STOP)
                self.state = "stopping"
                self._last_activity = time.monotonic()
            except BridgeError as exc:
                self._fail(str(exc), exc.code, broken=True)

    def _begin(self) -> None:
        self.bridge.send(Msg.LIVE_START, input=self.live_input, **self.options)
        self.state = "starting"
        self._last_activity = time.monotonic()

    def _handle(self, msg: Message) -> None:
        if msg.type == Msg.LIVE_STARTED:
            self.state = "running"
            self.description = str(msg.get("input", ""))
        elif msg.type == Msg.FRAMES:
            frames = frames_of(msg)
            self.on_frames(frames, int(msg.get("start", self.frames_received)))
            self.frames_received += len(frames)
        elif msg.type == Msg.LIVE_STOPPED:
            self.state = "stopped"

    def _waiting(self) -> bool:
        return self.state in ("preparing", "starting", "stopping")


class ConnectionCheck(_BridgeSession):
    """*Test connection*: start (or reuse) the server, then one ``ping`` → ``pong`` round trip."""

    ACTIVE = frozenset({"launching", "pinging"})

    def __init__(self, source: ClientSource, *, stall_timeout: float = 30.0, launch_timeout: float = 120.0):
        super().__init__(source, {}, lambda frames, start: None, stall_timeout=stall_timeout,
                         launch_timeout=launch_timeout, on_ready=None)

    def _begin(self) -> None:
        self.bridge.send(Msg.PING)
        self.state = "pinging"

    def _handle(self, msg: Message) -> None:
        if msg.type == Msg.PONG:
            self.state = "done"

    def _waiting(self) -> bool:
        return self.state == "pinging"
