"""Live audio sources for the bridge server: a microphone or a file played in real time.

Both deliver 16 kHz mono float32 blocks through ``on_audio`` from their own
thread; the server turns them into events on its queue. A file input is what
tests and "follow timeline" previews use where no microphone exists.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

BLOCK_SECONDS = 0.05


class LiveError(RuntimeError):
    pass


class LiveCapture:
    def __init__(self, source: str, sample_rate: int, on_audio: Callable[[np.ndarray | None], None],
                 on_error: Callable[[str], None], device: str | int | None = None):
        self.source = source or "microphone"
        self.sample_rate = sample_rate
        self.on_audio = on_audio
        self.on_error = on_error
        self.device = device
        self._stop = threading.Event()
        self._stream: Any = None  # a sounddevice.InputStream while the microphone is open
        self._thread: threading.Thread | None = None
        self.description = ""

    def start(self) -> None:
        if self.source == "microphone":
            self._start_microphone()
        else:
            self._start_file(Path(self.source))

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _start_microphone(self) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise LiveError(f"microphone capture is unavailable ({exc}); install the PortAudio "
                            "library (libportaudio2) and the sounddevice package") from None
        from ..audio.io import StreamResampler

        info = _input_device(sd, self.device)
        name = str(info.get("name", self.device))
        rate = int(info.get("default_samplerate") or self.sample_rate)
        resample = StreamResampler(rate, self.sample_rate)

        def callback(indata, frames, t, status):  # audio thread: copy out only
            self.on_audio(resample(indata.mean(axis=1)))

        def finished() -> None:  # PortAudio ended the stream: only a failing device does that unasked
            if not self._stop.is_set():
                self.on_error(f"the audio input '{name}' stopped delivering sound (unplugged, or its "
                              "sound server ended); start Live again")

        try:
            self._stream = sd.InputStream(device=info["index"], channels=1, samplerate=rate,
                                          blocksize=int(rate * BLOCK_SECONDS), dtype="float32",
                                          callback=callback, finished_callback=finished)
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise LiveError(_open_error(name, exc)) from None
        self.description = f"microphone: {name}"

    def _start_file(self, path: Path) -> None:
        from ..audio.io import AudioError, stream_file

        try:
            blocks = stream_file(path, self.sample_rate, block_seconds=1.0)
            first = next(blocks)
        except (AudioError, StopIteration) as exc:
            raise LiveError(f"live input {path}: {exc or 'no audio'}") from None
        self.description = f"file (real time): {path.name}"
        step = int(self.sample_rate * BLOCK_SECONDS)

        def run() -> None:
            t0 = time.monotonic()
            sent = 0
            try:
                for block in _chain(first, blocks):
                    for i in range(0, block.size, step):
                        if self._stop.is_set():
                            return
                        piece = block[i:i + step]
                        due = t0 + (sent + piece.size) / self.sample_rate
                        delay = due - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        self.on_audio(piece)
                        sent += piece.size
            except AudioError as exc:
                self.on_error(str(exc))
                return
            if not self._stop.is_set():
                self.on_audio(None)

        self._thread = threading.Thread(target=run, name="stk-live-file", daemon=True)
        self._thread.start()


def _chain(first, rest):
    yield first
    yield from rest


#: PortAudio's paDeviceUnavailable: the host API found the device in use (ALSA's EBUSY, for one).
_PA_DEVICE_UNAVAILABLE = -9985


def _input_device(sd: Any, device: str | int | None) -> dict[str, Any]:
    """sounddevice's description of the capture device (None: the default), or a LiveError naming the choices."""
    try:
        inputs = [d for d in sd.query_devices() if d.get("max_input_channels", 0) > 0]
    except Exception as exc:
        raise LiveError(f"the audio system cannot list its devices ({exc})") from None
    if not inputs:
        raise LiveError("this computer has no audio input device (PortAudio found none): connect a "
                        "microphone, or check that the sound server is running")
    try:
        return dict(sd.query_devices(device, "input"))
    except Exception:
        names = ", ".join(repr(d["name"]) for d in inputs[:8])
        wanted = "no default audio input is set" if device is None else f"no audio input matches {device!r}"
        raise LiveError(f"{wanted}; the inputs are: {names}") from None


def _open_error(name: str, exc: Exception) -> str:
    """A one-line reason the capture stream would not open."""
    text = " ".join(str(exc).split())[:300]
    if getattr(exc, "args", None) and len(exc.args) > 1 and exc.args[1] == _PA_DEVICE_UNAVAILABLE:
        return (f"the audio input '{name}' is busy: another program is using it; close that program or "
                f"choose another input ({text})")
    return f"could not open the audio input '{name}': {text}"
