"""Where the real speech comes from: Debian packages, their speakers, transcripts and licences.

Why a fixed table: each voice's package, sound folder, codec, transcript and licence were read
by hand from the packages (``/usr/share/doc/<pkg>/copyright``); the builder re-checks every
licence and credit line against the copyright file it unpacks, so a changed package fails
loudly instead of shipping a wrong attribution.

* The five ``asterisk-core-sounds-XX-g722`` packages hold 16 kHz G.722 prompts; their
  transcripts are in the plain ``asterisk-core-sounds-XX`` packages
  (``/usr/share/doc/asterisk-core-sounds-XX/core-sounds-XX.txt.gz``, ``name: text`` a line).
  English and Spanish are the same person (Allison Smith: the copyright's ``Files: *`` stanza,
  folders ``en_US_f_Allison`` and ``es_MX_f_Allison``), so they are one *speaker*.
* ``asterisk-prompt-fr-armelle`` and ``asterisk-prompt-es-co`` are 8 kHz GSM, and
  ``asterisk-prompt-it-menardi`` is a meta package whose audio is in ``-wav`` (8 kHz PCM,
  used here), ``-gsm`` or ``-alaw``. None has a transcript; their prompt names follow the core
  sets, so the core transcript of the language is tried and kept only where it fits
  (see :mod:`.align`).
* Fish Fillets NG's two fish (:mod:`.fillets`) and Tux Paint's spoken stamp descriptions
  (:mod:`.tuxpaint`, one reader per language, training only) have their own layouts.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...shared.hashing import file_sha256

SR = 16000
CORE_LANGS = ("en", "es", "fr", "it", "ru")
CORE_VERSION_NOTE = "asterisk-core-sounds 1.6.1"


@dataclass(frozen=True)
class Voice:
    """One speaker's recordings in one language, from one Debian package."""

    key: str                 # unique id of this recording set, e.g. "allison_smith-en"
    speaker: str             # person id; the same person in two languages is one speaker
    person: str              # the name the copyright file gives
    language: str            # en es fr it ru cs nl (+ be bg ca da el ro: Tux Paint, training only)
    package: str             # Debian package with the audio
    sound_dir: str           # folder inside the package
    codec: str               # g722 | gsm | wav (file suffix)
    transcript_package: str  # Debian package with the transcript
    own_transcript: bool     # False: the core transcript of the language is borrowed
    espeak_voice: str        # espeak-ng voice file for the DTW aligner's synthesis
    credit: str              # credit line, checked against the copyright file
    must_mention: tuple[str, ...]  # strings the copyright file must contain
    licence: str             # licence id as stated (DEP-5 stanza or hand-read)
    licence_note: str = ""
    stated_licence: str = ""  # DEP-5 copyright files: the stanza's License line, checked exactly
    sex_doc: str = ""        # "F"/"M" when the package names it, else "" (estimated from f0)
    sex_doc_source: str = ""
    corpus: str = "asterisk"  # asterisk | fillets | tuxpaint (layouts: :mod:`.fillets`, :mod:`.tuxpaint`)
    role: str = ""           # fillets: the character, "small" or "big" (fish)
    fixed_split: str = ""    # "val" / "train": the speaker's split fixed here, not by split.choose_speakers
    credit_files: tuple[tuple[str, str], ...] = ()  # (path in the transcript package, sha256) a credit was read from
    licence_excerpt_from: str = ""  # not DEP-5: the copyright file's excerpt starts at this line
    credit_line: str = ""    # tuxpaint: the upstream changelog's line naming the reader, re-checked


def _core(lang: str, folder: str, speaker: str, person: str, espeak_voice: str, credit: str,
          mention: tuple[str, ...], licence: str, sex: str) -> Voice:
    return Voice(
        key=f"{speaker}-{lang}", speaker=speaker, person=person, language=lang,
        package=f"asterisk-core-sounds-{lang}-g722", sound_dir=f"usr/share/asterisk/sounds/{folder}",
        codec="g722", transcript_package=f"asterisk-core-sounds-{lang}", own_transcript=True,
        espeak_voice=espeak_voice, credit=credit, must_mention=mention, licence=licence,
        stated_licence=licence, sex_doc=sex, sex_doc_source=f"package voice folder name ({folder}: _{sex.lower()}_)")


