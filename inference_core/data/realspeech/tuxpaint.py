"""Tux Paint's spoken stamp descriptions (Debian ``tuxpaint-stamps-default``, GPL-2) as real speech.

Why it is here: the held-out figures are limited by how few real voices training hears (three
sentence-level speakers). Tux Paint ships a spoken description of most of its ~900 stamps in
several languages, each language read by a volunteer ("A frog.", "George, the blue groper."): short
phrases and sentences by nine more adult voices, wideband (44.1 kHz Vorbis), with their text.

What the package holds (tuxpaint-stamps-default 2022.06.04-1, read by hand):

* audio: ``usr/share/tuxpaint/stamps/<category>/<stem>_desc_<lang>.ogg`` (``<stem>_desc.ogg`` is
  English); some stamps share one recording (``frog-1`` and ``frog`` hold the same bytes), so a
  recording is used once, under its first name (:func:`list_prompts`);
* texts: ``<stem>.txt`` beside it, the English text on the first line and ``<lang>.utf8=<text>``
  for each translation; the recording reads the translation of its language;
* readers: the upstream changelog (``changelog.gz``) credits the descriptive sounds of a language
  to a person ("Descriptive sounds by GCI students ... French: PaulK"); some languages name nobody.
  A language's recordings are treated as one speaker (the changelog names one reader for each
  language it names); :func:`check_credit` re-reads the credit line.

Every Tux Paint voice trains (``Voice.fixed_split``): none of its readers is a held-out speaker,
and its groups (the stamp categories, :func:`group_of`) never enter the held-out draw, so the
Asterisk and Fish Fillets splits stay exactly as they were. Texts with digits, currency signs or
parentheses are skipped (a reader may say "one dollar" for "$1" or leave the brackets out), and
the usual fit test (the text must fit the recording better than four other descriptions) drops
a recording that reads another text.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from pathlib import Path
from typing import Any

from ...shared.hashing import file_sha256
from .sources import SourceError, Transcript, Voice

CHANGELOG = "usr/share/doc/tuxpaint-stamps-default/changelog.gz"
GROUP_PREFIX = "tuxpaint/"
_UNSURE = re.compile(r"[0-9$€£%()\[\]{}|/\\#&@*_+=<>]")


def _suffix(voice: Voice) -> str:
    return "" if voice.language == "en" else f"_{voice.language}"


def list_prompts(root: Path, voice: Voice) -> dict[str, Path]:
    """``<category>/<stem>`` → the stamp's description recording in the voice's language.

    A recording whose bytes another stamp already has (sorted by name) is left out: the same
    take under two names would train twice and could sit on both sides of a group line."""
    base = root / voice.sound_dir
    if not base.is_dir():
        raise SourceError(f"{voice.package}: no stamp folder {voice.sound_dir}")
    tail = f"_desc{_suffix(voice)}.ogg"
    found = {p.relative_to(base).as_posix()[: -len(tail)]: p
             for p in base.rglob(f"*{tail}") if p.is_file() and p.name.endswith(tail)}
    out: dict[str, Path] = {}
    seen: set[str] = set()
    for name in sorted(found):
        digest = file_sha256(found[name])
        if digest not in seen:
            seen.add(digest)
            out[name] = found[name]
    return out


def read_description(path: Path, language: str) -> str | None:
    """The ``<language>.utf8=`` line of a stamp's text file (English: its first line)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if language == "en":
        return lines[0].strip() if lines and "=" not in lines[0] else None
    key = f"{language}.utf8="
    for line in lines:
        if line.startswith(key):
            return line[len(key):].strip()
    return None


def clean(text: str) -> tuple[str | None, str]:
    """(spoken text, "") or (None, why it is skipped)."""
    t = unicodedata.normalize("NFC", text).strip()
    t = re.sub(r"[«»“”„\"]", "", t).strip()
    if not re.search(r"\w", t):
        return None, "not_speech"
    if _UNSURE.search(t):
        return None, "uncertain_transcript"
    return re.sub(r"\s+", " ", t), ""


def texts_for(root: Path, voice: Voice, prompts: dict[str, Path]) -> tuple[Transcript, dict[str, str], dict[str, str]]:
    """(the transcript as written, name → spoken text, name → reason skipped)."""
    base = root / voice.sound_dir
    written: dict[str, str] = {}
    texts: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in sorted(prompts):
        raw = read_description(base / f"{name}.txt", voice.language)
        if raw is None:
            skipped[name] = "no_transcript"
            continue
        written[name] = raw
        t, why = clean(raw)
        if t is None:
            skipped[name] = why
        else:
            texts[name] = t
    return Transcript(written, set(), str(base / "<category>/<stem>.txt")), texts, skipped


def group_of(name: str) -> str:
    """A description's group is its stamp category (``animals/amphibians``): impostor texts
    (:func:`.split.impostor_names`, other groups only) then come from other categories."""
    return GROUP_PREFIX + name.rsplit("/", 1)[0]


def read_changelog(root: Path) -> str:
    path = root / CHANGELOG
    if not path.is_file():
        raise SourceError(f"tuxpaint-stamps-default: no {CHANGELOG}")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        return re.sub(r"\s+", " ", f.read())


def check_credit(voice: Voice, root: Path, package: str) -> list[dict[str, Any]]:
    """A named reader must be named so in the upstream changelog (the line is re-read)."""
    if not voice.credit_line:
        return []
    if voice.credit_line not in read_changelog(root):
        raise SourceError(f"{package}: the changelog no longer says {voice.credit_line!r}: re-read the "
                          f"credit of {voice.key}")
    return [{"file": f"/{CHANGELOG}", "package": package, "sha256": file_sha256(root / CHANGELOG),
             "line": voice.credit_line}]
