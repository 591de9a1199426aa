"""The real-speech builder (inference_core.data.realspeech) on tiny fake Debian packages.

The packages are built here with ``dpkg-deb -b`` from espeak-ng speech encoded with ffmpeg
(G.722 for the core voices, GSM for a borrowed-transcript voice), so the whole pipeline runs
as it does on the real packages: unpack, transcripts, licences, both aligners, split, outputs.
"""

from __future__ import annotations

import ctypes.util
import gzip
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from inference_core.data.realspeech import align, dtw, split, text
from inference_core.data.realspeech import sources as src

ROOT = Path(__file__).resolve().parent.parent
LIP_METRICS = ROOT.parent / "shared" / "tools" / "lip_metrics.py"


def _have_pocketsphinx() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


needs_tools = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("dpkg-deb") and ctypes.util.find_library("espeak-ng")),
    reason="needs ffmpeg, dpkg-deb and libespeak-ng (scripts/setup_system.sh installs them)")
needs_sphinx = pytest.mark.skipif(not _have_pocketsphinx(),
                                  reason="needs pocketsphinx (pip install -r requirements/dev.txt)")

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
CORE_COPYRIGHT = """Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: asterisk-core-sounds

Files: *
Copyright: 2003-2010, Allison Smith
Comment: Recorded by Allison Smith (http://www.theivrvoice.com)
License: CC-BY-SA-3.0

Files: fr-*
Copyright: 2006-2008, June Wallack
Comment: Recorded by June Wallack (http://www.junewallack.com); translated by Clod Patry
License: CC-BY-SA-3.0
"""
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
def test_aligners_find_known_boundaries_on_synthetic_speech():
    """espeak-ng speech with known phone times (another voice, another rate, inserted pauses)."""
    res = align.synthetic_check("Please enter your mailbox number followed by the pound key.", "gmw/en-US",
                                "en", seed=0, index=1, with_sphinx=True)
    dtw_err, sph_err = np.array(res["dtw"]), np.array(res["pocketsphinx"])
    assert len(dtw_err) >= 30 and len(sph_err) >= 30
    assert np.median(dtw_err) < 0.04 and np.median(sph_err) < 0.04, (np.median(dtw_err), np.median(sph_err))
    # the measure can fail: the same truth against a timeline shifted by 80 ms
    x, truth = align.synthetic_pair(res["text"], "gmw/en-US", "en", 0, 1)
    shifted = [(lab, s + 0.08, e + 0.08) for lab, s, e in truth]
    assert np.median(align.boundary_errors(truth, shifted)) > 0.07


@needs_tools
def test_dtw_aligner_carries_french_boundaries():
    x, truth = align.synthetic_pair("Veuillez composer le numéro de votre boîte vocale.", "roa/fr", "fr", 0, 0)
    res = align.dtw_align(x, "Veuillez composer le numéro de votre boîte vocale.", "fr", "roa/fr+f2")
    err = align.boundary_errors(truth, res.phones)
    assert len(err) >= 25 and np.median(err) < 0.04
    assert res.phones[0][1] == 0.0 and abs(res.phones[-1][2] - len(x) / src.SR) < 1e-3


@pytest.mark.parametrize("pen", [0.0, 0.5])
def test_dtw_matches_the_plain_recurrence(pen):
    rng = np.random.default_rng(3)
    for n, m in ((1, 1), (1, 5), (6, 1), (7, 9), (12, 5)):
        c = rng.random((n, m))
        d = np.full((n + 1, m + 1), np.inf)
        for i in range(n):
            for j in range(m):
                if i == 0 and j == 0:
                    d[1, 1] = 2 * c[0, 0]
                    continue
                d[i + 1, j + 1] = min(d[i, j] + 2 * c[i, j], d[i, j + 1] + c[i, j] + pen, d[i + 1, j] + c[i, j] + pen)
        acc = dtw.accumulate(c, pen)
        assert np.allclose(acc, d[1:, 1:])
        pi, pj = dtw.backtrack(acc, c, pen)
        assert (pi[0], pj[0], pi[-1], pj[-1]) == (0, 0, n - 1, m - 1)
        steps = [tuple(s) for s in np.stack([np.diff(pi), np.diff(pj)], 1)]
        assert all(s in {(1, 1), (1, 0), (0, 1)} for s in steps)
        total = 2 * c[0, 0] + sum((2 * c[i, j] if s == (1, 1) else c[i, j] + pen)
                                  for s, i, j in zip(steps, pi[1:], pj[1:]))
        assert np.isclose(total, acc[-1, -1])  # the path found is one that costs the optimum