FILLETS_CREDITS_IMAGE = ("usr/share/games/fillets-ng/images/menu/credits.png",
                         "42deca1693e71d0bd6aa663c0c33c36880cb37391d4cd7a94e7af02cebe454d6")
FILLETS_AUTHORS = ("Fish Fillets NG by Ivo Danihelka, Pavel Danihelka and ALTAR Interactive "
                   "(http://fillets.sourceforge.net)")
FILLETS_CAST = {  # language → (credit, licence note): what the packages say about the voices
    "cs": ("Fish Fillets NG Czech voice cast, the {role} fish (the game's credits: 'Voices & Animal sounds' "
           "Vít Musil, Gabriela Pyšná and Jaroslav Tuček, {pictured} pictured with the {role} fish)",
           "The names are read from the game's credits image (images/menu/credits.png of fillets-ng-data, "
           "sha256 pinned, original ALTAR Interactive credits): Vít Musil stands beside the big fish, "
           "Gabriela Pyšná beside the small fish; no text file of the packages names a voice actor. "),
    "nl": ("Fish Fillets NG Dutch voice cast, the {role} fish (the voice actors are not named in the packages)",
           "The packages name no Dutch voice actor (the credits image lists Astrid de Wijn for the "
           "Dutch translation, not as a voice). "),
}
GPL_NOTE = ("GPL-2 (version 2 dated June 1991, the copyright file's 'Copyright:' section for the upstream "
            "data): passing the recordings on means passing on the licence and offering their source, "
            "Debian source package fillets-ng-data")


def _fillets(lang: str, role: str) -> Voice:
    """One fish in one language: the audio of fillets-ng-data-<lang>, the dialog texts of
    fillets-ng-data (:mod:`.fillets`). Held out: the Czech small fish and the Dutch big fish."""
    speaker = f"fillets_{lang}_{role}_fish"
    credit, note = FILLETS_CAST[lang]
    sex = "F" if role == "small" else "M"
    return Voice(
        key=f"{speaker}-{lang}", speaker=speaker, language=lang,
        person=f"the {role} fish's {'Czech' if lang == 'cs' else 'Dutch'} voice" + (
            f" (credited: {'Gabriela Pyšná' if role == 'small' else 'Vít Musil'})" if lang == "cs" else ""),
        package=f"fillets-ng-data-{lang}", sound_dir="usr/share/games/fillets-ng/sound", codec="ogg",
        transcript_package="fillets-ng-data", own_transcript=True,
        espeak_voice={"cs": "zlw/cs", "nl": "gmw/nl"}[lang],
        credit=credit.format(role=role, pictured="Gabriela Pyšná" if role == "small" else "Vít Musil")
        + "; " + FILLETS_AUTHORS,
        must_mention=("Ivo Danihelka", "Pavel Danihelka", "ALTAR interactive", "fillets.sourceforge.net",
                      "GNU General Public License", "version 2 dated June, 1991"),
        licence="GPL-2", licence_note=note + GPL_NOTE,
        sex_doc=sex, sex_doc_source=(
            f"the character: the {role} fish (dialog ids with -{'m' if role == 'small' else 'v'}-, "
            f"{'font_small' if role == 'small' else 'font_big'}) is the "
            f"{'female' if role == 'small' else 'male'} one of the two fish (the Czech lines use "
            f"{'feminine' if role == 'small' else 'masculine'} verb forms, e.g. "
            f"{'měla jsem, viděla jsem' if role == 'small' else 'myslel jsem, jsem sám'}); "
            "checked against the median f0"),
        corpus="fillets", role=role, fixed_split="val" if (lang, role) in (("cs", "small"), ("nl", "big")) else "train",
        credit_files=(FILLETS_CREDITS_IMAGE,) if lang == "cs" else (),
        licence_excerpt_from="Upstream Authors:")


