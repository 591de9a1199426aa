"""TTS front end of the corpus: real espeak-ng / flite / festival, real audio, timings checked against the signal."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference_core.data.corpus import build as corpus, espeak, tts
from inference_core.data.format import Dataset, frames_for
from inference_core.data.phonemes import (INVENTORY, frame_classes, map_espeak, map_festival, map_festival_mrpa,
                                          map_flite, to_arpabet)

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
_FESTIVAL_MISSING = sorted(set(tts.FESTIVAL_VOICES) - set(tts.festival_voices()))
needs_festival = pytest.mark.skipif(
    bool(_FESTIVAL_MISSING),
    reason=f"festival voices {_FESTIVAL_MISSING} not installed (scripts/setup_system.sh installs them: "
           f"apt install {tts.FESTIVAL_PACKAGES})")


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


@needs_festival
@pytest.mark.parametrize("voice", sorted(tts.FESTIVAL_VOICES))
def test_festival_timeline_matches_the_signal(voice):
    sp = tts.speak_festival(voice, "Maybe we should move the blue boat. Five violins played.", 1.0, 1.0)
    assert sp.audio.dtype == np.float32 and sp.audio.ndim == 1
    _check_timeline(sp)
    labels = [lab for lab, _, _ in sp.phones]
    assert labels[:3] == ["sil", "m", "ey"] and labels[-2:] == ["d", "sil"]
    # the pause between the sentences falls where festival says it does: quiet, as is the lead-in
    inner = [(s, e) for lab, s, e in sp.phones[1:-1] if lab == "sil"]
    assert len(inner) == 1 and 1.0 < inner[0][0] < 0.6 * sp.phones[-1][2]
    vowels = {"ey", "iy", "uw", "ow", "ay", "ah", "ax", "aa"}
    loud = _segment_energy(sp, vowels)
    assert _segment_energy(sp, {"sil"}) < 0.05 * loud
    s, e = inner[0]
    assert _rms(sp.audio[int(s * SR): int(e * SR)]) < 0.05 * loud
    # slower speech really is slower, and the timeline follows it
    slow = tts.speak_festival(voice, "Maybe we should move the blue boat.", 1.3, 1.0)
    fast = tts.speak_festival(voice, "Maybe we should move the blue boat.", 0.8, 1.0)
    assert len(slow.audio) > 1.3 * len(fast.audio)
    assert slow.phones[-1][2] > 1.3 * fast.phones[-1][2]
    assert [p[0] for p in slow.phones] == [p[0] for p in fast.phones]
    # pitch: the diphone voices move F0 with the same timeline; festival's HTS engine cannot
    high = tts.speak_festival(voice, "Maybe we should move the blue boat.", 1.0, 1.25)
    base = tts.speak_festival(voice, "Maybe we should move the blue boat.", 1.0, 1.0)
    assert [p[0] for p in high.phones] == [p[0] for p in base.phones]
    assert [p[1] for p in high.phones] == pytest.approx([p[1] for p in base.phones], abs=0.02)
    if voice.endswith("_hts"):
        assert high.settings["f0_shift"] == 1.0
    else:
        assert high.settings["f0_shift"] == 1.25
        assert _pitch(high) == pytest.approx(1.25 * _pitch(base), rel=0.1)


def _pitch(sp: tts.Speech) -> float:
    """Median F0 (Hz) over the middles of the vowels, from the autocorrelation peak."""
    f0 = []
    for lab, s, e in sp.phones:
        if lab not in {"ey", "iy", "uw", "ow", "ax", "aa", "ay"} or e - s < 0.05:
            continue
        mid = int((s + e) / 2 * SR)
        x = sp.audio[mid - 400: mid + 400].astype(np.float64) * np.hanning(800)
        ac = np.correlate(x, x, "full")[len(x) - 1:]
        lo, hi = SR // 400, SR // 60
        f0.append(SR / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0))


@needs_festival
def test_festival_unknown_voice_and_quoted_text():
    with pytest.raises(tts.TTSError, match="festival has no voice 'no_such_voice'.*kal_diphone"):
        tts.speak_festival("no_such_voice", "hello", 1.0, 1.0)
    with pytest.raises(tts.TTSError, match="letters, digits"):
        tts.speak_festival('kal"; (system "x")', "hello", 1.0, 1.0)
    sp = tts.speak_festival("kal_diphone", 'He said "no\\ way" today.', 1.0, 1.0)
    _check_timeline(sp)  # quotes and backslashes reach festival as text, never as Scheme
    assert "d" in [p[0] for p in sp.phones[-3:]]


def test_default_plan_is_unchanged_by_the_festival_option():
    """The default plan is the bundled model's corpus: festival is opt-in and only adds voices."""
    def key(plan: corpus.Plan) -> tuple:
        return ([(v.id, v.engine, v.name, v.params) for v in plan.train],
                [(v.id, v.engine, v.name, v.params) for v in plan.val],
                [plan.voices[k].id for k in plan.slots], plan.augment, plan.heldout, plan.salt)

    default = corpus.make_plan()
    assert key(default) == key(corpus.make_plan(use_festival=False))
    assert not any(v.engine == "festival" for v in default.voices)
    # the voices the bundled model was trained and validated on (its model card)
    card = json.loads((ROOT / "inference_core/models/streamingtalker_arkit.json").read_text())
    def tts_ids(ids):  # the card also lists the real-speech speakers of the later training stage
        return {i for i in ids if i.startswith(("espeak:", "flite:"))}

    assert {v.id for v in default.train} == tts_ids(card["styles"])
    assert {v.id for v in default.val} == tts_ids(card["training"]["val_speakers"])
    if _FESTIVAL_MISSING:
        return
    fest = corpus.make_plan(use_festival=True)
    added = fest.train[len(default.train):]
    assert [(v.id, v.params) for v in fest.train[: len(default.train)]] == [(v.id, v.params) for v in default.train]
    assert [(v.id, v.params) for v in fest.val] == [(v.id, v.params) for v in default.val]
    assert sorted(v.id for v in added) == sorted(f"festival:{n}" for n in tts.FESTIVAL_VOICES)
    assert all(v.engine == "festival" for v in added)
    counts = collections.Counter(fest.voices[k].id for k in fest.slots)
    counts.subtract(collections.Counter(default.voices[k].id for k in default.slots))
    assert +counts == {v.id: 8 for v in added}  # weighted like flite, nothing else changed


