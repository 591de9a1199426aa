"""Decoding audio files block by block into 16 kHz mono float32.

Why block-wise: an hours-long file must stream through the engine with flat
memory, so nothing here reads a whole file. ``soundfile`` (libsndfile)
decodes WAV/FLAC/OGG/MP3; ``soxr`` resamples statefully so block edges leave
no artefacts. Without them (a Python with only numpy and onnxruntime, such as
Blender's) PCM WAV files are read with the stdlib ``wave`` module and resampled
by :mod:`.resample` (numpy).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..shared.paths import path_kind
from .levels import LevelGuard


#: Lowest sample rate accepted. Below 4 kHz (2 kHz of bandwidth) the second formant of most
#: vowels and every fricative are gone, so no lip shape can be read from the audio; and
#: upsampling from 1 Hz by 16000× costs minutes for nothing. Telephone audio (8 kHz) passes.
MIN_SAMPLE_RATE = 4000
#: Frames re-read at a time when a damaged file's failed block is salvaged.
SALVAGE_FRAMES = 1024


class AudioError(ValueError):
    """The audio cannot be used; the message is meant for the user."""


@dataclass
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _soundfile() -> Any:
    """The soundfile module, or None where it (or its libsndfile) is not installed."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile


def _probe_wave(path: Path) -> AudioInfo:
    try:
        with wave.open(str(path), "rb") as w:
            return AudioInfo(path, w.getframerate(), w.getnchannels(), w.getnframes(), f"WAV{8 * w.getsampwidth()}")
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path.name} is not a PCM WAV file ({_short(exc)}); other formats need the soundfile "
                         "package (pip install soundfile)") from None