# language, espeak-ng voice, the reader and the upstream changelog's line crediting them with the
# language's descriptive sounds ("" where it names nobody; "Rusian" is the changelog's spelling).
# English, Dutch and Lithuanian (under a minute each) and Malayalam (no checked phone mapping) are
# left out. Sex is estimated from f0 for all (the changelog gives names, not sexes).
TUXPAINT_READERS: tuple[tuple[str, str, str, str], ...] = (
    ("be", "zle/be", "Kseniya Buraya", "Descriptive sounds by Kseniya Buraya"),
    ("bg", "zls/bg", "Krasimir Petkov", "Descriptive sounds Krasimir Petkov"),
    ("ca", "roa/ca", "", ""),
    ("da", "gmq/da", "", ""),
    ("el", "grk/el", "Kiriaki Serafeim", "Greek descriptive sounds Kiriaki SERAFEIM"),
    ("es", "roa/es", "Estefanía Ortiz", "Descriptive sounds Estefanía Ortiz"),
    ("fr", "roa/fr", "PaulK", "French: PaulK"),
    ("ro", "roa/ro", "Tabbytha", "Romanian: Tabbytha"),
    ("ru", "zle/ru", "Edwin Veber", "Rusian: Edwin Veber"),
)
TUXPAINT_NOTE = ("Tux Paint stamps by Bill Kendrick and the Tux Paint contributors, Debian package "
                 "tuxpaint-stamps-default (GPL-2)")


def _tuxpaint(lang: str, espeak_voice: str, reader: str, credit_line: str) -> Voice:
    """One language's spoken stamp descriptions (:mod:`.tuxpaint`): trains, never held out."""
    return Voice(
        key=f"tuxpaint_{lang}-{lang}", speaker=f"tuxpaint_{lang}",
        person=reader or f"Tux Paint {lang} descriptions' reader (not named in the package)", language=lang,
        package="tuxpaint-stamps-default", sound_dir="usr/share/tuxpaint/stamps", codec="ogg",
        transcript_package="tuxpaint-stamps-default", own_transcript=True, espeak_voice=espeak_voice,
        credit=(f"Tux Paint stamp descriptions in {lang} read by {reader} (credited in the upstream changelog)"
                if reader else f"Tux Paint stamp descriptions in {lang} (the reader is not named)")
        + "; " + TUXPAINT_NOTE,
        must_mention=("Bill Kendrick", "GPL-2"), licence="GPL-2", stated_licence="GPL-2",
        licence_note="passing the recordings on means passing on the licence and offering their "
                     "source, Debian source package tuxpaint-stamps",
        corpus="tuxpaint", fixed_split="train", credit_line=credit_line)


ALLISON = ("Recorded by Allison Smith (http://www.theivrvoice.com); financial contributions by "
           "Digium, Inc. (http://www.digium.com)")