def test_tidy_tiles_the_duration():
    ph = align.tidy([("p", 0.05, 0.05), ("aa", 0.05, 0.2), ("sil", 0.2, 0.21), ("t", 0.21, 0.5)], 0.6)
    assert ph[0] == ("sil", 0.0, 0.05) and ph[-1][0] == "sil" and ph[-1][2] == 0.6
    assert [p[0] for p in ph] == ["sil", "p", "aa", "t", "sil"]  # the 10 ms pause went to "aa"
    assert all(e - s >= 0.01 - 1e-9 for _, s, e in ph)
    assert all(abs(a[2] - b[1]) < 1e-9 for a, b in zip(ph, ph[1:]))


def test_language_rewrites_before_map_espeak():
    assert [p[0] for p in align.espeak_to_arpabet([("B", 0, 0.1), ("a", 0.1, 0.2)], "es")] == ["b", "ae"]
    ru = align.espeak_to_arpabet([("ja", 0, 0.2), ("y", 0.2, 0.3), ("(en)", 0.3, 0.31)], "ru")
    assert [p[0] for p in ru] == ["y", "ae", "ih"] and ru[-1][2] == 0.31


# ----------------------------------------------------------------------------- text, sources, split

def test_transcript_cleaning():
    assert text.clean("beep", "[this is a simple beep tone]", "en") == (None, "not_speech")
    assert text.clean("silence/3", "(3 seconds of silence)", "en") == (None, "not_speech")
    assert text.clean("vm-intro", "Please leave a message. (simple tone sound plays)", "en") == \
        ("Please leave a message.", "ok")
    assert text.clean("x", "Sus saludos [temporales] estan", "es") == (None, "uncertain_transcript")
    assert text.clean("letters/at", "at [@]", "en") == ("at", "ok")
    assert text.clean("vm-star", "Press * or #.", "en")[0] == "Press star or pound ."
    assert text.clean("conf-adminmenu", "conf-adminmenu: Нажмите 1", "ru")[0] == "Нажмите 1"
    assert text.words("You'd press 28.8, intra-Asterisk!") == ["you'd", "press", "28.8", "intra", "asterisk"]


def test_transcript_and_copyright_parsing(tmp_path):
    p = tmp_path / "t.txt.gz"
    p.write_bytes(gzip.compress("\ufeff; comment\n\nagent-pass: Password.\ndigits/0: cero\ndigits/0: diez\n"
                                "digits/1: uno\n".encode()))
    tr = src.read_transcript(p)
    assert tr.texts == {"agent-pass": "Password.", "digits/0": "cero", "digits/1": "uno"}
    assert tr.duplicates == {"digits/0"}
    assert src.dep5_stanza(CORE_COPYRIGHT, "fr")["Copyright"] == "2006-2008, June Wallack"
    assert src.dep5_stanza(CORE_COPYRIGHT, "es")["Copyright"] == "2003-2010, Allison Smith"


def test_voice_table_names_one_person_once():
    by_key = {v.key: v for v in src.VOICES}
    assert by_key["allison_smith-en"].speaker == by_key["allison_smith-es"].speaker
    assert len({v.key for v in src.VOICES}) == len(src.VOICES) == 21
    assert {v.language for v in src.VOICES} == set(src.CORE_LANGS) | {"cs", "nl", "be", "bg", "ca", "da", "el", "ro"}
    # one person, one speaker id: the Tux Paint readers are nobody else in the table
    people = [v.person for v in src.VOICES if v.corpus != "asterisk" or v.speaker != "allison_smith"]
    assert len(people) == len(set(people))


def test_speaker_rule_on_the_real_voices():
    f = split.SpeakerFacts
    facts = [f("allison_smith", ("en", "es"), "F", True), f("june_wallack", ("fr",), "F", True),
             f("carlo_flora", ("it",), "M", True), f("ivrvoice_ru", ("ru",), "F", True),
             f("armelle_desjardins", ("fr",), "F", False), f("july_jimenez", ("es",), "F", False),
             f("paola_dal_zot", ("it",), "F", False)]
    rule = split.choose_speakers(facts, seed=0)
    assert rule["val"] == ["allison_smith", "armelle_desjardins", "carlo_flora", "ivrvoice_ru"]
    assert rule["train"] == ["july_jimenez", "june_wallack", "paola_dal_zot"] and not rule["constraints_unmet"]
    # without the 8 kHz French voice, June is the only French speaker: held out, and it is said
    rule = split.choose_speakers([x for x in facts if x.speaker != "armelle_desjardins"], seed=0)
    assert "june_wallack" in rule["val"] and "train_has_a_wideband_speaker" in rule["constraints_unmet"]


