"""Stdio bridge protocol between Blender and the inference process (stdlib only).

Every message is one frame on a byte stream (the server's stdin/stdout)::

    magic  b"STK1"            4 bytes
    header_len  uint32 LE     length of the UTF-8 JSON header
    payload_len uint32 LE     length of the raw payload
    header  JSON object        always has "type"
    payload bytes              little-endian float32 samples/frames, or empty

Why this shape: JSON keeps the control fields readable and extensible, and a
raw float32 payload moves audio and motion without base64 or per-number
parsing. Lengths come first so a reader never guesses where a message ends,
and both are bounded so a corrupt stream is reported, not allocated.

Messages (client → server):
    start    {session, + any SessionOptions field: seed, steps, guidance, temperature,
              temperature_upper, steps_upper, style, intensity, articulation, phonetic,
              smoothing}
                                          open a session (the model card's tuned defaults
                                          fill what is not given)
    audio    {session} + float32 mono PCM at the model's sample rate
    end      {session}                    flush; server answers frames..., done
    cancel   {session}                    drop the session; server answers cancelled
    ping     {}                           server answers pong
    live_start {input?, device?, + start options}  capture in the server process:
               input "microphone" (default, sounddevice) or an audio file path played
               back in real time; frames stream with session "live"
    live_stop  {}
    get_basis {}                          vertex-space models: basis + template
    shutdown {}                           server answers bye and exits 0

Messages (server → client):
    hello    {protocol, core_version, model: <model card>, pid,
              runtime: {backend, device, head_precision, python, python_version}}   sent once at start-up
    started  {session}                    answer to start
    frames   {session, start, count, channels: K} + count*K float32, row-major
    progress {session, audio_seconds, frames}
    done     {session, frames}
    cancelled {session}
    basis    {components, vertices} + K*V*3 then V*3 float32 (template last)
    error    {code, message, fatal, session?, detail?}
    pong, bye, live_started, live_stopped, log {level, message}
"""

from __future__ import annotations

import json
import reprlib
import struct
import sys
from array import array
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Iterable

MAGIC = b"STK1"
_PREFIX = struct.Struct("<4sII")
PREFIX_SIZE = _PREFIX.size

#: Upper bounds that keep a corrupt stream from allocating gigabytes.
MAX_HEADER_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 64 << 20
#: Longest audio chunk one ``audio`` message may carry, in seconds. Clients
#: stream longer audio in several messages.
MAX_AUDIO_CHUNK_SECONDS = 60.0
#: Longest session id accepted, and the most characters of any client value an error echoes.
MAX_SESSION_CHARS = 256
MAX_ECHO_CHARS = 200
#: Bytes of received but unprocessed messages the server holds before it stops reading
#: (the client's writes then block: backpressure through the pipe, nothing is dropped).
MAX_QUEUED_BYTES = 16 << 20

class Msg:
    """Every message type (the header's ``type``); both sides use these, never literals."""
    # client -> server
    START = "start"
    AUDIO = "audio"
    END = "end"
    CANCEL = "cancel"
    PING = "ping"
    LIVE_START = "live_start"
    LIVE_STOP = "live_stop"
    GET_BASIS = "get_basis"
    SHUTDOWN = "shutdown"
    # server -> client
    HELLO = "hello"
    STARTED = "started"
    FRAMES = "frames"
    PROGRESS = "progress"
    DONE = "done"
    CANCELLED = "cancelled"
    BASIS = "basis"
    ERROR = "error"
    PONG = "pong"
    BYE = "bye"
    LIVE_STARTED = "live_started"
    LIVE_STOPPED = "live_stopped"
    LOG = "log"
    #: not on the wire: what the client's reader queues when the child's stdout closes
    EXIT = "_exit"


CLIENT_TYPES = frozenset({Msg.START, Msg.AUDIO, Msg.END, Msg.CANCEL, Msg.PING, Msg.LIVE_START,
                          Msg.LIVE_STOP, Msg.GET_BASIS, Msg.SHUTDOWN})
SERVER_TYPES = frozenset({Msg.HELLO, Msg.STARTED, Msg.FRAMES, Msg.PROGRESS, Msg.DONE, Msg.CANCELLED,
                          Msg.BASIS, Msg.ERROR, Msg.PONG, Msg.BYE, Msg.LIVE_STARTED, Msg.LIVE_STOPPED,
                          Msg.LOG})


