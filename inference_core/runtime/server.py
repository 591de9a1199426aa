"""The bridge server: ``python -m inference_core serve``.

Speaks :mod:`inference_core.shared.protocol` on stdin/stdout (no network port).
A reader thread parses stdin into an event queue; live capture threads add
audio events to the same queue; the main thread handles events one at a
time, so there is exactly one writer of motion frames. Every failure becomes
an ``error`` message; only a lost stream framing (or ``shutdown``) ends the
process.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO

import numpy as np

from .. import PROTOCOL_VERSION, __version__
from ..shared import protocol
from ..shared.protocol import LIVE_SESSION, Err, Message, Msg

log = logging.getLogger("inference_core.runtime.server")

#: Audio is processed in slices of this length so that cancel and progress
#: messages are handled promptly even when a client sends a minute at once.
SLICE_SECONDS = 0.5


# Kinds of the server's own event queue (not protocol messages).
_MSG, _BAD, _EOF, _LIVE_AUDIO, _LIVE_ERROR = "msg", "bad", "eof", "live_audio", "live_error"


class _Cancelled(Exception):
    pass


class _ClientGone(Exception):
    """The client closed its end of the pipe: nobody is left to answer."""


class _Stop(BaseException):
    """SIGINT or SIGTERM: leave at once (a BaseException, so no ``except Exception`` holds it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _BadField(ValueError):
    """A field of a client message has the wrong type or size (answered with bad_request)."""


def _session_field(msg: Message, default: str | None) -> str | None:
    """The message's ``session`` (``default`` when absent); _BadField unless a short string."""
    if "session" not in msg.fields:
        return default
    sid = msg.fields["session"]
    if not isinstance(sid, str) or not 0 < len(sid) <= protocol.MAX_SESSION_CHARS:
        raise _BadField(f"session must be a string of 1 to {protocol.MAX_SESSION_CHARS} characters "
                        f"(got {protocol.clip_text(sid, 40)})")
    return sid


class BridgeServer:
    def __init__(self, bundle: Any, out: BinaryIO, inp: BinaryIO):
        self.bundle = bundle
        self.out = out
        self.inp = inp
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.session: Any = None
        self.session_id: str | None = None
        self._cancel_ids: set[str] = set()
        self._cancel_lock = threading.Lock()
        self._live: Any = None
        self._write_lock = threading.Lock()
        self._room = threading.Condition()
        self._queued = 0  # bytes of messages read but not yet handled
        self._level_warned = False

    # -- output --------------------------------------------------------
    def send(self, msg_type: str, payload: bytes = b"", **fields: Any) -> None:
        """Write one message. Never raises for what it was given: a reply that cannot be encoded
        goes out as an ``internal_error`` instead; a closed pipe raises _ClientGone."""
        try:
            data = protocol.encode(msg_type, payload, **fields)
        except (protocol.ProtocolError, TypeError, ValueError) as exc:
            log.error("reply %r could not be encoded: %s", msg_type, exc)
            sid = fields.get("session")
            extra: dict[str, Any] = {"session": sid} if (
                isinstance(sid, str) and len(sid) <= protocol.MAX_SESSION_CHARS) else {}
            data = protocol.encode(Msg.ERROR, code=Err.INTERNAL, fatal=False,
                                   message=f"the server could not encode its {protocol.clip_text(msg_type)!r} "
                                           f"reply: {protocol.clip_text(str(exc))}", **extra)
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            with self._write_lock:
                self.out.write(data)
                self.out.flush()
        except (BrokenPipeError, ConnectionError, ValueError) as exc:  # ValueError: stream closed
            raise _ClientGone(str(exc)) from None

    def error(self, code: str, message: str, fatal: bool = False, **extra: Any) -> None:
        """An ``error`` reply; what it echoes of the client's input is clipped (one line, bounded)."""
        message = protocol.clip_text(message, 4 * protocol.MAX_ECHO_CHARS)
        log.warning("error %s: %s", code, message)
        for key, value in list(extra.items()):
            if isinstance(value, str):
                extra[key] = protocol.clip_text(value, 8000 if key == "detail" else protocol.MAX_SESSION_CHARS)
        self.send(Msg.ERROR, code=code, message=message, fatal=fatal, **extra)

    # -- input ---------------------------------------------------------
    def _reader(self) -> None:
        while True:
            self._wait_for_room()
            try:
                msg = protocol.read_message(self.inp)
            except protocol.ProtocolError as exc:
                self.events.put((_BAD, exc))
                if exc.recoverable:
                    continue
                return
            except (OSError, ValueError):
                msg = None
            if msg is None:
                self.events.put((_EOF, None))
                return
            if msg.type == Msg.CANCEL:
                sid = msg.fields.get("session", self.session_id)
                if isinstance(sid, str) and len(sid) <= protocol.MAX_SESSION_CHARS:
                    with self._cancel_lock:
                        self._cancel_ids.add(sid)
            with self._room:
                self._queued += _size(msg)
            self.events.put((_MSG, msg))

    def _wait_for_room(self) -> None:
        """Backpressure: read no further while MAX_QUEUED_BYTES of messages wait to be handled."""
        with self._room:
            while self._queued >= protocol.MAX_QUEUED_BYTES:
                self._room.wait()

    def _handled(self, msg: Message) -> None:
        with self._room:
            self._queued -= _size(msg)
            self._room.notify()

    def _cancel_requested(self, session_id: str | None) -> bool:
        with self._cancel_lock:
            return session_id in self._cancel_ids

    # -- main loop -----------------------------------------------------
    def serve(self) -> int:
        """Answer messages until ``shutdown``, the end of input, a lost framing or a signal."""
        try:
            return self._serve()
        except _ClientGone:
            log.info("the client closed the pipe; exiting")
            self._stop_live_quietly()
            return 0
        except _Stop as stop:
            log.info("stopped by signal %s", signal.Signals(stop.signum).name)
            self._stop_live_quietly()
            return 0

    def _serve(self) -> int:
        card = dict(self.bundle.card)
        runtime = {"backend": self.bundle.backend.name, "device": self.bundle.backend.device,
                   "head_precision": self.bundle.backend.head_precision,
                   "python": sys.executable, "python_version": sys.version.split()[0]}
        try:
            hello = protocol.encode(Msg.HELLO, protocol=PROTOCOL_VERSION, core_version=__version__, model=card,
                                    pid=os.getpid(), runtime=runtime)
        except (protocol.ProtocolError, TypeError, ValueError) as exc:
            self.error(Err.MODEL, f"the model card cannot be sent to the client: {exc}", fatal=True)
            return 3
        self._write(hello)
        threading.Thread(target=self._reader, name="stk-stdin", daemon=True).start()
        while True:
            kind, item = self.events.get()
            if kind == _EOF:
                self._stop_live(send=False)
                return 0
            if kind == _BAD:
                self.error(item.code, f"malformed message: {item}", fatal=not item.recoverable)
                if not item.recoverable:
                    self._stop_live(send=False)
                    return 2
                continue
            if kind == _LIVE_AUDIO:
                self._live_audio(item)
                continue
            if kind == _LIVE_ERROR:
                self.error(Err.DEVICE, item)
                self._stop_live(send=True)
                continue
            try:
                if self._dispatch(item):
                    return 0
            finally:
                self._handled(item)

    def _dispatch(self, msg: Message) -> bool:
        """Handle one client message; True after ``shutdown``."""
        if msg.type == Msg.SHUTDOWN:
            self._stop_live(send=False)
            self.send(Msg.BYE)
            return True
        handler = getattr(self, f"on_{msg.type}", None)
        if msg.type not in protocol.CLIENT_TYPES or handler is None:
            self.error(Err.UNKNOWN_TYPE, f"unknown message type {protocol.clip_text(msg.type)!r}")
            return False
        try:
            handler(msg)
        except _Cancelled:
            pass
        except _BadField as exc:
            self.error(Err.BAD_REQUEST, str(exc))
        except _ClientGone:
            raise
        except Exception as exc:  # a model failure must not kill the server
            log.exception("handler %s failed", msg.type)
            sid = self.session_id
            self._drop_session()
            self.error(Err.MODEL, f"inference failed: {exc}", session=sid,
                       detail=traceback.format_exc(limit=8))
        return False

    def _stop_live_quietly(self) -> None:
        try:
            self._stop_live(send=False)
        except Exception:  # leaving anyway: a capture that fails to stop must not turn into a traceback
            log.exception("live capture did not stop cleanly")

    # -- handlers ------------------------------------------------------
    def on_ping(self, msg: Message) -> None:
        self.send(Msg.PONG, time=time.time())

    def on_start(self, msg: Message) -> None:
        sid = _session_field(msg, "default")
        assert sid is not None
        if self._open_session(sid, msg.fields):
            self.send(Msg.STARTED, session=sid, options=self.session.options.to_dict())

    def _open_session(self, sid: str, fields: dict[str, Any]) -> bool:
        from ..shared.options import SessionError, SessionOptions
        from .session import StreamingSession

        if self.session is not None:
            self.error(Err.SESSION_ACTIVE, f"session {self.session_id!r} is still running; "
                       "send end or cancel first", session=sid)
            return False
        try:
            options = SessionOptions.resolve(self.bundle.card, fields)
            self.session = StreamingSession(self.bundle, options)
        except SessionError as exc:
            self.error(Err.BAD_REQUEST, str(exc), session=sid)
            return False
        with self._cancel_lock:
            self._cancel_ids.discard(sid)
        self.session_id = sid
        self._level_warned = False
        return True

    def _check_session(self, msg: Message) -> bool:
        sid = _session_field(msg, self.session_id)
        if self.session is None or sid != self.session_id:
            self.error(Err.NO_SESSION, f"no active session {sid!r}; send start first", session=sid)
            return False
        return True

    def on_audio(self, msg: Message) -> None:
        from ..shared.options import SessionError
        from .session import NonFiniteOutput

        if not self._check_session(msg):
            return
        sr = self.bundle.cfg.sample_rate
        try:
            pcm = np.frombuffer(protocol.bytes_to_floats(msg.payload), dtype=np.float32)
        except protocol.ProtocolError as exc:
            self.error(Err.MALFORMED, str(exc), session=self.session_id)
            return
        if pcm.size > protocol.MAX_AUDIO_CHUNK_SECONDS * sr:
            self.error(Err.AUDIO_TOO_LARGE,
                       f"audio chunk of {pcm.size / sr:.1f} s exceeds {protocol.MAX_AUDIO_CHUNK_SECONDS:.0f} s;"
                       " send it in smaller chunks", session=self.session_id)
            return
        if not np.isfinite(pcm).all():
            self.error(Err.BAD_AUDIO, "audio chunk contains NaN or infinite samples; chunk ignored",
                       session=self.session_id)
            return
        sid = self.session_id
        assert sid is not None  # _check_session passed: a session is active
        step = int(SLICE_SECONDS * sr)
        try:
            for i in range(0, pcm.size, step):
                if self._cancel_requested(sid):
                    raise _Cancelled
                self._emit(sid, self.session.push(pcm[i:i + step]))
        except NonFiniteOutput:
            raise  # a model failure: the session is dropped
        except SessionError as exc:
            self.error(Err.BAD_AUDIO, str(exc), session=sid)
            return
        self._warn_levels(sid)
        self.send(Msg.PROGRESS, session=sid, audio_seconds=self.session.audio_seconds,
                  frames=self.session.frames_emitted)

    def on_end(self, msg: Message) -> None:
        if not self._check_session(msg):
            return
        sid = self.session_id
        assert sid is not None  # _check_session passed: a session is active
        self._emit(sid, self.session.flush())
        total = self.session.frames_emitted
        self._drop_session()
        self.send(Msg.DONE, session=sid, frames=total)

    def on_cancel(self, msg: Message) -> None:
        sid = _session_field(msg, self.session_id)
        if self.session is not None and sid == self.session_id:
            self._drop_session()
        with self._cancel_lock:
            self._cancel_ids.discard(sid)
        self.send(Msg.CANCELLED, session=sid)

    def on_get_basis(self, msg: Message) -> None:
        basis = self.bundle.extra.get("motion.basis")
        template = self.bundle.extra.get("motion.template")
        if basis is None or template is None:
            self.error(Err.BAD_REQUEST, "this model has no vertex basis (it drives named "
                       f"{self.bundle.card.get('channel_space', 'arkit')} channels)")
            return
        b = basis.astype("<f4")
        t = template.astype("<f4")
        self.send(Msg.BASIS, b.tobytes() + t.tobytes(), components=int(b.shape[0]),
                  vertices=int(b.shape[1]))

    # -- live ----------------------------------------------------------
    def on_live_start(self, msg: Message) -> None:
        from .live import LiveCapture, LiveError

        if self._live is not None or self.session is not None:
            self.error(Err.SESSION_ACTIVE, "a session or live capture is already running")
            return
        source, device = msg.get("input", "microphone"), msg.get("device")
        if not isinstance(source, str) or len(source) > 4096:
            raise _BadField(f"input must be 'microphone' or an audio file path (got {protocol.clip_text(source, 40)})")
        if not (device is None or isinstance(device, str) and len(device) <= protocol.MAX_SESSION_CHARS
                or isinstance(device, int) and not isinstance(device, bool)):
            raise _BadField(f"device must be a device name or index (got {protocol.clip_text(device, 40)})")
        if not self._open_session(LIVE_SESSION, msg.fields):
            return
        sr = self.bundle.cfg.sample_rate
        try:
            self._live = LiveCapture(source, sr,
                                     on_audio=lambda pcm: self.events.put((_LIVE_AUDIO, pcm)),
                                     on_error=lambda text: self.events.put((_LIVE_ERROR, text)),
                                     device=device)
            self._live.start()
        except LiveError as exc:
            self._live = None
            self._drop_session()
            self.error(Err.DEVICE, str(exc))
            return
        self.send(Msg.LIVE_STARTED, session=LIVE_SESSION, input=self._live.description)

    def _live_audio(self, pcm: np.ndarray) -> None:
        if self._live is None or self.session is None:
            return
        if pcm is None:  # end of a file input
            self._stop_live(send=True)
            return
        try:
            self._emit(LIVE_SESSION, self.session.push(pcm))
        except Exception as exc:
            self.error(Err.MODEL, f"live inference failed: {exc}")
            self._stop_live(send=True)

    def on_live_stop(self, msg: Message) -> None:
        if self._live is None:
            self.send(Msg.LIVE_STOPPED, session=LIVE_SESSION, frames=0)
            return
        self._stop_live(send=True)

    def _stop_live(self, send: bool) -> None:
        if self._live is None:
            return
        self._live.stop()
        self._live = None
        total = 0
        if self.session is not None and self.session_id == LIVE_SESSION:
            if send:
                self._emit(LIVE_SESSION, self.session.flush())
            total = self.session.frames_emitted
            self._drop_session()
        if send:
            self.send(Msg.LIVE_STOPPED, session=LIVE_SESSION, frames=total)

    # -- helpers -------------------------------------------------------
    def _warn_levels(self, sid: str) -> None:
        """One ``log`` warning per session, the first time its audio had to be clipped."""
        level = self.session.level
        if level.clipped and not self._level_warned:
            self._level_warned = True
            self.send(Msg.LOG, level="warning", session=sid, message=level.warning())

    def _emit(self, sid: str, frames: np.ndarray) -> None:
        if len(frames) == 0:
            return
        start = self.session.frames_emitted - len(frames)
        self.send(Msg.FRAMES, np.ascontiguousarray(frames, dtype="<f4").tobytes(), session=sid,
                  start=int(start), count=int(frames.shape[0]), channels=int(frames.shape[1]))

    def _drop_session(self) -> None:
        self.session = None
        self.session_id = None


def _size(msg: Message) -> int:
    """What a queued message holds in memory, near enough: its payload, and its header eightfold
    (parsed JSON takes several times the bytes of its text)."""
    return len(msg.payload) + 8 * msg.header_bytes


def _protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """Take the real stdout for the protocol and point fd 1 at stderr.

    Why: a stray ``print`` from any library would corrupt the byte stream;
    after this, only protocol writes reach the client.
    """
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(out_fd, "wb", buffering=0), sys.stdin.buffer


def _exit_on_signal(signum: int, frame: Any) -> None:
    """While the model loads (or on a second signal) there is nothing to tidy: leave at once.

    Why not raise: an exception raised from a handler lands wherever the main
    thread is, and importing torch runs code that swallows it (measured: about
    one signal in ten during ``import torch`` left the server loading and then
    serving with signals ignored, so it never exited).
    """
    log.info("stopped by signal %s", signal.Signals(signum).name)
    sys.stderr.flush()
    os._exit(0)


def _on_signal(signum: int, frame: Any) -> None:
    """While serving, unwind to ``serve`` so live audio stops and the client hears why."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal exits without unwinding again
        signal.signal(sig, _exit_on_signal)
    raise _Stop(signum)


def main(model: str | None, device: str = "cpu", threads: int | None = None, backend: str = "auto") -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[inference_core %(levelname)s] %(message)s")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_on_signal)
    out, inp = _protocol_streams()
    try:
        rc = _load_and_serve(model, device, threads, backend, out, inp)
    except _Stop as stop:  # a signal between installing the serving handler and serve()
        log.info("stopped by signal %s", signal.Signals(stop.signum).name)
        rc = 0
    # The stdin reader thread may sit in a blocking read; a normal interpreter
    # shutdown would abort on its buffer lock, so leave without finalising.
    sys.stderr.flush()
    os._exit(rc)


def _load_and_serve(model: str | None, device: str, threads: int | None, backend: str,
                    out: BinaryIO, inp: BinaryIO) -> int:
    def fatal(message: str, **extra: Any) -> int:
        try:
            protocol.write_message(out, Msg.ERROR, code=Err.MODEL, fatal=True,
                                   message=protocol.clip_text(message, 4 * protocol.MAX_ECHO_CHARS), **extra)
        except OSError:
            pass
        return 3

    from ..shared.model_card import ModelFileError
    from .bundle import BackendUnavailable, load_bundle

    try:
        bundle = load_bundle(model, device, backend, threads)
    except (ModelFileError, BackendUnavailable) as exc:
        return fatal(str(exc))
    except Exception as exc:
        return fatal(f"could not start the inference engine: {exc}",
                     detail=protocol.clip_text(traceback.format_exc(limit=8), 8000))
    log.info("model %s loaded (%s backend, %s), serving on stdio", bundle.card.get("name"),
             bundle.backend.name, device)
    server = BridgeServer(bundle, out, inp)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    return server.serve()