def test_groups_and_heldout_share():
    names = ([f"vm-{w}" for w in ("intro", "review", "review-urgent", "goodbye", "login", "password")]
             + [f"digits/{k}" for k in range(30)] + [f"conf-{k}" for k in range(5)]
             + ["agent-pass", "agent-user", "activated", "added", "auth-incorrect"] + [f"q{k}" for k in range(20)])
    g = split.group_map(names)
    assert g["digits/7"] == "digits/" and g["conf-3"] == "conf" and g["agent-pass"] == "agent"
    held = split.heldout_groups(g, seed=0)
    share = sum(1 for x in g.values() if x in held) / len(g)
    assert 0.15 <= share <= 0.25 and "digits/" not in held  # too big a group is never held out
    assert held == split.heldout_groups(g, seed=0) and held != split.heldout_groups(g, seed=1)


# ----------------------------------------------------------------------------- Fish Fillets

FILLETS_LUA = r'''
-- a comment with dialogId("nope", "font_big", "not a call")
--[[ a long comment
dialogId("nope2", "font_small", "no") ]]
dialogId("kor-m-hello", "font_small", "Hello.")
dialogStr("Hallo, ik ben \"de kleine\" vis.")

dialogId("kor-v-answer", "font_big", "Hi.")
dialogStr(
    "Ik zie je\tnu.")
dialogId("kor-v-untranslated", "font_big", "No translation.")
dialogId("kor-m-wrongfont", "font_big", "Odd.")
dialogStr("Dit staat in het verkeerde lettertype.")
dialogId("kor-x-parrot", "font_parrot", "Polly.")
dialogStr("Lorre!")
dialogId("kor-m-esc", 'font_small', 'Esc.')
dialogStr('Een \65 en een \'quote\'')
'''


def test_fillets_dialog_files_parse():
    from inference_core.data.realspeech import fillets as fl

    ds = {d.id: d for d in fl.parse_dialogs(FILLETS_LUA, "script/kor/dialogs_nl.lua")}
    assert set(ds) == {"kor-m-hello", "kor-v-answer", "kor-v-untranslated", "kor-m-wrongfont",
                       "kor-x-parrot", "kor-m-esc"}  # nothing from the comments
    assert ds["kor-m-hello"].text == 'Hallo, ik ben "de kleine" vis.' and ds["kor-m-hello"].font == "font_small"
    assert ds["kor-v-answer"].text == "Ik zie je\tnu."  # a string on the next line
    assert ds["kor-v-untranslated"].text is None  # no dialogStr before the next dialogId
    assert ds["kor-m-esc"].text == "Een A en een 'quote'"  # decimal and quote escapes
    assert [fl.role_of(i) for i in ("kor-m-hello", "kor-v-answer", "kor-x-parrot", "help1", "a-m-v-b")] == \
        ["small", "big", "", "", ""]


def test_fillets_prompts_roles_and_skips(tmp_path):
    from inference_core.data.realspeech import fillets as fl

    v = {x.key: x for x in src.VOICES}["fillets_nl_small_fish-nl"]
    root = tmp_path / "pkg"
    script = root / fl.SCRIPT_DIR / "kor"
    script.mkdir(parents=True)
    (script / "dialogs_nl.lua").write_text(FILLETS_LUA + 'dialogId("kor-m-ouch", "font_small", "Ouch!")\n'
                                           'dialogStr("Au! Ha ha ha!")\n', encoding="utf-8")
    sound = root / v.sound_dir
    for rel in ("kor/nl/kor-m-hello", "kor/nl/kor-m-wrongfont", "kor/nl/kor-m-ouch", "kor/nl/kor-m-esc",
                "kor/nl/kor-m-missing", "kor/nl/kor-v-answer", "kor/cs/kor-m-hello", "share/border/nl/bar-m-x"):
        (sound / rel).parent.mkdir(parents=True, exist_ok=True)
        (sound / rel).with_suffix(".ogg").write_bytes(b"")
    prompts = fl.list_prompts(root, v)
    assert sorted(prompts) == ["kor/kor-m-esc", "kor/kor-m-hello", "kor/kor-m-missing", "kor/kor-m-ouch",
                               "kor/kor-m-wrongfont", "share/border/bar-m-x"]  # the small fish, in Dutch
    assert fl.group_of("kor/kor-m-hello") == "fillets/kor" and fl.group_of("share/border/bar-m-x") == "fillets/share"
    tr, dialogs = fl.read_dialogs(root, "nl")
    texts, skipped = fl.texts_for(v, prompts, tr, dialogs)
    assert texts == {"kor/kor-m-hello": "Hallo, ik ben de kleine vis.", "kor/kor-m-esc": "Een A en een quote"}
    assert skipped == {"kor/kor-m-missing": "no_transcript", "kor/kor-m-ouch": "not_speech",
                       "kor/kor-m-wrongfont": "role_font_mismatch", "share/border/bar-m-x": "no_transcript"}


