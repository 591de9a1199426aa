"""Text-to-speech voices with exact phone timings, at 16 kHz, on one ARPAbet timeline.

Two engines:

* **espeak-ng** (C API, :mod:`.espeak`): formant synthesis, 8 English accents ×
  ~100 voice variants, any rate/pitch/range; phone starts are sample-exact.
* **flite** (``flite -psdur``): the clustergen voices ``slt`` (US female),
  ``awb`` (Scottish male) and ``rms`` (US male) — statistical voices built from
  human recordings, so they sound more like real speech than espeak. Their
  printed phone end times match the audio (measured: last end within 5 ms of
  the audio length). The diphone voices ``kal``/``kal16`` are left out: their
  printed times drift ~100 ms from the audio over one sentence.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import espeak as _espeak
from .phonemes import to_arpabet

SR = 16000
FLITE_VOICES = {"slt": "F", "awb": "M", "rms": "M"}


@dataclass(frozen=True)
class Voice:
    """A speaker of the corpus: engine + voice, with its own default prosody."""

    id: str  # speaker id in the dataset, e.g. "espeak:en-gb-scotland+m3", "flite:slt"
    engine: str  # "espeak" | "flite"
    name: str  # espeak voice file + variant ("gmw/en-GB-scotland+m3") or flite voice ("slt")
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Speech:
    audio: np.ndarray  # float32 (N,) 16 kHz
    phones: list[tuple[str, float, float]]  # ARPAbet (label, start s, end s), contiguous
    settings: dict[str, Any]


class TTSError(RuntimeError):
    pass


def _resample(x: np.ndarray, sr_in: int, sr_out: int = SR) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32)
    import soxr

    return soxr.resample(x.astype(np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def _clip_timeline(phones: list[tuple[str, float, float]], dur: float) -> list[tuple[str, float, float]]:
    """Make the timeline contiguous from 0 to ``dur`` (the audio length)."""
    out: list[tuple[str, float, float]] = []
    t = 0.0
    for lab, s, e in phones:
        s, e = max(s, t), min(e, dur)
        if e <= s:
            continue
        if s > t + 1e-6:  # a gap: silence
            out.append(("sil", t, s))
        out.append((lab, s, e))
        t = e
    if dur - t > 1e-6:
        if out and out[-1][0] == "sil":
            out[-1] = ("sil", out[-1][1], dur)
        else:
            out.append(("sil", t, dur))
    return out


def speak_espeak(voice: str, text: str, rate: int, pitch: int, range_: int) -> Speech:
    syn = _espeak.get().synth(text, voice, rate=rate, pitch=pitch, range_=range_)
    audio = _resample(syn.audio, syn.sample_rate)
    dur = len(audio) / SR
    phones = _clip_timeline(to_arpabet(syn.phonemes, "espeak"), dur)
    return Speech(audio, phones, {"rate": rate, "pitch": pitch, "range": range_})


def speak_flite(voice: str, text: str, stretch: float, f0_shift: float) -> Speech:
    """flite clustergen voice; ``stretch`` > 1 speaks slower, ``f0_shift`` scales pitch."""
    import soundfile as sf

    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        proc = subprocess.run(
            ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
             "--setf", f"f0_shift={f0_shift:.3f}", "-psdur", "-t", text, "-o", path],
            capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise TTSError(f"flite failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
        audio, sr = sf.read(path, dtype="float32")
    except FileNotFoundError as exc:
        raise TTSError("flite is not installed (Debian: apt install flite)") from exc
    finally:
        os.unlink(path)
    if audio.ndim > 1:
        audio = audio.mean(1)
    audio = _resample(audio, sr)
    raw: list[tuple[str, float, float]] = []
    t = 0.0
    for tok in proc.stdout.split():
        if ":" not in tok:
            continue
        lab, _, end_s = tok.rpartition(":")
        try:
            end = float(end_s)
        except ValueError:
            continue
        raw.append((lab, t, end))
        t = end
    if not raw:
        raise TTSError(f"flite printed no phone timings for {text[:40]!r}")
    phones = _clip_timeline(to_arpabet(raw, "flite"), len(audio) / SR)
    return Speech(audio, phones, {"stretch": round(stretch, 3), "f0_shift": round(f0_shift, 3)})


def speak(voice: Voice, text: str, rng: np.random.Generator) -> Speech:
    """Say ``text`` with ``voice``, jittering its prosody a little per call (from ``rng``)."""
    p = voice.params
    if voice.engine == "espeak":
        rate = int(np.clip(p.get("rate", 175) * rng.uniform(0.9, 1.1), 80, 450))
        pitch = int(np.clip(p.get("pitch", 50) + rng.integers(-6, 7), 0, 99))
        range_ = int(np.clip(p.get("range", 50) + rng.integers(-10, 11), 0, 99))
        return speak_espeak(voice.name, text, rate, pitch, range_)
    if voice.engine == "flite":
        stretch = float(p.get("stretch", 1.0) * rng.uniform(0.92, 1.08))
        f0 = float(p.get("f0_shift", 1.0) * rng.uniform(0.95, 1.05))
        return speak_flite(voice.name, text, stretch, f0)
    raise TTSError(f"unknown engine {voice.engine!r}")
