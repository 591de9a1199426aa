"""Transcript lines → the words that were spoken (or a reason to skip the prompt).

Why: the Asterisk transcripts are notes for people. ``[ascending tones]`` and ``<beep>`` mark
non-speech, ``(simple tone sound plays)`` and ``(enfatico)`` are remarks nobody said, and
``[quello]`` may or may not have been read; an aligner forced onto words that were not spoken
puts every later boundary in the wrong place. So remarks are removed, bracketed words make the
prompt *uncertain* (skipped), and symbols are only kept where a language's reading of them is
known (``*`` = "star", ``#`` = "pound" in English telephone prompts).

The Fish Fillets dialog lines are acted speech: their non-speech is interjections, laughter and
hums ("Au!", "Ha ha ha", "Hmmm..."), see :func:`clean_dialog`.
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


# Fish Fillets dialog lines (cs, nl): sounds that are not words. A line made only of these is not
# speech to align ("Au!", "Fuj!", "Ha ha ha", "MUAHHH"); espeak-ng spells a hum, hiss or growl
# letter by letter ("Hmmm" -> "há em em em", "Pssst" -> "pé es es es té"), so a line holding
# one cannot be aligned from its text. (Vowelless is not enough: Czech "v", "k", "smrt", "vlk"
# are words.)
INTERJECTIONS: dict[str, frozenset[str]] = {
    "cs": frozenset({"au", "auvajs", "auvajz", "fuj", "fí", "jé", "ach", "och", "ó", "á", "aha", "ahá", "ha",
                     "he", "hi", "chi", "uf", "jejda", "ajaj", "ouvej", "argh", "aargh", "bé", "bú", "hú",
                     "hahú", "joj"}),
    "nl": frozenset({"ai", "au", "auw", "bah", "gatver", "gadver", "jakkes", "o", "oh", "ah", "ach", "hè", "he",
                     "jee", "oei", "oef", "oeps", "ha", "hi", "argh", "aargh", "bwah"}),
}
_NON_LEXICAL = re.compile(r"^(?:e?h+m+|m{2,}|p+s+t+|p*s{2,}t*|š{2,}t*|[gb]?r{2,}|[gb]r{2,}|p+f{2,}|u?f{2,}|"
                          r"c?h+r{2,})$", re.I)  # hmm ehm mmm pst sss ššš grr brr pff uff
_LAUGH = re.compile(r"^(?:(?:mu|bw)a*h+|(?:mu|bw)?a?(?:(?:h|ch)[aeiouáéíóú]+){2,}h*)$", re.I)  # muahhh, haha
# a quotation mark, not an apostrophe: before a word (but not Dutch 't 's 'n 'k 'm 'r), or after one
_QUOTE_MARK = re.compile(r"(?<!\w)['’‘‚](?![tsnkmr]\b)|(?<!\w)['’‘‚](?!\w)|(?<=\w)['’‘‚](?!\w)")


def _squeeze(token: str) -> str:
    """Runs of three or more of one letter → two ("heeeeeel" → "heel", "Halóóó" → "Halóó")."""
    return re.sub(r"(\w)\1{2,}", lambda m: m.group(0)[:2], token, flags=re.I)


def non_lexical(token: str) -> bool:
    return bool(_NON_LEXICAL.match(token))


def is_interjection(token: str, language: str) -> bool:
    t = token.lower()
    once = re.sub(r"(\w)\1+", r"\1", t)  # "fuuuj" -> "fuj"
    known = INTERJECTIONS.get(language, frozenset())
    return (t in known or once in known or bool(_LAUGH.match(t)) or non_lexical(t)
            or (len(t) > 1 and len(set(t)) == 1))  # "Ááá", "Ooo"


def clean_dialog(text: str, language: str) -> tuple[str | None, str]:
    """A game's dialog line (already unescaped) → (spoken text or None, reason).

    Reasons: ``ok``; ``not_speech`` (no word, or only interjections and laughter);
    ``mostly_punctuation`` (fewer letters than other marks: "...tak...?"); ``non_lexical``
    (a hum, hiss or growl espeak-ng would spell: "Hmmm... těžko."). Kept lines lose quotation
    marks and have letter runs squeezed to two. Capitals are left alone: espeak-ng spells short
    all-capital words as the actors do for acronyms (VGA, ZX, WC); the few short ones that are
    emphasis ("DVA") are left to the transcript fit test."""
    t = unicodedata.normalize("NFC", text).strip()
    t = re.sub(r"[\"“”«»„]", " ", t)
    t = _QUOTE_MARK.sub(" ", t)
    toks = words(t)
    if not toks:
        return None, "not_speech"
    if all(is_interjection(w, language) for w in toks):
        return None, "not_speech"
    marks = re.sub(r"\s", "", t)
    if sum(ch.isalpha() for ch in marks) < 0.5 * len(marks):
        return None, "mostly_punctuation"
    if any(non_lexical(w) for w in toks):
        return None, "non_lexical"
    t = re.sub(r"\w+", lambda m: _squeeze(m.group(0)), t)
    t = re.sub(r"\s+", " ", t).strip()
    return t, "ok"


def words(text: str) -> list[str]:
    """Lower-case word tokens for a dictionary aligner: letters, digits, inner apostrophes and
    decimal points; hyphens and other punctuation split words."""
    t = text.lower().replace("’", "'")
    toks = re.findall(r"[\w']+(?:\.\d+)?", t)
    return [tok.strip("'") for tok in toks if tok.strip("'")]
