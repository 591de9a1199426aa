"""Phoneme timeline → ARKit motion: closures close, rounding rounds, spreading spreads, blinks blink."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference_core.shared.channels import ARKIT_52
from inference_core.data.corpus import tts
from inference_core.data.articulation import Style, articulate, critically_damped, style_for
from inference_core.data.format import frames_for
from inference_core.data.phonemes import frame_classes

SR, FPS = 16000, 30
C = {n: i for i, n in enumerate(ARKIT_52)}
ICT = Path(__file__).resolve().parents[2] / "shared" / "assets" / "ict_face" / "ict_face_arkit.npz"
TEXT = ("Bob and Pam moved the big blue boots. Who would view five fine violins? "
        "We see three green bees, Peter. Mama made maple muffins.")


@pytest.fixture(scope="module", params=[(150, "gmw/en-US+f3"), (330, "gmw/en+m3")], ids=["normal", "fast"])
def spoken(request):
    rate, voice = request.param
    sp = tts.speak_espeak(voice, TEXT, rate, 50, 50)
    motion = articulate(sp.phones, sp.audio, SR, FPS, Style(), np.random.default_rng(0))
    labels, masks = frame_classes([p[0] for p in sp.phones], [p[1] for p in sp.phones],
                                  [p[2] for p in sp.phones], len(motion), FPS)
    return sp, motion, labels, masks


def _mid_frames(sp, members):
    return [int(round((s + e) / 2 * FPS - 0.5)) for lab, s, e in sp.phones if lab in members]


def test_shape_range_and_determinism(spoken):
    sp, motion, _, _ = spoken
    assert motion.shape == (frames_for(len(sp.audio), SR, FPS), 52)
    assert motion.dtype == np.float32 and motion.min() >= 0 and motion.max() <= 1
    again = articulate(sp.phones, sp.audio, SR, FPS, Style(), np.random.default_rng(0))
    np.testing.assert_array_equal(motion, again)
    other = articulate(sp.phones, sp.audio, SR, FPS, Style(), np.random.default_rng(1))
    assert not np.array_equal(motion, other)  # blinks/gaze differ with the seed
    np.testing.assert_allclose(motion[:, C["jawOpen"]], other[:, C["jawOpen"]])  # the mouth does not


def test_bilabials_close_the_lips(spoken):
    sp, m, _, _ = spoken
    mids = _mid_frames(sp, {"p", "b", "m"})
    assert len(mids) >= 10
    jaw, close = m[mids, C["jawOpen"]], m[mids, C["mouthClose"]]
    # mouthClose compensates the jaw (ARKit semantics) and the lip-opening channels are off
    assert np.all(close >= 0.7 * jaw - 1e-6)
    assert np.all(m[mids, C["mouthLowerDownLeft"]] < 0.02)
    assert np.all(m[mids, C["mouthFunnel"]] < 0.02)
    assert np.median(m[mids, C["mouthPressLeft"]]) > 0.15
    assert np.median(jaw) < 0.2


@pytest.mark.skipif(not ICT.exists(), reason="ICT FaceKit asset not beside the project")
def test_lip_gap_on_a_real_rig(spoken):
    from inference_core.training.evaluate import ArkitFace

    sp, m, _, masks = spoken
    gap = ArkitFace(ICT).lip_gap_mm(m)
    mids = _mid_frames(sp, {"p", "b", "m"})
    assert np.mean(gap[mids] < 1.5) >= 0.9  # sealed (neutral face: 0.8 mm)
    assert np.median(gap[masks["open"]]) > 8.0  # and open on open vowels


def test_rounding_spreading_labiodental(spoken):
    sp, m, _, masks = spoken
    rnd = m[:, C["mouthFunnel"]] + m[:, C["mouthPucker"]]
    uw = _mid_frames(sp, {"uw", "w"})
    assert np.median(rnd[uw]) > 0.5 and np.median(rnd[uw]) > 3 * np.median(rnd[masks["spread"]])
    spread = m[:, C["mouthStretchLeft"]] + m[:, C["mouthSmileLeft"]]
    iy = _mid_frames(sp, {"iy"})
    assert np.median(spread[iy]) > 0.3 and np.median(spread[iy]) > 2 * np.median(spread[uw])
    fv = _mid_frames(sp, {"f", "v"})
    assert np.median(m[fv, C["mouthRollLower"]]) > 0.3
    aa = masks["open"]
    # fast speech reduces jaw excursion (as people do): ask less of it
    vowel_ms = np.median([e - s for lab, s, e in sp.phones if lab in {"aa", "ae", "ah", "ay"}]) * 1000
    ratio = 1.6 if vowel_ms > 70 else 1.3
    assert m[aa, C["jawOpen"]].mean() > ratio * m[_mid_frames(sp, {"p", "b", "m"}), C["jawOpen"]].mean()


def test_coarticulation_anticipates_rounding():
    """The /k/ of 'coo' is rounded, the /k/ of 'key' is not: lips anticipate the vowel."""
    phones = [("sil", 0, 0.3), ("k", 0.3, 0.38), ("uw", 0.38, 0.6), ("sil", 0.6, 1.0),
              ("k", 1.0, 1.08), ("iy", 1.08, 1.3), ("sil", 1.3, 1.7)]
    audio = np.random.default_rng(0).standard_normal(int(1.7 * SR)).astype(np.float32) * 0.1
    m = articulate(phones, audio, SR, FPS, Style(), np.random.default_rng(0))
    k1, k2 = int(0.34 * FPS), int(1.04 * FPS)
    assert m[k1, C["mouthPucker"]] > 0.2 > m[k2, C["mouthPucker"]]
    assert m[k2, C["mouthStretchLeft"]] > m[k1, C["mouthStretchLeft"]] + 0.1
    # smooth: no frame-to-frame jump of the jaw bigger than a physiological step
    assert np.abs(np.diff(m[:, C["jawOpen"]])).max() < 0.15


def test_louder_vowels_open_wider():
    phones = [("sil", 0, 0.2), ("aa", 0.2, 0.5), ("sil", 0.5, 1.0), ("aa", 1.0, 1.3), ("sil", 1.3, 1.6)]
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(int(1.6 * SR)).astype(np.float32) * 0.01
    audio[int(0.2 * SR): int(0.5 * SR)] *= 20  # first vowel 26 dB louder
    m = articulate(phones, audio, SR, FPS, Style(), rng)
    assert m[int(0.35 * FPS), C["jawOpen"]] > 1.3 * m[int(1.15 * FPS), C["jawOpen"]]


def test_blinks_at_a_natural_rate():
    dur = 240.0
    phones = [("sil", 0.0, dur)]
    audio = np.zeros(int(dur * SR), np.float32)
    style = Style(blink_rate=17.0)
    m = articulate(phones, audio, SR, FPS, style, np.random.default_rng(3))
    lid = m[:, C["eyeBlinkLeft"]]
    closed = lid > 0.6
    onsets = np.flatnonzero(closed[1:] & ~closed[:-1])
    per_min = len(onsets) / (dur / 60)
    assert 10 <= per_min <= 26
    # each blink is short (about 100-250 ms above half closure)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, (lid > 0.5).astype(int), 0])))[::2]
    assert np.median(runs) / FPS < 0.25
    assert lid.min() < 0.2  # eyes open between blinks
    # gaze moves (saccades), but stays small
    look = m[:, C["eyeLookOutLeft"]] + m[:, C["eyeLookInLeft"]]
    assert look.std() > 0.01 and look.max() < 0.6


def test_brows_follow_questions():
    sp = tts.speak_espeak("gmw/en-US", "Would you really move the piano tomorrow?", 170, 50, 60)
    dur = len(sp.audio) / SR
    style = Style(brow_activity=1.0)
    q = articulate(sp.phones, sp.audio, SR, FPS, style, np.random.default_rng(0), questions=[(0.0, dur)])
    s = articulate(sp.phones, sp.audio, SR, FPS, style, np.random.default_rng(0))
    tail = slice(int((dur - 0.5) * FPS), None)
    assert q[tail, C["browInnerUp"]].max() > s[tail, C["browInnerUp"]].max() + 0.1


def test_style_is_per_voice_and_seeded():
    a, b = style_for("espeak:en-us+f3", 0), style_for("espeak:en-us+f3", 0)
    assert a == b
    assert style_for("espeak:en-us+m3", 0) != a and style_for("espeak:en-us+f3", 1) != a


def test_critically_damped_has_no_overshoot():
    u = np.r_[np.zeros(50), np.ones(200)]
    y = critically_damped(u, 2 * np.pi * 5, 1 / 200)
    assert y.max() <= 1.0 + 1e-9 and y[-1] > 0.99 and np.all(np.diff(y) >= -1e-12)