def test_dialog_lines_that_are_not_words_are_skipped():
    assert text.clean_dialog("Ha ha ha! Au!", "nl") == (None, "not_speech")
    assert text.clean_dialog("MUAHHHH", "cs") == (None, "not_speech")
    assert text.clean_dialog("...tak...?", "cs") == (None, "mostly_punctuation")
    assert text.clean_dialog("Hmmm... těžko.", "cs") == (None, "non_lexical")
    assert text.clean_dialog("Pssst, ticho!", "cs") == (None, "non_lexical")
    assert text.clean_dialog("Heeeeeel 'mooi' gedaan.", "nl") == ("Heel mooi gedaan.", "ok")
    assert text.clean_dialog("Dat is 't beste.", "nl") == ("Dat is 't beste.", "ok")  # an apostrophe, kept
    assert text.clean_dialog("Vlk a smrt.", "cs") == ("Vlk a smrt.", "ok")  # vowelless Czech words are words


def test_fillets_levels_and_leakage_check():
    from types import SimpleNamespace as NS

    levels = [f"level{k:02d}" for k in range(20)]
    held = split.heldout_levels(levels, seed=0)
    assert len(held) == 5 and held == split.heldout_levels(levels, seed=0) != split.heldout_levels(levels, seed=1)

    def k(spl: str, speaker: str, group: str) -> NS:
        return NS(split=spl, group=group, vd=NS(voice=NS(speaker=speaker)))

    clean = [k("train", "a", "g1"), k("tune", "a", "g2"), k("val", "b", "g2"), k("val_seen_text", "b", "g1")]
    assert not any(split.leakage(clean).values())
    bad = split.leakage(clean + [k("train", "b", "g2")])
    assert bad["speakers_in_train_and_heldout"] == ["b"] and bad["groups_in_train_and_heldout"] == ["g2"]


def test_voice_table_fillets_split_is_fixed_both_sexes_each_side():
    fish = [v for v in src.VOICES if v.corpus == "fillets"]
    side = {(v.fixed_split, v.sex_doc) for v in fish}
    assert side == {("val", "F"), ("val", "M"), ("train", "F"), ("train", "M")}
    assert {v.language for v in fish if v.fixed_split == "val"} == {"cs", "nl"}
    assert all(v.licence == "GPL-2" and "Danihelka" in v.credit for v in fish)


# ----------------------------------------------------------------------------- Tux Paint

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


