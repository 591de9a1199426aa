"""Audio input for the add-on: decode with Blender's ``aud`` to 16 kHz mono, then validate.

``aud`` reads whatever Blender's sound strips read (WAV, FLAC, OGG, MP3, AAC,
video soundtracks…), so users can pick any file Blender plays. Resampling is
done by aud; channels are averaged in numpy, because aud's rechannel applies
a power-preserving mix (√2 gain for stereo → mono) that would clip speech.

A Blender built without Audaspace (the ``bpy`` 4.2 wheels) has no ``aud``: there
the core's own decoder reads PCM WAV with the standard library and resamples in
numpy, and any other file gets a message saying to convert it to WAV.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..client import core
from ..logic.audio_checks import AudioError, validate_pcm


def sound_path(sound: Any) -> str:
    """A readable file for a sound datablock (packed sounds are written to a temp file)."""
    import bpy

    if sound.packed_file is not None:
        suffix = Path(sound.filepath).suffix or ".wav"
        fd, tmp = tempfile.mkstemp(prefix="stk_", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sound.packed_file.data)
        return tmp
    return bpy.path.abspath(sound.filepath, library=sound.library)


def decode_file(path: str | os.PathLike, sample_rate: int = 16000,
                start_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
    """Decode ``path`` to float32 mono PCM at ``sample_rate`` (optionally a time window)."""
    p = Path(path)
    label = f"'{p.name}'"
    if not p.exists():
        raise AudioError(f"Audio file not found: {p}")
    if p.is_dir():
        raise AudioError(f"{p} is a folder, not an audio file.")
    if p.stat().st_size == 0:
        raise AudioError(f"{label} is an empty file.")
    try:
        import aud  # Blender's audio module; only exists inside Blender / bpy built with Audaspace
    except ImportError:
        data = _decode_without_aud(p, sample_rate, label)
    else:
        data = _decode_with_aud(aud, p, sample_rate, label)
    if start_s > 0 or duration_s is not None:
        a = max(0, int(round(start_s * sample_rate)))
        b = None if duration_s is None else a + max(0, int(round(duration_s * sample_rate)))
        data = data[a:b]
    return validate_pcm(np.ascontiguousarray(data), sample_rate, label)


def _decode_with_aud(aud: Any, p: Path, sample_rate: int, label: str) -> np.ndarray:
    aud_error: tuple[type[BaseException], ...] = (getattr(aud, "error"),)
    try:
        sound = aud.Sound.file(str(p))
        specs = sound.specs  # raises when no reader accepts the file
        if specs[0] <= 0 or specs[1] <= 0:
            raise AudioError(f"{label} has no audio stream.")
        if int(round(specs[0])) != sample_rate:
            sound = sound.resample(sample_rate, 2)
        data = np.asarray(sound.data(), dtype=np.float32)
    except aud_error as exc:
        raise AudioError(f"Blender cannot read {label} as audio (not an audio file, "
                         f"an unsupported codec, or corrupt): {exc}") from None
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return data


def _decode_without_aud(p: Path, sample_rate: int, label: str) -> np.ndarray:
    """The core's decoder: PCM WAV through the stdlib ``wave`` module, resampled in numpy."""
    io = core.audio_io
    try:
        io.probe(p)
    except io.AudioError:
        raise AudioError(f"Blender cannot read {label}: this Blender is built without its audio library "
                         "(Audaspace), so it reads only PCM WAV files. Save the audio as 16-bit WAV.") from None
    try:
        return io.load_file(p, sample_rate)
    except io.AudioError as exc:
        raise AudioError(str(exc)) from None


__all__ = ["AudioError", "decode_file", "sound_path"]
