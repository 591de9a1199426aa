"""Transcript lines → the words that were spoken (or a reason to skip the prompt).

Why: the Asterisk transcripts are notes for people. ``[ascending tones]`` and ``<beep>`` mark
non-speech, ``(simple tone sound plays)`` and ``(enfatico)`` are remarks nobody said, and
``[quello]`` may or may not have been read; an aligner forced onto words that were not spoken
puts every later boundary in the wrong place. So remarks are removed, bracketed words make the
prompt *uncertain* (skipped), and symbols are only kept where a language's reading of them is
known (``*`` = "star", ``#`` = "pound" in English telephone prompts).
"""

from __future__ import annotations

import re
import unicodedata

# what telephone prompts say for key symbols (language → symbol → words)
SYMBOL_WORDS: dict[str, dict[str, str]] = {
    "en": {"*": " star ", "#": " pound ", "&": " and ", "%": " percent ", "@": " at "},
    "es": {"*": " asterisco ", "#": " numeral ", "&": " y ", "%": " por ciento "},
    "fr": {"*": " étoile ", "#": " dièse ", "&": " et ", "%": " pour cent "},
    "it": {"*": " asterisco ", "#": " cancelletto ", "&": " e ", "%": " per cento "},
    "ru": {"*": " звёздочка ", "#": " решётка ", "&": " и ", "%": " процентов "},
}
NON_SPEECH_DIRS = ("silence/",)
NON_SPEECH_NAMES = {"beep", "beeperr", "ascending-2tone", "descending-2tone", "tt-monkeys",
                    "confbridge-join", "confbridge-leave"}


def clean(name: str, text: str, language: str) -> tuple[str | None, str]:
    """(spoken text or None, reason). Reasons: ``ok``, ``not_speech``, ``uncertain_transcript``."""
    if name.startswith(NON_SPEECH_DIRS) or name in NON_SPEECH_NAMES:
        return None, "not_speech"
    t = unicodedata.normalize("NFC", text).strip()
    if t.lower().startswith(name.lower() + ":"):  # "conf-adminmenu: conf-adminmenu: ..." (ru)
        t = t[len(name) + 1:].strip()
    t = re.sub(r"\([^)]*\)", " ", t)   # remarks
    t = re.sub(r"<[^>]*>", " ", t)     # <beep ascending>
    for m in re.finditer(r"\[([^\]]*)\]", t):
        if re.search(r"\w", m.group(1)):
            return None, ("not_speech" if not re.search(r"\w", re.sub(r"\[[^\]]*\]", " ", t))
                          else "uncertain_transcript")
    t = re.sub(r"\[[^\]]*\]", " ", t)  # "[@]" after "at": the symbol, not a second reading
    t = re.sub(r"[\"“”«»„]", " ", t)
    for sym, words in SYMBOL_WORDS.get(language, {}).items():
        t = t.replace(sym, words)
    t = re.sub(r"\s+", " ", t).strip()
    if not re.search(r"\w", t):
        return None, "not_speech"
    return t, "ok"


def words(text: str) -> list[str]:
    """Lower-case word tokens for a dictionary aligner: letters, digits, inner apostrophes and
    decimal points; hyphens and other punctuation split words."""
    t = text.lower().replace("’", "'")
    toks = re.findall(r"[\w']+(?:\.\d+)?", t)
    return [tok.strip("'") for tok in toks if tok.strip("'")]
