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
    """(n, channels) float32 blocks of the file in order; the last one is shorter than ``block``."""
    sf = _soundfile()
    if sf is None:
        yield from _wave_blocks(info.path, block)
        return
    with sf.SoundFile(str(info.path)) as f:
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            yield data
            if len(data) < block:
                return


def probe(path: str | Path) -> AudioInfo:
    """Open a file just far enough to know its rate, channels and length."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"Audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes)")
    sf = _soundfile()
    if sf is None:
        return _probe_wave(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(f"{path.name} is not a readable audio file ({_short(exc)}). "
                         "Supported: WAV, FLAC, OGG/Vorbis/Opus, MP3.") from None
    if info.frames == 0 or info.samplerate <= 0:
        raise AudioError(f"{path.name} contains no audio samples")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), info.format)


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



def stream_file(path: str | Path, target_rate: int = 16000, block_seconds: float = 10.0
                ) -> Iterator[np.ndarray]:
    """Yield 16 kHz (``target_rate``) mono float32 blocks of a file, in order."""
    info = probe(path)
    rs = StreamResampler(info.sample_rate, target_rate)
    block = max(1, int(block_seconds * info.sample_rate))
    done = 0
    try:
        for data in _blocks(info, block):
            last = len(data) < block
            if len(data) and not np.isfinite(data).all():
                row = int(np.argmin(np.isfinite(data).all(axis=1)))
                raise AudioError(f"{info.path.name} contains NaN or infinite samples "
                                 f"(first at {(done + row) / info.sample_rate:.2f} s); the file is damaged")
            done += len(data)
            out = rs(to_mono(data), last=last)
            if out.size:
                yield out
            if last:
                break
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(f"{info.path.name} could not be decoded after {done / info.sample_rate:.1f} s "
                         f"({_short(exc)}); the file may be truncated or damaged") from None


def load_file(path: str | Path, target_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Whole file as 16 kHz mono float32 (for short clips; long files: :func:`stream_file`)."""
    info = probe(path)
    if max_seconds is not None and info.seconds > max_seconds:
        raise AudioError(f"{info.path.name} is {info.seconds:.0f} s long; the limit here is "
                         f"{max_seconds:.0f} s (stream it instead)")
    blocks = list(stream_file(path, target_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
