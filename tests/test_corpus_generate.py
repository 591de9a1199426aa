"""The corpus generator end to end: real TTS, real files, the dataset format, val split, seed, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference_core.data.corpus import build as corpus
from inference_core.data.format import Dataset, frames_for

ROOT = Path(__file__).resolve().parents[1]


def _plan(**kw):
    args = dict(seed=0, n_voices=6, n_val=3, augment_p=0.5)
    args.update(kw)
    return corpus.make_plan(**args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    corpus.generate(out, 0.8, _plan(), workers=2, progress=False)
    return out


def test_tiny_corpus_is_a_readable_dataset(tiny):
    ds = Dataset(tiny)
    assert ds.fps == 30 and ds.sample_rate == 16000 and len(ds.channels) == 52
    entries = ds.entries()
    assert sum(e["seconds"] for e in entries) >= 0.8 * 60
    for e in entries:
        u = ds.load(e)
        assert u.audio.dtype == np.float32 and np.abs(u.audio).max() <= 1.0
        assert u.motion.shape == (frames_for(len(u.audio), 16000, 30), 52)
        assert 0.0 <= u.motion.min() and u.motion.max() <= 1.0
        start, end = u.extra["phonemes_start"], u.extra["phonemes_end"]
        assert len(u.extra["phonemes"]) == len(start) == len(end)
        assert np.all(np.diff(start) >= 0) and np.all(end >= start)
        assert end[-1] == pytest.approx(len(u.audio) / 16000, abs=1e-3)
        assert e["engine"] in ("espeak", "flite") and isinstance(e["augment"], list)
        assert 1.0 < e["seconds"] <= 36.0


def test_val_split_holds_out_whole_voices_and_variants(tiny):
    ds = Dataset(tiny)
    train, val = set(ds.speakers("train")), set(ds.speakers("val"))
    assert train and not (train & val)
    plan = _plan()
    planned_val = {v.id for v in plan.val}
    assert val <= planned_val and not ({v.id for v in plan.train} & planned_val)
    val_variants = {v.id.split("+")[1] for v in plan.val if "+" in v.id}
    assert not any(v.id.split("+")[-1] in val_variants for v in plan.train if "+" in v.id)
    # a flite voice is held out too, so val covers both engines
    assert any(v.engine == "flite" for v in plan.val)


def test_generation_is_deterministic_whatever_the_workers(tiny, tmp_path):
    out = tmp_path / "again"
    corpus.generate(out, 0.3, _plan(), workers=1, progress=False)
    a, b = Dataset(tiny), Dataset(out)
    ids = [e["id"] for e in b.entries()]
    assert ids == [e["id"] for e in a.entries()][: len(ids)]
    for e in b.entries():
        ua, ub = a.load(next(x for x in a.entries() if x["id"] == e["id"])), b.load(e)
        np.testing.assert_array_equal(ua.audio, ub.audio)
        np.testing.assert_array_equal(ua.motion, ub.motion)
        assert ua.speaker == ub.speaker
    other = tmp_path / "seed1"
    corpus.generate(other, 0.1, _plan(seed=1), workers=1, progress=False)
    c = Dataset(other)
    assert not np.array_equal(c.load(c.entries()[0]).audio[:1000], b.load(b.entries()[0]).audio[:1000])


def test_resume_skips_what_is_written(tmp_path):
    out = tmp_path / "resume"
    corpus.generate(out, 0.2, _plan(), workers=1, progress=False)
    first = Dataset(out).entries()
    stamps = {e["id"]: (out / e["file"]).stat().st_mtime_ns for e in first}
    stats = corpus.generate(out, 0.5, _plan(), workers=1, progress=False)
    later = Dataset(out).entries()
    assert [e["id"] for e in later[: len(first)]] == [e["id"] for e in first]
    assert len(later) > len(first) and stats["minutes"] >= 0.5
    assert all((out / e["file"]).stat().st_mtime_ns == stamps[e["id"]] for e in first)
    # a rerun with nothing left to do writes nothing
    stats = corpus.generate(out, 0.5, _plan(), workers=1, progress=False)
    assert stats["new_minutes"] == 0 and len(Dataset(out).entries()) == len(later)


def test_cli_writes_corpus_and_rejects_bad_arguments(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "inference_core", "corpus", "--out", str(out),
                           "--minutes", "0.1", "--voices", "4", "--val-voices", "2", "--workers", "1",
                           "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["utterances"] >= 1 and Path(stats["out"]) == out
    bad = subprocess.run([sys.executable, "-m", "inference_core", "corpus", "--out", str(out),
                          "--augment", "2"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode != 0 and "--augment" in bad.stderr
    lang = subprocess.run([sys.executable, "-m", "inference_core.data.corpus.build", "--out", str(out),
                           "--langs", "de"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert lang.returncode != 0 and "--text" in lang.stderr


def test_other_language_from_a_text_file(tmp_path):
    text = tmp_path / "de.txt"
    text.write_text("Guten Morgen, wie geht es dir?\nDie Katze schläft auf dem Sofa.\n", encoding="utf-8")
    plan = corpus.make_plan(seed=0, n_voices=3, n_val=1, langs="de", text_file=str(text), augment_p=0.0)
    assert all(v.engine == "espeak" for v in plan.voices)
    utt = corpus.make_utterance(plan, 0)
    assert utt.motion.shape[0] == frames_for(len(utt.audio), 16000, 30)
    assert utt.extra["text"].split(".")[0].split("?")[0] in text.read_text(encoding="utf-8")
    assert {"m", "sil"} & set(utt.extra["phonemes"].tolist())


def test_demo_clip(tmp_path):
    import soundfile as sf

    info = corpus.demo_clip(tmp_path / "demo.flac")
    audio, sr = sf.read(info["path"])
    assert sr == 16000 and audio.ndim == 1 and 10.0 <= len(audio) / sr <= 16.0
    assert info["voice"] in {v.id for v in corpus.make_plan(seed=0).val}
    assert info["bytes"] < 300_000


def test_tuning_voices_are_unseen_and_speak_other_sentences(tmp_path):
    main, tune = _plan(), _plan(n_tune=3)
    train_ids = {v.id for v in main.train}
    val_variants = {v.id.split("+")[-1] for v in main.val if "+" in v.id}
    assert [v.id for v in tune.train] == [v.id for v in main.train]  # same training set
    assert len(tune.val) == 3 and tune.heldout == "tune"
    for v in tune.val:
        assert v.id not in train_ids and v.id.split("+")[-1] not in val_variants
    # every utterance of a tuning plan is spoken by a tuning voice, with its own text
    for i in range(4):
        voice, split = corpus.voice_for(tune, i)
        assert split == "tune" and voice in tune.val
    u_main, u_tune = corpus.make_utterance(main, 0), corpus.make_utterance(tune, 0)
    assert u_tune.split == "tune" and u_main.extra["text"] != u_tune.extra["text"]