VOICES: tuple[Voice, ...] = (
    _core("en", "en_US_f_Allison", "allison_smith", "Allison Smith", "gmw/en-US", ALLISON,
          ("Allison Smith", "theivrvoice.com"), "CC-BY-SA-3.0", "F"),
    _core("es", "es_MX_f_Allison", "allison_smith", "Allison Smith", "roa/es-419", ALLISON,
          ("Allison Smith", "theivrvoice.com"), "CC-BY-SA-3.0", "F"),
    _core("fr", "fr_CA_f_June", "june_wallack", "June Wallack", "roa/fr",
          "Recorded by June Wallack (http://www.junewallack.com); translated into French by Clod "
          "Patry, Kristopher Lalletti and June Wallack; financial contributions by Digium, Inc., "
          "Unlimitel and BGM Informatique",
          ("June Wallack", "junewallack.com", "Clod Patry"), "CC-BY-SA-3.0", "F"),
    _core("it", "it_IT_m_Carlo", "carlo_flora", "Carlo Flora", "roa/it",
          "Recorded by Carlo Flora (http://www.carloflora.com, http://www.segreterietelefoniche.it); "
          "translated by Silvia Petrin from the English text distributed by Digium",
          ("Carlo Flora", "carloflora.com", "Silvia Petrin"), "CC-BY-3.0", "M"),
    _core("ru", "ru_RU_f_IvrvoiceRU", "ivrvoice_ru", "IvrvoiceRU voice (provided by Maxim Topal)",
          "zle/ru", "Provided by Maxim Topal (http://www.ivrvoice.ru)",
          ("Maxim Topal", "ivrvoice.ru"), "CC-BY-3.0", "F"),
    Voice(key="armelle_desjardins-fr", speaker="armelle_desjardins", person="Armelle Desjardins",
          language="fr", package="asterisk-prompt-fr-armelle", sound_dir="usr/share/asterisk/sounds/fr",
          codec="gsm", transcript_package="asterisk-core-sounds-fr", own_transcript=False,
          espeak_voice="roa/fr",
          credit="Voice actor Armelle Desjardins; Copyright (C) 2006 Michel Gutierrez "
                 "(http://public.aclap.com)",
          must_mention=("Armelle Desjardins", "Michel Gutierrez",
                        "Redistribution and use, with or without modification, are permitted"),
          licence="BSD-style (Copyright (C) 2006 Michel Gutierrez)",
          licence_note="redistribution must retain the copyright notice, the conditions and the "
                       "disclaimer of /usr/share/doc/asterisk-prompt-fr-armelle/copyright"),
    Voice(key="july_jimenez-es", speaker="july_jimenez", person="July E. Jiménez", language="es",
          package="asterisk-prompt-es-co", sound_dir="usr/share/asterisk/sounds/es", codec="gsm",
          transcript_package="asterisk-core-sounds-es", own_transcript=False, espeak_voice="roa/es-419",
          credit="Recorded by Avatar Ltda. (http://www.avatar.com.co/) with the voice of July E. "
                 "Jiménez; Copyright (C) 2006 Avatar Ltda.",
          must_mention=("July E. Jim", "Avatar Ltda", "GNU General Public License", "version 2"),
          licence="GPL-2", licence_note="Colombian neutral accent (LEEME)"),
    Voice(key="paola_dal_zot-it", speaker="paola_dal_zot", person="Paola Dal Zot", language="it",
          package="asterisk-prompt-it-menardi-wav", sound_dir="usr/share/asterisk/sounds/it_IT_f_Menardi",
          codec="wav", transcript_package="asterisk-core-sounds-it", own_transcript=False,
          espeak_voice="roa/it",
          credit="Voice prompts made by Marco Menardi and Paola Dal Zot (http://www.voip.ammdomus.it); "
                 "the English text they are translated from is Copyright Digium",
          must_mention=("Menardi", "Paola Dal Zot", "voip.ammdomus.it", "CC-SA-BY-3.0"),
          licence="CC-BY-SA-3.0-IT (the copyright file writes CC-SA-BY-3.0)",
          licence_note="attribution condition: show the end user visibly that the sounds were made "
                       "by Marco Menardi and Paola Dal Zot, with http://www.voip.ammdomus.it",
          stated_licence="CC-SA-BY-3.0",
          sex_doc="F", sex_doc_source="package voice folder name (it_IT_f_Menardi: _f_) and the "
                                      "package description (re-recorded by Paola Dal Zot)"),
    *(_fillets(lang, role) for lang in ("cs", "nl") for role in ("small", "big")),
    *(_tuxpaint(*row) for row in TUXPAINT_READERS),
)


class SourceError(RuntimeError):
    pass


def select_voices(spec: str | None) -> list[Voice]:
    """Voices by key (``allison_smith-en``) or whole sources by corpus name (``asterisk``,
    ``fillets``, ``tuxpaint``), comma-separated; none: every voice. ``asterisk,fillets`` is the
    set the bundled model was trained and measured with (``data/real_v1``)."""
    if not spec:
        return list(VOICES)
    want = [s.strip() for s in spec.split(",") if s.strip()]
    known = {v.key: v for v in VOICES}
    corpora = {v.corpus for v in VOICES}
    bad = [w for w in want if w not in known and w not in corpora]
    if bad:
        raise SystemExit(f"error: unknown voice(s) {bad}; known: {sorted(corpora)} or {sorted(known)}")
    out: list[Voice] = []
    for w in want:
        for v in ([known[w]] if w in known else [v for v in VOICES if v.corpus == w]):
            if v not in out:
                out.append(v)
    return out


