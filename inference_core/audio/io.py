"""Decoding audio files block by block into 16 kHz mono float32.

Why block-wise: an hours-long file must stream through the engine with flat
memory, so nothing here reads a whole file. ``soundfile`` (libsndfile)
decodes WAV/FLAC/OGG/MP3; ``soxr`` resamples statefully so block edges leave
no artefacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

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


def probe(path: str | Path) -> AudioInfo:
    """Open a file just far enough to know its rate, channels and length."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"Audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes)")
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
        self._rs = None
        if self.in_rate != self.out_rate:
            import soxr

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
    import soundfile as sf

    info = probe(path)
    rs = StreamResampler(info.sample_rate, target_rate)
    block = max(1, int(block_seconds * info.sample_rate))
    done = 0
    try:
        with sf.SoundFile(str(info.path)) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
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