@needs_festival
def test_tiny_corpus_with_festival_voices(tmp_path):
    out = tmp_path / "fest"
    assert corpus.main(["--out", str(out), "--minutes", "0.3", "--voices", "1", "--val-voices", "1",
                        "--no-flite", "--festival", "--workers", "1", "--quiet"]) == 0
    ds = Dataset(out)
    fest = [e for e in ds.entries() if e["engine"] == "festival"]
    assert fest and all(e["split"] == "train" for e in fest)
    assert any(v["engine"] == "festival" for v in ds.meta["voices"].values())
    for e in fest:
        u = ds.load(e)
        assert u.motion.shape == (frames_for(len(u.audio), SR, 30), 52)
        assert set(u.extra["phonemes"]) <= set(INVENTORY)
        assert u.extra["phonemes_end"][-1] == pytest.approx(len(u.audio) / SR, abs=1e-3)


def test_phoneme_maps():
    assert map_espeak("_:") == ("sil",)
    assert map_espeak("oU") == ("ow",) and map_espeak("u:") == ("uw",) and map_espeak("i:") == ("iy",)
    assert map_espeak("aI@") == ("ay", "ax")
    assert map_espeak("tS") == ("ch",) and map_espeak("T") == ("th",) and map_espeak("j") == ("y",)
    assert map_espeak("y:") == ("uw",)  # other languages: judged by the leading symbol
    assert map_flite("pau") == ("sil",) and map_flite("ax") == ("ax",)
    assert map_festival("pau") == ("sil",) and map_festival("axr") == ("er",) and map_festival("dx") == ("dx",)
    assert map_festival("el") == ("ax", "l") and map_festival("hv") == ("hh",) and map_festival("ey") == ("ey",)
    assert map_festival_mrpa("uh") == ("ah",) and map_festival_mrpa("u") == ("uh",)  # mrpa spells them apart
    assert map_festival_mrpa("#") == ("sil",) and map_festival_mrpa("@@") == ("er",)
    assert map_festival_mrpa("ii") == ("iy",) and map_festival_mrpa("ch") == ("ch",)
    assert to_arpabet([("axr", 0.0, 0.1), ("el", 0.1, 0.3)], "festival") == \
        [("er", 0.0, 0.1), ("ax", 0.1, pytest.approx(0.2)), ("l", pytest.approx(0.2), 0.3)]
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


def test_other_languages_speak_with_their_phoneme_rewrites(tmp_path):
    """A Spanish corpus voice maps espeak's intervocalic [β] to the bilabial b (the lips close),
    not to the English map's labiodental v; the plan gives each espeak voice its language."""
    from inference_core.data.corpus.build import make_plan
    from inference_core.data.corpus.tts import speak

    texts = tmp_path / "es.txt"
    texts.write_text("La abuela cabe en el barco.\n", encoding="utf-8")
    plan = make_plan(seed=0, n_voices=4, n_val=1, langs="es", use_flite=False, text_file=str(texts))
    voice = plan.train[0]
    assert voice.language == "es" and voice.engine == "espeak"
    sp = speak(voice, "La abuela cabe en el barco.", np.random.default_rng(0))
    labels = [p for p, _, _ in sp.phones]
    assert labels.count("b") >= 3 and "v" not in labels, labels
    assert make_plan(seed=0, n_voices=4, n_val=1).train[0].language == "en"