# ----------------------------------------------------------------------------- packages

def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise SourceError(f"{cmd[0]} is not installed") from exc
    if res.returncode != 0:
        raise SourceError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    return res.stdout


def find_deb(folder: Path, package: str) -> Path | None:
    """The newest-named ``<package>_*.deb`` in ``folder`` (apt-get download's file name)."""
    hits = sorted(p for p in folder.glob(f"{package}_*.deb") if p.name.split("_", 1)[0] == package)
    return hits[-1] if hits else None


def fetch_deb(package: str, cache: Path, local: Path | None = None) -> Path:
    """The package's .deb: from ``local`` if given, else the cache, else ``apt-get download``."""
    if local is not None:
        deb = find_deb(local, package)
        if deb is None:
            raise SourceError(f"no {package}_*.deb in {local}")
        return deb
    cache.mkdir(parents=True, exist_ok=True)
    deb = find_deb(cache, package)
    if deb is not None:
        return deb
    if shutil.which("apt-get") is None:
        raise SourceError(f"{package}: not in {cache} and apt-get is not available")
    _run(["apt-get", "download", "-q", package], cwd=cache)
    deb = find_deb(cache, package)
    if deb is None:
        raise SourceError(f"apt-get download {package} wrote no .deb into {cache}")
    return deb


def deb_field(deb: Path, field: str) -> str:
    return _run(["dpkg-deb", "-f", str(deb), field]).strip()


def unpack(deb: Path, cache: Path) -> Path:
    """``dpkg-deb -x`` into ``cache/unpacked/<deb stem>`` once (a marker file says it finished)."""
    root = cache / "unpacked" / deb.stem
    marker = root / ".unpacked"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(tmp)])
    (tmp / ".unpacked").write_text(deb.name + "\n")
    tmp.replace(root)
    return root


@dataclass
class Package:
    name: str
    version: str
    deb: Path
    root: Path
    sha256: str

    def doc(self, name: str) -> Path:
        return self.root / "usr/share/doc" / self.name / name

    def info(self) -> dict[str, Any]:
        return {"package": self.name, "version": self.version, "deb": self.deb.name, "sha256": self.sha256}


def get_package(name: str, cache: Path, local: Path | None = None) -> Package:
    deb = fetch_deb(name, cache, local)
    return Package(name, deb_field(deb, "Version"), deb, unpack(deb, cache), file_sha256(deb))


# ----------------------------------------------------------------------------- transcripts

_LINE = re.compile(r"^([^\s:;][^\s:]*):\s*(.*)$")


@dataclass
class Transcript:
    texts: dict[str, str]
    duplicates: set[str]   # names given twice with different texts (ambiguous: skipped)
    path: str


def transcript_path(lang: str) -> str:
    return f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz"


def read_transcript(path: Path) -> Transcript:
    """``name: text`` lines (``;`` comments, a UTF-8 BOM at most) → names → texts."""
    texts: dict[str, str] = {}
    dup: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        for raw in f:
            line = raw.strip().lstrip("\ufeff")
            if not line or line.startswith(";"):
                continue
            m = _LINE.match(line)
            if not m:
                continue
            name, text = m.group(1), m.group(2).strip()
            if name in texts and texts[name] != text:
                dup.add(name)
            texts.setdefault(name, text)
    return Transcript(texts, dup, str(path))


# ----------------------------------------------------------------------------- licences

def dep5_stanza(text: str, language: str) -> dict[str, str] | None:
    """The DEP-5 ``Files:`` stanza for ``<language>-*`` prompts, else the ``*`` stanza."""
    stanzas: dict[str, dict[str, str]] = {}
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m and not line.startswith(" "):
                key = m.group(1)
                fields[key] = m.group(2)
            elif key is not None:
                fields[key] += "\n" + line.strip()
        if "Files" in fields:
            for pattern in fields["Files"].split():
                stanzas.setdefault(pattern, fields)
    return stanzas.get(f"{language}-*") or stanzas.get("*")


