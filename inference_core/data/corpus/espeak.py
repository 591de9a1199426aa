"""espeak-ng through its C API (ctypes): speech plus sample-exact phoneme events.

Why the C API and not the command line: only the library reports
``espeakEVENT_PHONEME`` events with the sample index where each phoneme starts,
which is what makes the synthetic corpus's lip targets line up with its audio.
espeak-ng keeps global state and is not re-entrant, so every call goes through
one process-wide :class:`Espeak` guarded by a lock; use processes, not threads,
for parallelism.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

# espeak_AUDIO_OUTPUT / espeak_EVENT_TYPE / option values from speak_lib.h (API revision 12)
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
CHARS_UTF8 = 1
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4
POS_CHARACTER = 1


class EspeakError(RuntimeError):
    pass


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # Field order and types exactly as ``espeak_EVENT`` in speak_lib.h.
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index in the output stream
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass
class Synthesis:
    audio: np.ndarray  # float32 (N,) at sample_rate
    sample_rate: int
    phonemes: list[tuple[str, float, float]]  # (espeak mnemonic, start s, end s)


class Espeak:
    """The one espeak-ng instance of this process (see :func:`get`)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as exc:  # pragma: no cover - depends on the machine
            raise EspeakError("libespeak-ng is not installed (Debian: apt install libespeak-ng1 "
                              "espeak-ng; or run scripts/setup_system.sh)") from exc
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None,
                                                          INITIALIZE_PHONEME_EVENTS))
        if self.sample_rate <= 0:
            raise EspeakError("espeak_Initialize failed (espeak-ng-data missing?)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int, int]] = []
        self._cb = _Callback(self._on_synth)  # keep a reference: C holds only the pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lock = threading.Lock()

    def _on_synth(self, wav, numsamples, events) -> int:  # type: ignore[no-untyped-def]
        if wav and numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                self._events.append((ev.id.string.decode("utf-8", "replace"), ev.sample, ev.audio_position))
            i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50, range_: int = 50,
              volume: int = 100) -> Synthesis:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+f3``) → audio and phoneme timeline.

        Each phoneme ends where the next begins; the last ends at the end of the audio.
        """
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((ESPEAK_RATE, rate), (ESPEAK_PITCH, pitch), (ESPEAK_RANGE, range_),
                                 (ESPEAK_VOLUME, volume)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if err != 0:
                raise EspeakError(f"espeak_Synth failed with code {err}")
            chunks, events = self._chunks, self._events
        audio = (np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks
                 else np.zeros(0, np.float32))
        sr = self.sample_rate
        n = len(audio)
        starts: list[tuple[str, int]] = []
        for name, sample, ms in events:
            # ``sample`` is exact; fall back to the ms field if a build reports nonsense there.
            pos = sample if 0 <= sample <= n and abs(sample / sr * 1000 - ms) < 5 else int(ms * sr / 1000)
            starts.append((name, min(max(pos, 0), n)))
        phones: list[tuple[str, float, float]] = []
        for k, (name, pos) in enumerate(starts):
            end = starts[k + 1][1] if k + 1 < len(starts) else n
            end = max(end, pos)
            if end > pos:  # zero-length markers (the final "_") carry no time
                phones.append((name, pos / sr, end / sr))
        return Synthesis(audio, sr, phones)


_INSTANCE: Espeak | None = None
_INSTANCE_LOCK = threading.Lock()


def get() -> Espeak:
    """The process-wide espeak-ng (created on first use)."""
    global _INSTANCE
    with _INSTANCE_LOCK:
        if _INSTANCE is None:
            _INSTANCE = Espeak()
        return _INSTANCE


def list_languages(prefix: str = "en") -> dict[str, str]:
    """espeak-ng languages whose code starts with ``prefix`` → voice file to synthesise with.

    Formant voices only (MBROLA voices are non-free and left out). The file name
    (``gmw/en``) is what ``espeak_SetVoiceByName`` accepts for every language,
    where a code like ``en-gb`` is not always found.
    """
    out = subprocess.run(["espeak-ng", f"--voices={prefix}"], capture_output=True, text=True,
                         check=True).stdout
    langs: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5 or cols[4].startswith(("mb/", "!v/")) or cols[1] == "variant":
            continue
        if cols[1].split("-")[0] == prefix.split("-")[0] and cols[1] not in langs:
            langs[cols[1]] = cols[4]
    return langs


def list_variants() -> list[str]:
    """Voice variant names usable as ``lang+variant`` (``m3``, ``f2``, ``klatt4``, ``croak``…)."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True,
                         check=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[4].startswith("!v/"):
            names.append(cols[4][3:])
    return sorted(set(names))