def _wave_blocks(path: Path, block: int) -> Iterator[np.ndarray]:
    """(n, channels) float32 blocks of a PCM WAV file (8-bit unsigned, 16/24/32-bit signed)."""
    with wave.open(str(path), "rb") as w:
        width, channels = w.getsampwidth(), w.getnchannels()
        while True:
            raw = np.frombuffer(w.readframes(block), np.uint8)
            if width == 1:
                data = (raw.astype(np.float32) - 128.0) / 128.0
            else:  # the sample's bytes at the top of a little-endian int32: its sign comes along
                wide = np.zeros((len(raw) // width, 4), np.uint8)
                wide[:, 4 - width:] = raw.reshape(-1, width)
                data = wide.view("<i4").ravel().astype(np.float32) / 2.0 ** 31
            frames = data.reshape(-1, channels)
            yield frames
            if len(frames) < block:
                return


def _blocks(info: AudioInfo, block: int) -> Iterator[np.ndarray]:
    """(n, channels) float32 blocks of the file in order; the last one is shorter than ``block``.

    A decoding error (a FLAC cut short) ends the stream with :class:`_Salvaged` once the
    failed block has been re-read in small pieces, so what decodes is kept."""
    sf = _soundfile()
    if sf is None:
        yield from _wave_blocks(info.path, block)
        return
    done = 0
    with sf.SoundFile(str(info.path)) as f:
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except Exception as exc:  # libsndfile raises its own error type mid-file
                yield from _salvage(sf, info.path, done, exc)
                return
            done += len(data)
            yield data
            if len(data) < block:
                return


class _Salvaged(Exception):
    """Raised after the last decodable piece of a damaged file was yielded (carries the cause)."""


def _salvage(sf: Any, path: Path, start: int, cause: Exception) -> Iterator[np.ndarray]:
    """The frames from ``start`` that still decode, in pieces of :data:`SALVAGE_FRAMES`."""
    with sf.SoundFile(str(path)) as f:
        try:
            f.seek(start)
            while True:
                data = f.read(SALVAGE_FRAMES, dtype="float32", always_2d=True)
                if len(data):
                    yield data
                if len(data) < SALVAGE_FRAMES:
                    break
        except Exception:  # the damaged part: stop at the last piece that decoded
            pass
    raise _Salvaged(_short(cause))


def _ogg_cut_short(path: Path) -> bool:
    """An Ogg file's last page carries the end-of-stream flag; without it the file was cut."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 65536))
        tail = fh.read()
    i = tail.rfind(b"OggS")
    return i < 0 or len(tail) < i + 6 or not tail[i + 5] & 0x04


def probe(path: str | Path) -> AudioInfo:
    """Open a file just far enough to know its rate, channels and length."""
    path = Path(path)
    kind = path_kind(path)
    if kind == "missing":
        raise AudioError(f"Audio file not found: {path}")
    if kind == "folder":
        raise AudioError(f"{path} is a folder, not an audio file")
    if kind == "special":
        raise AudioError(f"{path} is not a regular file (a pipe or a device cannot be read as audio)")
    if kind == "unreadable":
        raise AudioError(f"cannot read {str(path)[:200]} (no permission, or not a valid file name)")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes)")
    sf = _soundfile()
    if sf is None:
        return _checked(_probe_wave(path))
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path.name} is not a readable audio file ({_short(exc)}). "
                         "Supported: WAV, FLAC, OGG/Vorbis/Opus, MP3.") from None
    if info.frames == 0 or info.samplerate <= 0:
        raise AudioError(f"{path.name} contains no audio samples")
    return _checked(AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), info.format))


def _checked(info: AudioInfo) -> AudioInfo:
    if info.sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(f"{info.path.name} has a sample rate of {info.sample_rate} Hz; speech needs at least "
                         f"{MIN_SAMPLE_RATE} Hz (8 kHz telephone audio or better)")
    if info.channels < 1:
        raise AudioError(f"{info.path.name} has no audio channels")
    return info


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:200]


class StreamResampler:
    """Stateful any-rate → target-rate mono resampler (identity when rates match)."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        self._rs: Any = None
        if self.in_rate != self.out_rate:
            try:
                import soxr
            except ImportError:  # Blender's Python: numpy only
                from .resample import SincResampler

                self._rs = SincResampler(self.in_rate, self.out_rate)
            else:
                self._rs = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._rs is None:
            return block
        return self._rs.resample_chunk(block, last=last)


def to_mono(block: np.ndarray) -> np.ndarray:
    """Average channels (a plain mean keeps speech level for typical stereo)."""
    if block.ndim == 1:
        return block.astype(np.float32, copy=False)
    return block.mean(axis=1, dtype=np.float32)



def stream_file(path: str | Path, target_rate: int = 16000, block_seconds: float = 10.0,
                warnings: list[str] | None = None) -> Iterator[np.ndarray]:
    """Yield 16 kHz (``target_rate``) mono float32 blocks of a file, in order.

    Samples beyond full scale are clipped (:class:`~.levels.LevelGuard`). A file cut short
    keeps what decodes. Both are reported as one line each, appended to ``warnings``
    when the stream ends."""
    info = probe(path)
    rs = StreamResampler(info.sample_rate, target_rate)
    block = max(1, int(block_seconds * info.sample_rate))
    level = LevelGuard(info.sample_rate)
    notes = warnings if warnings is not None else []
    done = 0
    damage = ""
    blocks = _blocks(info, block)
    try:
        while True:
            try:
                data = next(blocks)
            except StopIteration:
                break
            except _Salvaged as exc:
                if not done:
                    raise AudioError(f"{info.path.name} could not be decoded ({exc}); the file is damaged") from None
                damage = str(exc)
                break
            if len(data) and not np.isfinite(data).all():
                row = int(np.argmin(np.isfinite(data).all(axis=1)))
                raise AudioError(f"{info.path.name} contains NaN or infinite samples "
                                 f"(first at {(done + row) / info.sample_rate:.2f} s); the file is damaged")
            done += len(data)
            out = rs(to_mono(level(data)))
            if out.size:
                yield out
        out = rs(np.zeros(0, np.float32), last=True)
        if out.size:
            yield out
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{info.path.name} could not be decoded after {done / info.sample_rate:.1f} s "
                         f"({_short(exc)}); the file may be truncated or damaged") from None
    lost = _lost_note(info, done, damage)
    notes += [n for n in (level.warning(), lost) if n]


def _lost_note(info: AudioInfo, decoded: int, damage: str) -> str | None:
    """What a damaged or cut-short file lost, in seconds where the file says how long it was."""
    sr = info.sample_rate
    missing = info.frames - decoded
    if damage or missing > max(sr // 20, info.frames // 100):  # more than 50 ms and 1 %: not codec padding
        if missing > 0:
            return (f"the file is damaged or cut short: decoded {decoded / sr:.2f} s of the "
                    f"{info.frames / sr:.2f} s it declares, {missing / sr:.2f} s lost"
                    + (f" ({damage})" if damage else ""))
        return f"the file is damaged after {decoded / sr:.2f} s; the rest was lost ({damage})"
    if info.format == "OGG" and _ogg_cut_short(info.path):
        return (f"the file is cut short (its last Ogg page has no end-of-stream mark): {decoded / sr:.2f} s "
                "decoded; how much followed is not recorded in the file")
    return None


def load_file(path: str | Path, target_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Whole file as 16 kHz mono float32 (for short clips; long files: :func:`stream_file`)."""
    info = probe(path)
    if max_seconds is not None and info.seconds > max_seconds:
        raise AudioError(f"{info.path.name} is {info.seconds:.0f} s long; the limit here is "
                         f"{max_seconds:.0f} s (stream it instead)")
    blocks = list(stream_file(path, target_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
