"""TTS front end of the corpus: real espeak-ng / flite, real audio, timings checked against the signal."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from inference_core.data import espeak, tts
from inference_core.data.phonemes import INVENTORY, frame_classes, map_espeak, map_flite, to_arpabet

SR = 16000


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def _check_timeline(sp: tts.Speech) -> None:
    dur = len(sp.audio) / SR
    assert sp.phones[0][1] == pytest.approx(0.0, abs=1e-6)
    assert sp.phones[-1][2] == pytest.approx(dur, abs=1e-6)
    for (_, s0, e0), (_, s1, e1) in zip(sp.phones, sp.phones[1:]):
        assert s0 < e0 and e0 == pytest.approx(s1, abs=1e-6)  # contiguous, monotonic
    assert {p[0] for p in sp.phones} <= set(INVENTORY)


def _segment_energy(sp: tts.Speech, labels: set[str]) -> float:
    parts = [sp.audio[int(s * SR): int(e * SR)] for lab, s, e in sp.phones if lab in labels]
    return _rms(np.concatenate(parts)) if parts else 0.0


def test_espeak_raw_events_are_monotonic_and_cover_the_audio():
    syn = espeak.get().synth("Hello, my people. Put the big map back!", "gmw/en-US+f3")
    assert syn.sample_rate == 22050 and syn.audio.dtype == np.float32
    starts = [s for _, s, _ in syn.phonemes]
    assert starts == sorted(starts)
    assert syn.phonemes[-1][2] == pytest.approx(len(syn.audio) / syn.sample_rate)
    names = [p for p, _, _ in syn.phonemes]
    assert "m" in names and "p" in names and "b" in names


def test_espeak_timeline_matches_the_signal():
    """Real alignment check: pauses are quiet, vowels loud, stop closures of /p b/ quieter than vowels."""
    sp = tts.speak_espeak("gmw/en-US", "Bob, put a paper bag by the pub. Wow!", 175, 50, 50)
    _check_timeline(sp)
    vowels = {"aa", "ae", "ah", "ao", "aw", "ay", "eh", "ey", "ih", "iy", "ow", "uh", "uw", "ax"}
    loud = _segment_energy(sp, vowels)
    assert _segment_energy(sp, {"sil"}) < 0.05 * loud
    assert _segment_energy(sp, {"p", "b"}) < 0.5 * loud


def test_espeak_unknown_voice_is_a_clear_error():
    with pytest.raises(espeak.EspeakError, match="no voice"):
        espeak.get().synth("hello", "no-such-voice+zz")


def test_voice_lists():
    langs = espeak.list_languages("en")
    assert "en-us" in langs and "en-gb-scotland" in langs and len(langs) >= 6
    assert not any(f.startswith("mb/") for f in langs.values())  # MBROLA stays out
    variants = espeak.list_variants()
    assert {"m3", "f2", "klatt2", "croak", "whisper"} <= set(variants)


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_flite_timeline_matches_the_signal():
    sp = tts.speak_flite("slt", "Maybe we should move the blue boat. Five violins played.", 1.0, 1.0)
    _check_timeline(sp)
    assert sum(lab == "sil" for lab, _, _ in sp.phones) >= 2
    vowels = {"ey", "iy", "uw", "ow", "ay", "ah", "ax", "aa"}
    assert _segment_energy(sp, {"sil"}) < 0.05 * _segment_energy(sp, vowels)
    # slower speech really is slower, and the timeline follows it
    slow = tts.speak_flite("slt", "Maybe we should move the blue boat.", 1.3, 1.0)
    fast = tts.speak_flite("slt", "Maybe we should move the blue boat.", 0.8, 1.0)
    assert len(slow.audio) > 1.3 * len(fast.audio)
    assert slow.phones[-1][2] > fast.phones[-1][2]


def test_phoneme_maps():
    assert map_espeak("_:") == ("sil",)
    assert map_espeak("oU") == ("ow",) and map_espeak("u:") == ("uw",) and map_espeak("i:") == ("iy",)
    assert map_espeak("aI@") == ("ay", "ax")
    assert map_espeak("tS") == ("ch",) and map_espeak("T") == ("th",) and map_espeak("j") == ("y",)
    assert map_espeak("y:") == ("uw",)  # other languages: judged by the leading symbol
    assert map_flite("pau") == ("sil",) and map_flite("ax") == ("ax",)
    merged = to_arpabet([("_:", 0.0, 0.1), ("_", 0.1, 0.2), ("@L", 0.2, 0.4)], "espeak")
    assert merged == [("sil", 0.0, 0.2), ("ax", 0.2, pytest.approx(0.3)), ("l", pytest.approx(0.3), 0.4)]


def test_frame_classes_marks_frame_centres():
    labels, masks = frame_classes(["sil", "m", "uw", "iy", "aa"], [0.0, 0.1, 0.2, 0.3, 0.4],
                                  [0.1, 0.2, 0.3, 0.4, 0.5], 17, 30)
    # frame f shows time (f + 0.5) / 30: frame 3 -> 0.117 s (m), frame 6 -> 0.217 (uw)
    assert labels[3] == "m" and labels[6] == "uw" and labels[9] == "iy" and labels[12] == "aa"
    assert labels[14] == "aa" and labels[16] == "sil"  # 0.55 s: past the last phone
    assert masks["bilabial"][3] and not masks["bilabial"][6]
    assert masks["rounded"][6] and masks["spread"][9] and masks["open"][12]
    assert masks["bilabial"].dtype == bool and masks["bilabial"].shape == (17,)