def check_licence(voice: Voice, pkg: Package) -> dict[str, Any]:
    """Licence + attribution of a voice, verified against the package's copyright file."""
    path = pkg.doc("copyright")
    if not path.exists():
        raise SourceError(f"{pkg.name}: no copyright file at {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    missing = [s for s in voice.must_mention if s not in text]
    stanza = dep5_stanza(text, voice.language) if text.startswith("Format:") else None
    if stanza is not None:
        stated = stanza.get("License", "").split("\n")[0].strip()
        if stated != voice.stated_licence:
            missing.append(f"License: {voice.stated_licence!r} (the file says {stated!r})")
        excerpt = "\n".join(f"{k}: {v}" for k, v in stanza.items())
    elif voice.licence_excerpt_from and voice.licence_excerpt_from in text:
        excerpt = text[text.index(voice.licence_excerpt_from):][:1500]
    else:
        excerpt = text[:1500]
    if missing:
        raise SourceError(f"{pkg.name}: copyright file does not match the voice table: {missing}")
    return {
        "licence": voice.licence, "licence_note": voice.licence_note,
        "attribution": f"{voice.credit.rstrip('.')}. Debian package {pkg.name} {pkg.version}, licence {voice.licence}.",
        "copyright_file": f"/usr/share/doc/{pkg.name}/copyright", "copyright_sha256": file_sha256(path),
        "copyright_excerpt": excerpt.strip(),
    }


# ----------------------------------------------------------------------------- audio

def list_prompts(root: Path, voice: Voice) -> dict[str, Path]:
    """Prompt name (path below the sound folder, no suffix, e.g. ``digits/1``) → audio file."""
    base = root / voice.sound_dir
    if not base.is_dir():
        raise SourceError(f"{voice.package}: no sound folder {voice.sound_dir}")
    out: dict[str, Path] = {}
    for p in sorted(base.rglob(f"*.{voice.codec}")):
        if p.is_file():
            out[p.relative_to(base).with_suffix("").as_posix()] = p
    return out


NATIVE_RATE = {"g722": 16000, "gsm": 8000}
HIGHPASS_HZ = 50.0


def decode(path: Path, sr: int = SR) -> np.ndarray:
    """An Asterisk prompt → int16 mono at ``sr``.

    G.722 and GSM through ffmpeg (``-f g722`` / ``-f gsm``: raw streams without a header),
    WAV through soundfile; other rates resampled with soxr (VHQ), so every speaker arrives at
    16 kHz; a 50 Hz high-pass (zero phase) removes DC offsets. Integer output: the dataset's
    float audio and the metrics WAV are the same samples."""
    import soxr

    codec = path.suffix.lstrip(".").lower()
    if codec in NATIVE_RATE:
        if shutil.which("ffmpeg") is None:
            raise SourceError("ffmpeg is not installed (Debian: apt install ffmpeg)")
        res = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", codec, "-i", str(path),
                              "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-"],
                             capture_output=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise SourceError(f"ffmpeg could not decode {path}: {res.stderr.decode(errors='replace')[-300:]}")
        x = np.frombuffer(res.stdout, dtype="<i2").astype(np.float64) / 32768.0
        rate = NATIVE_RATE[codec]
    else:
        import soundfile as sf

        x, rate = sf.read(str(path), dtype="float64", always_2d=True)
        x = x.mean(axis=1)
    if rate != sr and x.size:
        x = soxr.resample(x, rate, sr, quality="VHQ")
    if x.size > 64:
        from scipy.signal import butter, sosfiltfilt

        # some prompts carry a DC offset (it-menardi: about -0.045 full scale) that flattens their
        # level contour; nothing of speech lies below 50 Hz
        x = sosfiltfilt(butter(4, HIGHPASS_HZ, "highpass", fs=sr, output="sos"), x)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def native_rate(voice: Voice, path: Path) -> int:
    if voice.codec in NATIVE_RATE:
        return NATIVE_RATE[voice.codec]
    import soundfile as sf

    return int(sf.info(str(path)).samplerate)


def voice_info(voice: Voice) -> dict[str, Any]:
    d = asdict(voice)
    d.pop("must_mention")
    return d
