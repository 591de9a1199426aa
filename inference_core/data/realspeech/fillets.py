"""Fish Fillets NG's voice acting (Debian main, GPL-2) as real speech: layout, dialog texts, roles.

What the packages hold (fillets-ng-data 1.0.1-1.1, read by hand):

* audio, ``fillets-ng-data-cs`` / ``-nl``: ``usr/share/games/fillets-ng/sound/<level>/<lang>/<id>.ogg``,
  and ``sound/share/<kind>/<lang>/<id>.ogg`` for lines any level may play (border shouts, jokes);
  Vorbis at 22.05 or 44.1 kHz, mono or stereo (decoded with soundfile, resampled with soxr).
* texts, ``fillets-ng-data``: ``usr/share/games/fillets-ng/script/<level>/dialogs_<lang>.lua`` (and
  ``script/share/<kind>_dialogs_<lang>.lua``): each line is ``dialogId("<id>", "<font>",
  "<English>")`` followed by ``dialogStr("<translation>")`` (``dialogs_en.lua`` has no
  ``dialogStr``; some ``dialogId`` have none either, a few strings start on the next line).
* speakers: the game's two fish. Ids with ``-m-`` are the small fish's lines (written in
  ``font_small``), ids with ``-v-`` the big fish's (``font_big``). Every other id is another
  character (parrot, crabs, vikings, ...) or uses another id scheme (``help1``, ``rand-0-1``,
  ``v-tady``: the levels Fish Fillets NG added), whose speaker this rule cannot tell: left
  out, so each speaker is one person. An ``-m-``/``-v-`` id in the other fish's font is
  dropped (``role_font_mismatch``).
* prompt names: ``<level>/<id>`` (``share/<kind>/<id>``); a name's *group* is its level,
  ``fillets/<level>`` (see :mod:`.split`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...shared.hashing import file_sha256
from .sources import SourceError, Transcript, Voice

SCRIPT_DIR = "usr/share/games/fillets-ng/script"
ROLE_MARK = {"small": "-m-", "big": "-v-"}
ROLE_FONT = {"small": "font_small", "big": "font_big"}
GROUP_PREFIX = "fillets/"


@dataclass(frozen=True)
class Dialog:
    id: str
    font: str
    english: str
    text: str | None   # the dialogStr translation; None where the file gives none
    file: str          # path below the package root


# ----------------------------------------------------------------------------- Lua dialog files

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "\n": "\n"}


def _tokens(src: str) -> Iterator[tuple[str, str]]:
    """Lua tokens: ("str", value) for string literals (escapes resolved), ("name", ...) and
    ("punct", ...); comments (``--`` to the end of the line, ``--[[ ... ]]``) skipped."""
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif src.startswith("--", i):
            m = re.compile(r"--\[(=*)\[").match(src, i)
            if m:
                end = src.find("]" + m.group(1) + "]", m.end())
                i = n if end < 0 else end + len(m.group(1)) + 2
            else:
                end = src.find("\n", i)
                i = n if end < 0 else end + 1
        elif ch in "\"'":
            out, i = [], i + 1
            while i < n and src[i] != ch:
                if src[i] == "\\" and i + 1 < n:
                    nxt = src[i + 1]
                    if nxt.isdigit():
                        m = re.compile(r"\d{1,3}").match(src, i + 1)
                        assert m is not None
                        out.append(chr(int(m.group(0))))
                        i = m.end()
                        continue
                    out.append(_ESCAPES.get(nxt, nxt))
                    i += 2
                    continue
                out.append(src[i])
                i += 1
            yield "str", "".join(out)
            i += 1
        elif ch.isalpha() or ch == "_":
            m = re.compile(r"[A-Za-z_]\w*").match(src, i)
            assert m is not None
            yield "name", m.group(0)
            i = m.end()
        else:
            yield "punct", ch
            i += 1


def parse_dialogs(src: str, file: str = "") -> list[Dialog]:
    """The ``dialogId(id, font, english)`` calls of a dialogs_<lang>.lua file, each with the
    ``dialogStr(text)`` that follows it (before the next dialogId), or None."""
    toks = list(_tokens(src))
    out: list[Dialog] = []
    k = 0
    while k < len(toks):
        kind, val = toks[k]
        if kind == "name" and val in ("dialogId", "dialogStr") and k + 1 < len(toks) and toks[k + 1] == ("punct", "("):
            args: list[str] = []
            j = k + 2
            while j < len(toks) and toks[j] != ("punct", ")"):
                if toks[j][0] == "str":
                    args.append(toks[j][1])
                j += 1
            if val == "dialogId" and len(args) >= 3:
                out.append(Dialog(args[0], args[1], args[2], None, file))
            elif val == "dialogStr" and args and out and out[-1].text is None:
                last = out[-1]
                out[-1] = Dialog(last.id, last.font, last.english, args[0], file)
            k = j + 1
            continue
        k += 1
    return out


def read_dialogs(root: Path, language: str) -> tuple[Transcript, dict[str, Dialog]]:
    """Every ``*dialogs_<language>.lua`` below ``script/``: id → translation (a Transcript; ids
    given twice with different texts are ambiguous) and id → Dialog (font, English, file)."""
    base = root / SCRIPT_DIR
    if not base.is_dir():
        raise SourceError(f"no {SCRIPT_DIR} in {root}")
    texts: dict[str, str] = {}
    dup: set[str] = set()
    dialogs: dict[str, Dialog] = {}
    for path in sorted(base.glob(f"*/*dialogs_{language}.lua")):
        rel = path.relative_to(root).as_posix()
        for d in parse_dialogs(path.read_text(encoding="utf-8", errors="replace"), rel):
            dialogs.setdefault(d.id, d)
            if d.text is None:
                continue
            if d.id in texts and texts[d.id] != d.text:
                dup.add(d.id)
            texts.setdefault(d.id, d.text)
    return Transcript(texts, dup, f"{SCRIPT_DIR}/*/*dialogs_{language}.lua"), dialogs


# ----------------------------------------------------------------------------- roles, prompts, groups

def role_of(dialog_id: str) -> str:
    """``small`` (``-m-`` in the id), ``big`` (``-v-``), else "" (another character)."""
    small, big = ROLE_MARK["small"] in dialog_id, ROLE_MARK["big"] in dialog_id
    return "small" if small and not big else "big" if big and not small else ""


def dialog_id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def level_of(name: str) -> str:
    return name.split("/", 1)[0]


def group_of(name: str) -> str:
    return GROUP_PREFIX + level_of(name)


def list_prompts(root: Path, voice: Voice) -> dict[str, Path]:
    """This fish's lines in the voice's language: ``<level>/<id>`` → .ogg file."""
    base = root / voice.sound_dir
    if not base.is_dir():
        raise SourceError(f"{voice.package}: no sound folder {voice.sound_dir}")
    out: dict[str, Path] = {}
    for p in sorted(base.rglob("*.ogg")):
        parts = p.relative_to(base).parts
        if len(parts) < 3 or parts[-2] != voice.language or not p.is_file():
            continue
        if role_of(p.stem) == voice.role:
            out["/".join(parts[:-2] + (p.stem,))] = p
    return out


def texts_for(voice: Voice, prompts: dict[str, Path], tr: Transcript, dialogs: dict[str, Dialog]
              ) -> tuple[dict[str, str], dict[str, str]]:
    """(name → cleaned spoken text, name → reason it is skipped before aligning)."""
    from .text import clean_dialog

    texts: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in prompts:
        did = dialog_id(name)
        if did not in tr.texts:
            skipped[name] = "no_transcript"
        elif did in tr.duplicates:
            skipped[name] = "ambiguous_transcript"
        elif dialogs[did].font != ROLE_FONT[voice.role]:
            skipped[name] = "role_font_mismatch"
        else:
            text, why = clean_dialog(tr.texts[did], voice.language)
            if text is None:
                skipped[name] = why
            else:
                texts[name] = text
    return texts, skipped


def check_credit_files(voice: Voice, root: Path, package: str) -> list[dict[str, Any]]:
    """The files a credit was read from (e.g. the credits image) must be the ones read."""
    out = []
    for rel, want in voice.credit_files:
        path = root / rel
        if not path.is_file():
            raise SourceError(f"{package}: no {rel} (the credit of {voice.key} was read from it)")
        got = file_sha256(path)
        if got != want:
            raise SourceError(f"{package}: {rel} has sha256 {got}, not {want}: re-read the credit of {voice.key}")
        out.append({"file": f"/{rel}", "package": package, "sha256": got})
    return out
