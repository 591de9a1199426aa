"""Text-to-speech voices with exact phone timings, at 16 kHz, on one ARPAbet timeline.

Three engines:

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

import functools
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import espeak as _espeak
from ..phonemes import espeak_to_arpabet, to_arpabet

SR = 16000
FLITE_VOICES = {"slt": "F", "awb": "M", "rms": "M"}
#: English festival voices from Debian main (packages festvox-kallpc16k, festvox-kdlpc16k,
#: festvox-us-slt-hts) -> gender. Non-free MBROLA voices are not used.
FESTIVAL_VOICES = {"kal_diphone": "M", "ked_diphone": "M", "cmu_us_slt_arctic_hts": "F"}
FESTIVAL_PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"


@dataclass(frozen=True)
class Voice:
    """A speaker of the corpus: engine + voice, with its own default prosody."""

    id: str  # speaker id in the dataset, e.g. "espeak:en-gb-scotland+m3", "flite:slt"
    engine: str  # "espeak" | "flite" | "festival"
    name: str  # espeak voice file + variant ("gmw/en-GB-scotland+m3"), flite ("slt") or festival voice
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    language: str = "en"  # base language code: which of espeak-ng's phoneme rewrites apply


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


def speak_espeak(voice: str, text: str, rate: int, pitch: int, range_: int, language: str = "en") -> Speech:
    syn = _espeak.get().synth(text, voice, rate=rate, pitch=pitch, range_=range_)
    audio = _resample(syn.audio, syn.sample_rate)
    dur = len(audio) / SR
    phones = _clip_timeline(espeak_to_arpabet(syn.phonemes, language), dur)
    return Speech(audio, phones, {"rate": rate, "pitch": pitch, "range": range_})


def _run_tool(cmd: list[str], what: str, install: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a TTS command line; a missing program or a failure is a :class:`TTSError`."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise TTSError(f"{what} is not installed (Debian: apt install {install})") from exc
    except subprocess.TimeoutExpired as exc:
        raise TTSError(f"{what} took longer than {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise TTSError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc


def _read_audio(path: str) -> np.ndarray:
    """A TTS output file -> mono float32 at :data:`SR`."""
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(1)
    return _resample(audio, sr)


def _from_ends(ends: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """(label, end time) in order -> (label, start, end), each phone starting where the last ended."""
    raw: list[tuple[str, float, float]] = []
    t = 0.0
    for lab, end in ends:
        raw.append((lab, t, end))
        t = end
    return raw


def speak_flite(voice: str, text: str, stretch: float, f0_shift: float) -> Speech:
    """flite clustergen voice; ``stretch`` > 1 speaks slower, ``f0_shift`` scales pitch."""
    with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
        path = os.path.join(tmp, "out.wav")
        proc = _run_tool(
            ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}",
             "--setf", f"f0_shift={f0_shift:.3f}", "-psdur", "-t", text, "-o", path],
            "flite", "flite")
        audio = _read_audio(path)
    ends: list[tuple[str, float]] = []
    for tok in proc.stdout.split():
        if ":" not in tok:
            continue
        lab, _, end_s = tok.rpartition(":")
        try:
            ends.append((lab, float(end_s)))
        except ValueError:
            continue
    if not ends:
        raise TTSError(f"flite printed no phone timings for {text[:40]!r}")
    phones = _clip_timeline(to_arpabet(_from_ends(ends), "flite"), len(audio) / SR)
    return Speech(audio, phones, {"stretch": round(stretch, 3), "f0_shift": round(f0_shift, 3)})


# Festival, driven by a Scheme script: select the voice, set the duration stretch (HTS: its
# speaking rate), scale the F0 targets just before waveform synthesis (after_analysis_hooks),
# synthesise, write the Segment relation's end times and the wave, print what was used.
_FESTIVAL_SCRIPT = r"""
(load (path-append datadir "init.scm"))
(define (st_scale_f0 utt)
  (mapcar (lambda (tg) (item.set_feat tg "f0" (* st_f0 (item.feat tg "f0"))))
          (utt.relation.items utt 'Target))
  utt)
(define (st_say voice text stretch f0 segs wav)
  (if (not (member_string voice (voice.list)))
      (begin (format t "ST_NO_VOICE %l\n" (voice.list)) (quit)))
  (eval (list (intern (string-append "voice_" voice))))
  (Parameter.set 'Duration_Stretch stretch)
  (set! st_f0 f0)
  (set! st_hts (string-equal (Parameter.get 'Synth_Method) "HTS"))
  (if st_hts
      (set! hts_engine_params
            (append hts_engine_params (list (list "-r" (/ 1.0 stretch))))))
  (set! after_analysis_hooks
        (append (if (consp after_analysis_hooks) after_analysis_hooks
                    (if after_analysis_hooks (list after_analysis_hooks) nil))
                (list st_scale_f0)))
  (set! st_utt (eval (list 'Utterance 'Text text)))
  (utt.synth st_utt)
  (utt.save.segs st_utt segs)
  (utt.save.wave st_utt wav 'riff)
  (format t "ST_OK %s %s\n" (if st_hts "hts" "other")
          (cadr (assoc 'name (PhoneSet.description '(name))))))
"""


def _scm(s: str) -> str:
    """``s`` as a Scheme string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scm_text(text: str) -> str:
    """Text to say as one line of a Scheme string literal (backslashes are not spoken: dropped)."""
    return _scm(" ".join(text.replace("\\", " ").split()))


def _festival(script_body: str, tmp: str, timeout: float = 120) -> str:
    path = os.path.join(tmp, "say.scm")
    with open(path, "w", encoding="utf-8") as f:
        f.write(_FESTIVAL_SCRIPT + script_body + "\n")
    return _run_tool(["festival", "--script", path], "festival", FESTIVAL_PACKAGES, timeout).stdout


@functools.lru_cache(maxsize=1)
def festival_voices() -> tuple[str, ...]:
    """Voices the installed festival knows (empty when festival is not installed)."""
    try:
        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            out = _festival('(format t "ST_VOICES %l\n" (voice.list))', tmp, timeout=60)
    except TTSError:
        return ()
    m = re.search(r"ST_VOICES \((.*)\)", out)
    return tuple(sorted(m.group(1).split())) if m else ()


def speak_festival(voice: str, text: str, stretch: float, f0_shift: float) -> Speech:
    """festival voice; ``stretch`` > 1 speaks slower, ``f0_shift`` scales pitch (not HTS voices)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", voice):
        raise TTSError(f"festival voice names are letters, digits and '_': {voice!r}")
    with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
        segs, wav = os.path.join(tmp, "out.segs"), os.path.join(tmp, "out.wav")
        out = _festival(f'(st_say "{voice}" {_scm_text(text)} {stretch:.4f} {f0_shift:.4f} '
                        f'{_scm(segs)} {_scm(wav)})', tmp)
        if "ST_NO_VOICE" in out:
            have = out.split("ST_NO_VOICE", 1)[1].strip()
            raise TTSError(f"festival has no voice {voice!r} (installed: {have}; "
                           f"Debian: apt install {FESTIVAL_PACKAGES})")
        m = re.search(r"ST_OK (\S+) (\S+)", out)
        if not m or not os.path.exists(wav) or not os.path.exists(segs):
            raise TTSError(f"festival synthesised nothing for {text[:40]!r}: {out.strip()[-300:]}")
        hts, phoneset = m.group(1) == "hts", m.group(2)
        audio = _read_audio(wav)
        with open(segs, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    ends: list[tuple[str, float]] = []
    for line in lines[lines.index("#") + 1:] if "#" in lines else lines:
        parts = line.split()
        if len(parts) >= 3:
            ends.append((parts[2], float(parts[0])))
    if not ends:
        raise TTSError(f"festival wrote no phone timings for {text[:40]!r}")
    engine = "festival-mrpa" if phoneset == "mrpa" else "festival"
    phones = _clip_timeline(to_arpabet(_from_ends(ends), engine), len(audio) / SR)
    return Speech(audio, phones, {"stretch": round(stretch, 3),
                                  "f0_shift": 1.0 if hts else round(f0_shift, 3)})


def speak(voice: Voice, text: str, rng: np.random.Generator) -> Speech:
    """Say ``text`` with ``voice``, jittering its prosody a little per call (from ``rng``)."""
    p = voice.params
    if voice.engine == "espeak":
        rate = int(np.clip(p.get("rate", 175) * rng.uniform(0.9, 1.1), 80, 450))
        pitch = int(np.clip(p.get("pitch", 50) + rng.integers(-6, 7), 0, 99))
        range_ = int(np.clip(p.get("range", 50) + rng.integers(-10, 11), 0, 99))
        return speak_espeak(voice.name, text, rate, pitch, range_, voice.language)
    if voice.engine == "flite":
        stretch = float(p.get("stretch", 1.0) * rng.uniform(0.92, 1.08))
        f0 = float(p.get("f0_shift", 1.0) * rng.uniform(0.95, 1.05))
        return speak_flite(voice.name, text, stretch, f0)
    if voice.engine == "festival":
        stretch = float(p.get("stretch", 1.0) * rng.uniform(0.92, 1.08))
        f0 = float(p.get("f0_shift", 1.0) * rng.uniform(0.95, 1.05))
        return speak_festival(voice.name, text, stretch, f0)
    raise TTSError(f"unknown engine {voice.engine!r}")