def test_tuxpaint_texts_and_prompts(tmp_path):
    from inference_core.data.realspeech import tuxpaint

    voice = next(v for v in src.VOICES if v.key == "tuxpaint_es-es")
    base = tmp_path / voice.sound_dir
    for rel, data in {"a/frog_desc_es.ogg": b"take1", "a/frog-1_desc_es.ogg": b"take1",
                      "b/toad_desc_es.ogg": b"take2", "b/toad_desc.ogg": b"english",
                      "b/toad_desc_es_old.ogg": b"no"}.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    (base / "a/frog.txt").write_text("A frog.\nes.utf8=Una «rana».\n", encoding="utf-8")
    (base / "a/frog-1.txt").write_text("A frog.\nes.utf8=Otra rana.\n", encoding="utf-8")
    (base / "b/toad.txt").write_text("A toad.\nes_MX.utf8=Un sapo.\n", encoding="utf-8")
    prompts = tuxpaint.list_prompts(tmp_path, voice)
    assert sorted(prompts) == ["a/frog", "b/toad"]   # frog-1 is the same take; English and odd names left out
    tr, texts, skipped = tuxpaint.texts_for(tmp_path, voice, prompts)
    assert texts == {"a/frog": "Una rana."} and skipped == {"b/toad": "no_transcript"}
    assert tr.texts == {"a/frog": "Una «rana»."}
    assert tuxpaint.clean("Una moneda de 1 euro.") == (None, "uncertain_transcript")
    assert tuxpaint.clean("Un sapo (verde).") == (None, "uncertain_transcript")
    assert tuxpaint.clean(" ... ") == (None, "not_speech")
    assert tuxpaint.clean("George,  el  mero.") == ("George, el mero.", "")
    assert tuxpaint.group_of("animals/fish/groper") == "tuxpaint/animals/fish"
    en = next(v for v in src.VOICES if v.key == "tuxpaint_es-es")
    assert tuxpaint.read_description(base / "a/frog.txt", "en") == "A frog." and en.language == "es"


def test_tuxpaint_credit_must_still_be_in_the_changelog(tmp_path):
    from inference_core.data.realspeech import tuxpaint

    voice = next(v for v in src.VOICES if v.key == "tuxpaint_fr-fr")
    log = tmp_path / tuxpaint.CHANGELOG
    log.parent.mkdir(parents=True)
    log.write_bytes(gzip.compress("+ Descriptive sounds by GCI students\n   + French:      PaulK\n".encode()))
    assert tuxpaint.check_credit(voice, tmp_path, "tuxpaint-stamps-default")[0]["line"] == "French: PaulK"
    log.write_bytes(gzip.compress(b"+ French: somebody else\n"))
    with pytest.raises(src.SourceError, match="no longer says"):
        tuxpaint.check_credit(voice, tmp_path, "tuxpaint-stamps-default")
    unnamed = next(v for v in src.VOICES if v.key == "tuxpaint_ca-ca")
    assert tuxpaint.check_credit(unnamed, tmp_path, "tuxpaint-stamps-default") == []


def test_tuxpaint_drops_what_sounds_like_a_heldout_prompt():
    from types import SimpleNamespace as NS

    def k(uid: str, spl: str, corpus: str, phones: list[str]) -> NS:
        return NS(uid=uid, split=spl, vd=NS(voice=NS(corpus=corpus)),
                  phones=[("sil", 0, 0.1)] + [(p, 0.1, 0.2) for p in phones] + [("sil", 0.2, 0.3)])

    kept = [k("digit_1", "val", "asterisk", ["w", "ah1", "n"]), k("tp_one", "train", "tuxpaint", ["W", "ah", "n"]),
            k("tp_frog", "train", "tuxpaint", ["f", "r", "aa", "g"]), k("ast_one", "train", "asterisk", ["w", "ah", "n"]),
            k("tune_no", "tune", "fillets", ["n", "ow"]), k("tp_no", "train", "tuxpaint", ["n", "ow"])]
    assert split.same_phones_as_heldout(kept, corpus="tuxpaint") == {"tp_one", "tp_no"}


def test_voice_table_tuxpaint_voices_only_train():
    tux = [v for v in src.VOICES if v.corpus == "tuxpaint"]
    assert len(tux) == 9 and all(v.fixed_split == "train" and v.licence == "GPL-2" for v in tux)
    assert len({v.speaker for v in tux}) == 9
    held = {v.person for v in src.VOICES if v.fixed_split == "val"} | {"Allison Smith", "June Wallack"}
    assert not held & {v.person for v in tux}
    assert all((v.credit_line == "") == ("not named" in v.person) for v in tux)


def test_select_voices_by_key_or_source():
    from inference_core.data.realspeech.sources import select_voices

    assert select_voices(None) == list(src.VOICES)
    shipped = select_voices("asterisk,fillets")
    assert {v.corpus for v in shipped} == {"asterisk", "fillets"} and len(shipped) == 12
    assert [v.key for v in select_voices("tuxpaint_fr-fr,tuxpaint,allison_smith-en")][:2] == ["tuxpaint_fr-fr", "tuxpaint_be-be"]
    assert len(select_voices("tuxpaint,tuxpaint_fr-fr")) == 9
    with pytest.raises(SystemExit, match="unknown voice"):
        select_voices("asterisk,klingon")