class Err:
    """Error codes: in ``error`` messages (server side) and on client-side failures."""
    MALFORMED = "malformed_message"
    UNKNOWN_TYPE = "unknown_type"
    BAD_REQUEST = "bad_request"
    AUDIO_TOO_LARGE = "audio_too_large"
    BAD_AUDIO = "bad_audio"
    NO_SESSION = "no_session"
    SESSION_ACTIVE = "session_active"
    MODEL = "model_error"
    DEVICE = "audio_device_error"
    INTERNAL = "internal_error"
    # raised by the client and the add-on, never sent
    TIMEOUT = "timeout"
    LAUNCH_FAILED = "launch_failed"
    PROCESS_EXITED = "process_exited"
    PROTOCOL = "protocol"
    NO_RUNTIME = "no_runtime"
    NO_MODEL = "no_model"
    BAD_INPUT = "bad_input"
    #: after one of these the inference process cannot be trusted: discard it
    BROKEN = frozenset({PROCESS_EXITED, TIMEOUT, PROTOCOL})


#: The live-capture session's id (frames of live input carry it).
LIVE_SESSION = "live"


class ProtocolError(Exception):
    """The byte stream does not hold a valid message; ``code`` is an error code above."""

    def __init__(self, message: str, code: str = Err.MALFORMED, recoverable: bool = False):
        super().__init__(message)
        self.code = code
        #: True when the frame was consumed whole (only its header was bad), so
        #: the reader can report and go on; False when the stream lost its framing.
        self.recoverable = recoverable


@dataclass
class Message:
    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""
    #: length of the JSON header on the wire (0 for messages made locally)
    header_bytes: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def clip_text(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``value`` as text of at most ``limit`` characters, for echoing client input in errors."""
    text = value if isinstance(value, str) else reprlib.repr(value)  # bounded depth and length
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def encode(msg_type: str, payload: bytes = b"", **fields: Any) -> bytes:
    """Serialise one message to bytes."""
    header = dict(fields)
    header["type"] = msg_type
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}",
                            Err.AUDIO_TOO_LARGE)
    return _PREFIX.pack(MAGIC, len(raw), len(payload)) + raw + bytes(payload)


def write_message(stream: BinaryIO, msg_type: str, payload: bytes = b"", **fields: Any) -> None:
    """Write one message and flush, so the peer sees it at once."""
    stream.write(encode(msg_type, payload, **fields))
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream: IO[bytes]) -> Message | None:
    """Read one message. Returns None on a clean end of stream between messages.

    Raises :class:`ProtocolError` on a bad magic, oversize lengths, a stream
    that ends inside a message, or a header that is not a JSON object with a
    string ``type``. After an error the stream position is undefined: the
    reader should report and stop.
    """
    prefix = _read_exact(stream, PREFIX_SIZE)
    if not prefix:
        return None
    if len(prefix) < PREFIX_SIZE:
        raise ProtocolError("stream ended inside a message prefix")
    magic, header_len, payload_len = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r}: not a StreamingTalker bridge stream")
    if header_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"header length {header_len} exceeds {MAX_HEADER_BYTES}")
    if payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload length {payload_len} exceeds {MAX_PAYLOAD_BYTES}",
                            Err.AUDIO_TOO_LARGE)
    raw = _read_exact(stream, header_len)
    payload = _read_exact(stream, payload_len) if payload_len else b""
    if len(raw) < header_len or len(payload) < payload_len:
        raise ProtocolError("stream ended inside a message")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"header is not valid JSON: {clip_text(str(exc))}", recoverable=True) from None
    except RecursionError:
        raise ProtocolError("header JSON is nested too deeply", recoverable=True) from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("header must be a JSON object with a string 'type'", recoverable=True)
    msg_type = header.pop("type")
    return Message(msg_type, header, payload, header_len)


def floats_to_bytes(values: Iterable[float] | array) -> bytes:
    """Pack floats as little-endian float32 (numpy users: ``arr.astype('<f4').tobytes()``)."""
    arr = values if isinstance(values, array) and values.typecode == "f" else array("f", values)
    if sys.byteorder != "little":
        arr = array("f", arr)
        arr.byteswap()
    return arr.tobytes()


def bytes_to_floats(payload: bytes) -> array:
    """Unpack little-endian float32 bytes into an ``array('f')``."""
    if len(payload) % 4:
        raise ProtocolError(f"float32 payload length {len(payload)} is not a multiple of 4")
    arr = array("f")
    arr.frombytes(payload)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr
