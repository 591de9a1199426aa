"""The real-speech builder (inference_core.data.realspeech) on tiny fake Debian packages.

The packages are built here with ``dpkg-deb -b`` from espeak-ng speech encoded with ffmpeg
(G.722 for the core voices, GSM for a borrowed-transcript voice), so the whole pipeline runs
as it does on the real packages: unpack, transcripts, licences, both aligners, split, outputs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from inference_core.data.realspeech import align
from inference_core.data.realspeech import sources as src
from realspeech_fixtures import CORE_COPYRIGHT, needs_sphinx, needs_tools

ROOT = Path(__file__).resolve().parent.parent
LIP_METRICS = ROOT.parent / "shared" / "tools" / "lip_metrics.py"

EN = {"vm-intro": "Please leave your message after the tone.",
      "conf-locked": "This conference is locked.",
      "queue-thankyou": "Thank you for your patience, somebody will be with you shortly.",
      "agent-loginok": "Agent logged in.",
      "vm-goodbye": "Goodbye, and have a nice day.",
      "beep": "[this is a simple beep tone]",
      "silence/1": "(1 second of silence)",
      "yes": "Yes."}
FR = {"vm-intro": "Veuillez laisser votre message après le bip sonore.",
      "conf-locked": "Cette conférence est verrouillée.",
      "queue-thankyou": "Merci de votre patience, quelqu'un va vous répondre bientôt.",
      "agent-loginok": "Vous êtes maintenant en ligne.",
      "vm-goodbye": "Au revoir, et bonne journée.",
      "beep": "[bip]"}
ARMELLE_COPYRIGHT = """Upstream:
 Voice actor: Armelle Desjardins <armelle.asterisk@aclap.com>
 Copyright holder (2006): Michel Gutierrez <mig.asterisk@aclap.com>
 Redistribution and use, with or without modification, are permitted provided ...
"""



def _encode(audio: np.ndarray, codec: str) -> bytes:
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    args = ["-ar", "16000", "-acodec", "g722", "-f", "g722"] if codec == "g722" else \
           ["-ar", "8000", "-acodec", "libgsm", "-f", "gsm"]
    return subprocess.run(["ffmpeg", "-v", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i", "-", *args, "-"],
                          input=pcm, capture_output=True, check=True).stdout


def _speech(t: str, voice: str, rate: int) -> np.ndarray:
    syn = align.synthesize(t, voice, "en" if voice.startswith("gmw") else "fr", rate)
    lead = np.zeros(int(0.15 * src.SR))
    return np.concatenate([lead, syn.audio * 0.8, lead])


def _deb(work: Path, package: str, files: dict[str, bytes]) -> None:
    d = work / "pkgs" / package
    (d / "DEBIAN").mkdir(parents=True)
    (d / "DEBIAN" / "control").write_text(f"Package: {package}\nVersion: 1.0-test\nArchitecture: all\n"
                                          "Maintainer: tests <tests@example.org>\nDescription: test prompts\n")
    for rel, data in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (work / "debs").mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(d), str(work / "debs" / f"{package}_1.0-test_all.deb")],
                   check=True, capture_output=True)


def _transcript(lang: str, texts: dict[str, str]) -> dict[str, bytes]:
    body = f"; Core Asterisk Sounds in {lang}\n\n" + "".join(f"{n}: {t}\n" for n, t in texts.items())
    return {f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz": gzip.compress(body.encode()),
            f"usr/share/doc/asterisk-core-sounds-{lang}/copyright": CORE_COPYRIGHT.encode()}


def _prompts(folder: str, texts: dict[str, str], voice: str, codec: str, rate: int) -> dict[str, bytes]:
    files = {}
    for name, t in texts.items():
        if name == "beep":
            audio = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(int(0.8 * src.SR)) / src.SR)
        elif name.startswith("silence/"):
            audio = np.zeros(src.SR)
        elif name == "yes":
            audio = align.synthesize("Yes.", voice, "en", 400).audio[: int(0.45 * src.SR)]
        else:
            audio = _speech(t, voice, rate)
        files[f"{folder}/{name}.{codec}"] = _encode(audio, codec)
    return files


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("realspeech_debs")
    en_dir = "usr/share/asterisk/sounds/en_US_f_Allison"
    fr_dir = "usr/share/asterisk/sounds/fr_CA_f_June"
    en_audio = _prompts(en_dir, EN, "gmw/en-US+f3", "g722", 165)
    en_audio[f"{en_dir}/no-transcript.g722"] = _encode(_speech("There is no line for me.", "gmw/en-US+f3", 165), "g722")
    _deb(work, "asterisk-core-sounds-en-g722",
         {**en_audio, "usr/share/doc/asterisk-core-sounds-en-g722/copyright": CORE_COPYRIGHT.encode()})
    _deb(work, "asterisk-core-sounds-en", _transcript("en", EN))
    _deb(work, "asterisk-core-sounds-fr-g722",
         {**_prompts(fr_dir, FR, "roa/fr+f3", "g722", 160),
          "usr/share/doc/asterisk-core-sounds-fr-g722/copyright": CORE_COPYRIGHT.encode()})
    _deb(work, "asterisk-core-sounds-fr", _transcript("fr", FR))
    said = {n: t for n, t in FR.items() if n != "beep"}
    _deb(work, "asterisk-prompt-fr-armelle",
         {**_prompts("usr/share/asterisk/sounds/fr", said, "roa/fr+f4", "gsm", 135),
          "usr/share/doc/asterisk-prompt-fr-armelle/copyright": ARMELLE_COPYRIGHT.encode()})
    _fillets_debs(work)
    _tuxpaint_deb(work)
    return work / "debs"


NL_LINES = {  # level -> (small fish's line, big fish's line)
    "kor": ("Kijk eens naar die mooie schelpen.", "We moeten hier snel weg zien te komen."),
    "wrak": ("Dit schip ligt al heel lang op de bodem.", "Ik denk dat de kapitein nog ergens is."),
    "grot": ("Het is hier donker en een beetje eng.", "Pas op voor de stenen boven je hoofd."),
    "toren": ("Zullen we eerst de kleine sleutel pakken?", "Die deur gaat alleen open met kracht."),
}
FILLETS_COPYRIGHT = """Upstream Authors:
    Ivo Danihelka, Pavel Danihelka, ALTAR interactive (http://fillets.sourceforge.net)

License:
    This program is free software; you can redistribute it and/or modify it under the terms of the
    GNU General Public License as published by the Free Software Foundation; version 2 dated June, 1991.
"""


def _fillets_debs(work: Path) -> None:
    """fillets-ng-data (the dialog scripts) and fillets-ng-data-nl (the Dutch lines as Ogg Vorbis at
    22.05 kHz, stereo): both fish in four levels, and a parrot nobody may take for a fish."""
    import io

    import soundfile as sf
    import soxr

    scripts, sounds = {}, {}
    for level, (small, big) in NL_LINES.items():
        lua = ""
        for role, line, voice, rate in (("m", small, "gmw/nl+f3", 165), ("v", big, "gmw/nl+m3", 150)):
            did = f"{level}-{role}-line"
            lua += f'dialogId("{did}", "font_{"small" if role == "m" else "big"}", "English.")\ndialogStr("{line}")\n'
            audio = soxr.resample(_speech_in(line, voice, "nl", rate), 16000, 22050)
            buf = io.BytesIO()
            sf.write(buf, np.stack([audio, audio], 1), 22050, format="OGG", subtype="VORBIS")
            sounds[f"usr/share/games/fillets-ng/sound/{level}/nl/{did}.ogg"] = buf.getvalue()
        lua += 'dialogId("papegaai-x-polly", "font_parrot", "Polly.")\ndialogStr("Lorre wil een koekje.")\n'
        scripts[f"usr/share/games/fillets-ng/script/{level}/dialogs_nl.lua"] = lua.encode()
    _deb(work, "fillets-ng-data", {**scripts, "usr/share/doc/fillets-ng-data/copyright": FILLETS_COPYRIGHT.encode()})
    _deb(work, "fillets-ng-data-nl", {**sounds, "usr/share/doc/fillets-ng-data-nl/copyright": FILLETS_COPYRIGHT.encode()})


TUXPAINT_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tuxpaint-stamps

Files: *
Copyright: 2002-2022 by Bill Kendrick <bill@newbreedsoftware.com>
License: GPL-2
"""
TUXPAINT_ES = {  # stamp -> Spanish description (None: the stamp's text file has no Spanish line)
    "animals/fish/groper": "George, el mero azul.",
    "animals/fish/groper-1": "George, el mero azul.",          # the same take under a second name
    "animals/birds/robin": "Un petirrojo canta por la mañana.",
    "food/fruit/apple": "Una manzana roja y brillante.",
    "money/coin": "Una moneda de 1 euro (1 €).",               # digits and symbols: skipped
    "town/house": None,
}


def _tuxpaint_deb(work: Path) -> None:
    """tuxpaint-stamps-default with Spanish descriptions as Ogg Vorbis at 44.1 kHz, their .txt
    files (English first line, ``es.utf8=`` translations) and a changelog crediting the reader."""
    import io

    import soundfile as sf
    import soxr

    base = "usr/share/tuxpaint/stamps"
    files: dict[str, bytes] = {}
    take: bytes = b""
    for stamp, es in TUXPAINT_ES.items():
        files[f"{base}/{stamp}.txt"] = ("An English line.\nfr.utf8=Une ligne.\n"
                                        + (f"es.utf8={es}\n" if es else "")).encode()
        if stamp.endswith("-1"):
            files[f"{base}/{stamp}_desc_es.ogg"] = take
            continue
        audio = soxr.resample(_speech_in(es or "Una casa.", "roa/es+f3", "es", 150), 16000, 44100)
        buf = io.BytesIO()
        sf.write(buf, audio, 44100, format="OGG", subtype="VORBIS")
        files[f"{base}/{stamp}_desc_es.ogg"] = take = buf.getvalue()
    files["usr/share/doc/tuxpaint-stamps-default/copyright"] = TUXPAINT_COPYRIGHT.encode()
    files["usr/share/doc/tuxpaint-stamps-default/changelog.gz"] = gzip.compress(
        "    + Spanish translation\n      Descriptive sounds Estefan\u00eda\n      Ortiz\n".encode())
    _deb(work, "tuxpaint-stamps-default", files)


def _speech_in(t: str, voice: str, lang: str, rate: int) -> np.ndarray:
    lead = np.zeros(int(0.15 * src.SR))
    return np.concatenate([lead, align.synthesize(t, voice, lang, rate).audio * 0.8, lead])


VOICES = "allison_smith-en,june_wallack-fr,armelle_desjardins-fr,fillets_nl_small_fish-nl,fillets_nl_big_fish-nl"


def _build(debs: Path, out: Path, cache: Path):
    from inference_core.data.realspeech.build import build, select_voices

    return build(out, cache, debs, select_voices(VOICES), seed=0, workers=2, progress=False, synth_sentences=1)


@pytest.fixture(scope="module")
def built(debs, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("realspeech_out") / "real"
    return out, _build(debs, out, debs.parent / "cache")


# ----------------------------------------------------------------------------- the whole pipeline

@needs_tools
@needs_sphinx
def test_outputs_have_the_documented_formats(built):
    from inference_core.data.format import Dataset
    from inference_core.data.phonemes import INVENTORY
    from inference_core.shared.channels import ARKIT_52

    out, summary = built
    pairs = sorted((out / "metrics" / "val").glob("*.json"))
    assert pairs, summary
    for js in pairs:
        meta = json.loads(js.read_text())
        for key in ("phones", "speaker", "language", "text", "alignment", "licence", "attribution", "sex"):
            assert key in meta, (js.name, key)
        with wave.open(str(js.with_suffix(".wav"))) as w:
            assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, 16000)
            dur = w.getnframes() / 16000
        ph = meta["phones"]
        assert ph[0][1] == 0.0 and abs(ph[-1][2] - dur) < 1e-3
        assert all(abs(a[2] - b[1]) < 1e-6 for a, b in zip(ph, ph[1:]))  # tiles [0, duration]
        assert all(e > s for _, s, e in ph) and all(lab in INVENTORY for lab, _, _ in ph)
        assert any(lab != "sil" for lab, _, _ in ph)
    ds = Dataset(out / "dataset")
    assert ds.fps == 30 and ds.sample_rate == 16000 and ds.channels == list(ARKIT_52)
    assert "asterisk-core-sounds-en-g722" in ds.meta["source"]
    for e in ds.entries():
        for key in ("speaker", "split", "language", "sex", "alignment", "licence", "attribution"):
            assert key in e, (e["id"], key)
        u = ds.load(e)
        assert u.motion.shape == (round(len(u.audio) / 16000 * 30), 52)
        assert len(u.extra["phonemes"]) == len(u.extra["phonemes_start"]) == len(u.extra["phonemes_end"])
    en = [e for e in ds.entries() if e["language"] == "en"]
    assert en and all(e["alignment"].startswith("pocketsphinx") for e in en)
    assert {e["alignment"] for e in ds.entries() if e["language"] == "fr"} == {"espeak-dtw"}
    sources = json.loads((out / "SOURCES.json").read_text())
    assert {p["package"] for p in sources["packages"]} >= {"asterisk-core-sounds-en-g722", "asterisk-prompt-fr-armelle"}
    by_voice = {v["key"]: v for v in sources["voices"]}
    assert by_voice["allison_smith-en"]["licence"] == "CC-BY-SA-3.0"
    assert "Armelle Desjardins" in by_voice["armelle_desjardins-fr"]["attribution"]
    assert by_voice["armelle_desjardins-fr"]["sex_source"].startswith("estimated from median f0")
    drops = summary["dropped"]["allison_smith-en"]
    assert drops["not_speech"] == 2 and drops["too_short"] == 1 and drops["no_transcript"] == 1, drops


@needs_tools
@needs_sphinx
def test_split_holds_out_whole_speakers_and_groups(built):
    from inference_core.data.format import Dataset

    out, summary = built
    ds = Dataset(out / "dataset")
    by = {s: ds.entries(s) for s in ("train", "tune", "val", "val_seen_text")}
    assert by["train"] and by["val"], summary["utterances_per_split"]
    spk = {s: {e["speaker"] for e in es} for s, es in by.items()}
    grp = {s: {e["group"] for e in es} for s, es in by.items()}
    assert not spk["train"] & (spk["val"] | spk["val_seen_text"])
    assert spk["tune"] <= spk["train"] and spk["val_seen_text"] <= spk["val"] | spk["val_seen_text"]
    assert not grp["train"] & (grp["val"] | grp["tune"])
    assert not grp["val_seen_text"] & grp["val"]
    rule = json.loads((out / "SOURCES.json").read_text())["split_rule"]
    assert "allison_smith" in rule["speakers"]["val"]  # the only English speaker: never trained on
    assert rule["speakers"]["val"] == sorted(spk["val"] | spk["val_seen_text"])
    assert set(rule["heldout_groups"]) | set(rule["fillets"]["heldout_levels"]) >= grp["val"] | grp["tune"]
    assert {e["language"] for e in by["val"] + by["val_seen_text"]} == {"en", "fr", "nl"}
    # Fish Fillets: the split is the voice table's, the held-out group a level, in both fish alike
    fish = {s: {(e["speaker"], e["group"]) for e in es if e["voice"].startswith("fillets_")} for s, es in by.items()}
    held = {g for _, g in fish["val"] | fish["tune"]}
    assert {s for s, _ in fish["val"] | fish["val_seen_text"]} == {"fillets_nl_big_fish"}
    assert {s for s, _ in fish["train"] | fish["tune"]} == {"fillets_nl_small_fish"}
    assert len(held) == 1 and held <= {f"fillets/{lv}" for lv in NL_LINES}
    assert {g for _, g in fish["train"]} == {f"fillets/{lv}" for lv in NL_LINES} - held
    assert not any("papegaai" in e["prompt"] for es in by.values() for e in es)


@needs_tools
@needs_sphinx
def test_second_run_is_a_noop(built, debs, capsys):
    out, summary = built
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".npz", ".wav")
                   or "metrics" in p.parts or "align" in p.parts)
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = _build(debs, out, debs.parent / "cache")
    assert "align: 0 prompt(s) to align" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in files} == stamps  # nothing rewritten
    assert again == summary


@needs_tools
@needs_sphinx
def test_a_killed_run_redoes_only_what_is_missing(built, debs, tmp_path, capsys):
    out, summary = built
    copy = tmp_path / "real"
    shutil.copytree(out, copy)
    cached = sorted((copy / "work" / "align").rglob("*.json"))
    cached[0].unlink()
    victim = sorted((copy / "dataset").glob("*.npz"))[0]
    victim.unlink()
    again = _build(debs, copy, debs.parent / "cache")
    assert "align: 1 prompt(s) to align" in capsys.readouterr().err
    assert victim.exists() and again["utterances"] == summary["utterances"]


@needs_tools
@needs_sphinx
def test_resume_rewrites_what_changed(built, debs, tmp_path):
    """A cached alignment that differs from what was written (e.g. an aligner fixed since) is
    written again, in the metrics folder and in the dataset, instead of being skipped."""
    from inference_core.data.format import Dataset

    out, _ = built
    copy = tmp_path / "real"
    shutil.copytree(out, copy)
    ds = Dataset(copy / "dataset")
    entry = next(e for e in ds.entries() if e["voice"] == "armelle_desjardins-fr")  # held out: has metrics
    cache = copy / "work" / "align" / entry["voice"] / (entry["prompt"].replace("/", "-") + ".json")
    res = json.loads(cache.read_text())
    ph = res["dtw"]["phones"]
    ph[0][2] = ph[1][1] = round(ph[0][2] + 0.02, 4)  # move one boundary by 20 ms
    cache.write_text(json.dumps(res))
    _build(debs, copy, debs.parent / "cache")
    new = Dataset(copy / "dataset")
    u = new.load(next(e for e in new.entries() if e["id"] == entry["id"]))
    assert abs(float(u.extra["phonemes_end"][0]) - ph[0][2]) < 1e-5
    metrics = json.loads((copy / "metrics" / entry["split"] / f"{entry['id']}.json").read_text())
    assert metrics["phones"][0][2] == ph[0][2]


@needs_tools
@needs_sphinx
def test_resume_removes_what_is_no_longer_kept(built, debs, tmp_path):
    """A voice left out of a later run leaves no motion file behind in the dataset folder: every
    .npz there is one the manifest lists."""
    from inference_core.data.realspeech.build import build, select_voices

    out, _ = built
    copy = tmp_path / "real"
    shutil.copytree(out, copy)
    assert any("armelle" in p.name for p in (copy / "dataset").glob("*.npz"))
    build(copy, debs.parent / "cache", debs, select_voices(VOICES.replace(",armelle_desjardins-fr", "")),
          seed=0, workers=2, progress=False, synth_sentences=1)
    files = {p.name for p in (copy / "dataset").glob("*.npz")}
    listed = {u["file"] for u in json.loads((copy / "dataset" / "manifest.json").read_text())["utterances"]}
    assert files == listed and not any("armelle" in f for f in files)


@needs_tools
@needs_sphinx
def test_builds_are_identical(built, debs, tmp_path):
    from inference_core.data.format import Dataset

    out, summary = built
    other = tmp_path / "real"
    second = _build(debs, other, tmp_path / "cache")
    assert {k: v for k, v in second.items() if k != "out"} == {k: v for k, v in summary.items() if k != "out"}
    assert (other / "SOURCES.json").read_bytes() == (out / "SOURCES.json").read_bytes()
    for p in sorted((out / "metrics").rglob("*.*")):
        assert (other / p.relative_to(out)).read_bytes() == p.read_bytes(), p.name
    a, b = Dataset(out / "dataset"), Dataset(other / "dataset")
    assert a.meta == b.meta
    for e in a.entries():
        ua, ub = a.load(e), b.load(e)
        assert np.array_equal(ua.audio, ub.audio) and np.array_equal(ua.motion, ub.motion)


@needs_tools
@needs_sphinx
def test_teacher_writes_the_dataset_motion(built, tmp_path):
    from inference_core.data.format import Dataset
    from inference_core.data.realspeech.teacher import main

    out, _ = built
    wav = sorted((out / "metrics" / "val").glob("*.wav"))[0]
    npz = tmp_path / "w.npz"
    assert main(["--dataset", str(out / "dataset"), str(wav), str(npz)]) == 0
    ds = Dataset(out / "dataset")
    motion = ds.load(next(e for e in ds.entries() if e["id"] == wav.stem)).motion
    with np.load(npz) as z:
        assert np.array_equal(z["weights"], motion) and list(z["channels"]) == ds.channels
        assert float(z["fps"]) == 30 and abs(float(z["t0"]) - 0.5 / 30) < 1e-7
    assert main(["--dataset", str(out / "dataset"), str(tmp_path / "nobody.wav"), str(npz)]) == 1


@needs_tools
@needs_sphinx
@pytest.mark.skipif(not LIP_METRICS.exists(), reason=f"{LIP_METRICS} is not in this checkout")
def test_lip_metrics_reads_the_val_set(built):
    out, _ = built
    data = str(out / "metrics" / "val")
    base = subprocess.run([sys.executable, str(LIP_METRICS), "--data", data, "--baseline", "amplitude", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert base.returncode == 0, base.stderr[-2000:]
    cmd = (f"{sys.executable} -m inference_core.data.realspeech.teacher --dataset {out / 'dataset'} {{wav}} {{out}}")
    teach = subprocess.run([sys.executable, str(LIP_METRICS), "--data", data, "--weights-cmd", cmd, "--json"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert teach.returncode == 0, teach.stderr[-2000:]
    pooled = json.loads(teach.stdout)["pooled"]
    assert pooled["bilabial_closure_rate"] >= 0.8, pooled


# ----------------------------------------------------------------------------- aligners

@needs_tools
@needs_sphinx
def test_tuxpaint_descriptions_train_with_their_credit(debs, tmp_path):
    """Each recording once (a take shared by two stamps is used once), texts with digits skipped,
    every utterance trains, the changelog's credit is kept, and the Asterisk split is the same with
    and without them."""
    from inference_core.data.realspeech.build import build, select_voices

    out = tmp_path / "real"
    summary = build(out, tmp_path / "cache", debs, select_voices("allison_smith-en,tuxpaint_es-es"),
                    seed=0, workers=2, progress=False, synth_sentences=1)
    sources = json.loads((out / "SOURCES.json").read_text())
    tv = next(v for v in sources["voices"] if v["key"] == "tuxpaint_es-es")
    assert tv["prompts"] == 5 and tv["with_text"] == 3 and tv["status"] == "used" and tv["licence"] == "GPL-2"
    assert tv["credit_files"][0]["line"] == "Descriptive sounds Estefanía Ortiz"
    assert "Bill Kendrick" in tv["copyright_excerpt"]
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    utts = [u for u in manifest["utterances"] if u["speaker"] == "tuxpaint_es"]
    assert {u["split"] for u in utts} == {"train"} and 2 <= len(utts) <= 3
    assert "tuxpaint" in sources["split_rule"] and not any(sources["split_rule"]["leakage_check"].values())
    assert "Tux Paint's spoken stamp descriptions" in manifest["source"]
    alone = build(tmp_path / "asterisk", tmp_path / "cache", debs, select_voices("allison_smith-en"),
                  seed=0, workers=2, progress=False, synth_sentences=1)
    for name in ("val", "val_seen_text", "tune"):
        assert alone["utterances_per_split"].get(name) == summary["utterances_per_split"].get(name)
    assert summary["utterances_per_split"]["train"] == alone["utterances_per_split"].get("train", 0) + len(utts)
