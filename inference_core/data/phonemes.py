"""One phoneme inventory (lower-case ARPAbet) for every TTS engine, and per-frame labels.

Why ARPAbet: flite already speaks it, espeak-ng's mnemonics map onto it, and the
evaluator's classes (bilabial, rounded, spread, open) are defined on it. Labels
carry no stress digits; silence is ``sil``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

VOWELS = ("aa", "ae", "ah", "ao", "aw", "ax", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw")
CONSONANTS = ("b", "ch", "d", "dh", "dx", "f", "g", "hh", "jh", "k", "l", "m", "n", "ng", "p", "q", "r",
              "s", "sh", "t", "th", "v", "w", "y", "z", "zh")
INVENTORY: tuple[str, ...] = VOWELS + CONSONANTS + ("sil",)

#: Classes the evaluator scores (same sets as ``inference_core.training.evaluate``).
CLASSES: dict[str, frozenset[str]] = {
    "bilabial": frozenset({"p", "b", "m"}),
    "rounded": frozenset({"uw", "uh", "ow", "w", "oy"}),
    "spread": frozenset({"iy", "ih", "ey", "eh", "y"}),
    "open": frozenset({"aa", "ae", "ah", "ao", "aw", "ay"}),
    "labiodental": frozenset({"f", "v"}),
    "silence": frozenset({"sil"}),
}

# espeak-ng English mnemonics (phsource/ph_english*) → one or more ARPAbet phones.
# Several map to two phones (diphthong + schwa, syllabic l): the duration is split.
ESPEAK_MAP: dict[str, tuple[str, ...]] = {
    "@": ("ax",), "@2": ("ax",), "@5": ("ax",), "@-": ("ax",), "a#": ("ax",), "@L": ("ax", "l"),
    "3": ("er",), "3:": ("er",), "VR": ("er",), "IR": ("er",), "@r": ("er",),
    "a": ("ae",), "aa": ("ae",), "a2": ("ae",), "A:": ("aa",), "A@": ("aa", "r"), "A": ("aa",),
    "aI": ("ay",), "aI2": ("ay",), "aI@": ("ay", "ax"), "aI3": ("ay", "er"), "aU": ("aw",),
    "aU@": ("aw", "ax"), "e": ("eh",), "E": ("eh",), "E2": ("eh",), "e@": ("eh", "r"), "eI": ("ey",),
    "i": ("iy",), "i:": ("iy",), "i@": ("iy", "ax"), "i@3": ("iy", "er"), "I": ("ih",), "I#": ("ih",),
    "I2": ("ih",), "0": ("aa",), "O": ("ao",), "O:": ("ao",), "O2": ("ao",), "O@": ("ao", "r"),
    "o@": ("ao", "r"), "OI": ("oy",), "oU": ("ow",), "o": ("ow",), "U": ("uh",), "U@": ("uh", "r"),
    "u:": ("uw",), "u": ("uw",), "V": ("ah",),
    "p": ("p",), "b": ("b",), "t": ("t",), "t2": ("t",), "t[": ("t",), "t#": ("dx",), "*": ("dx",),
    "d": ("d",), "d#": ("d",), "k": ("k",), "g": ("g",), "f": ("f",), "v": ("v",), "T": ("th",),
    "D": ("dh",), "s": ("s",), "z": ("z",), "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("hh",),
    "C": ("hh",), "tS": ("ch",), "dZ": ("jh",), "m": ("m",), "n": ("n",), "n-": ("n",), "N": ("ng",),
    "l": ("l",), "l/": ("l",), "r": ("r",), "r-": ("r",), "w": ("w",), "w#": ("w",), "W": ("w",),
    "j": ("y",), ";": ("y",), "?": ("q",),
}
_FIRST_CHAR = {  # fallback for other languages' mnemonics: judge by the leading symbol
    "a": "aa", "A": "aa", "e": "eh", "E": "eh", "i": "iy", "I": "ih", "o": "ow", "O": "ao", "0": "ao",
    "u": "uw", "U": "uh", "y": "uw", "Y": "uw", "V": "ah", "@": "ax", "3": "er", "&": "ae",
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "q": "k", "f": "f", "v": "v",
    "s": "s", "z": "z", "S": "sh", "Z": "zh", "T": "th", "D": "dh", "h": "hh", "x": "hh", "X": "hh",
    "C": "hh", "m": "m", "n": "n", "N": "ng", "J": "n", "l": "l", "L": "l", "r": "r", "R": "r",
    "w": "w", "j": "y", "c": "k", "?": "q", "*": "dx", "B": "v", "G": "g", "F": "f",
}
FLITE_MAP: dict[str, tuple[str, ...]] = {"pau": ("sil",), "h#": ("sil",), "brth": ("sil",)}
# festival's ``radio`` phone set (US voices) is ARPAbet plus TIMIT-style extras.
FESTIVAL_RADIO_MAP: dict[str, tuple[str, ...]] = {
    "axr": ("er",), "el": ("ax", "l"), "em": ("ax", "m"), "en": ("ax", "n"), "nx": ("n",), "hv": ("hh",),
}
# festival's ``mrpa`` phone set (British voices): other symbols, some spelled like other ARPAbet phones
# (mrpa "uh" is the vowel of "cut", ARPAbet "ah"), so it is mapped as a whole.
FESTIVAL_MRPA_MAP: dict[str, tuple[str, ...]] = {
    "#": ("sil",), "a": ("ae",), "aa": ("aa",), "ai": ("ay",), "au": ("aw",), "e": ("eh",),
    "e@": ("eh", "r"), "ei": ("ey",), "i": ("ih",), "i@": ("iy", "ax"), "ii": ("iy",), "o": ("aa",),
    "oi": ("oy",), "oo": ("ao",), "ou": ("ow",), "u": ("uh",), "u@": ("uh", "r"), "uh": ("ah",),
    "uu": ("uw",), "@": ("ax",), "@@": ("er",), "h": ("hh",), "y": ("y",),
}


def map_espeak(mnemonic: str) -> tuple[str, ...]:
    """espeak-ng phoneme mnemonic → ARPAbet phones (pauses ``_``, ``_:``, ``_!`` → ``sil``)."""
    m = mnemonic.strip()
    if not m or m.startswith("_"):
        return ("sil",)
    if m in ESPEAK_MAP:
        return ESPEAK_MAP[m]
    stripped = m.rstrip("0123456789#:;!/-[")
    if stripped in ESPEAK_MAP:
        return ESPEAK_MAP[stripped]
    return (_FIRST_CHAR.get(m[0], "ax"),)


def map_flite(phone: str) -> tuple[str, ...]:
    p = phone.strip().lower()
    if p in FLITE_MAP:
        return FLITE_MAP[p]
    p = "".join(ch for ch in p if ch.isalpha())
    return (p,) if p in INVENTORY else ("ax",)


def map_festival(phone: str) -> tuple[str, ...]:
    """festival ``radio`` phone (kal, ked, the US HTS voices) → ARPAbet phones."""
    p = phone.strip().lower()
    return FESTIVAL_RADIO_MAP.get(p) or map_flite(p)


def map_festival_mrpa(phone: str) -> tuple[str, ...]:
    """festival ``mrpa`` phone (British voices) → ARPAbet phones; consonants are spelled alike."""
    p = phone.strip().lower()
    return FESTIVAL_MRPA_MAP.get(p) or map_flite(p)


def to_arpabet(phones: Sequence[tuple[str, float, float]], engine: str) -> list[tuple[str, float, float]]:
    """Engine phones → merged ARPAbet timeline (split multi-phone symbols, merge adjacent silence).

    ``engine``: ``espeak``, ``flite``, ``festival`` (radio phone set) or ``festival-mrpa``."""
    mapper = {"espeak": map_espeak, "festival": map_festival,
              "festival-mrpa": map_festival_mrpa}.get(engine, map_flite)
    out: list[tuple[str, float, float]] = []
    for label, s, e in phones:
        parts = mapper(label)
        d = (e - s) / len(parts)
        for k, p in enumerate(parts):
            ps, pe = s + k * d, s + (k + 1) * d
            if out and p == "sil" and out[-1][0] == "sil":
                out[-1] = ("sil", out[-1][1], pe)
            else:
                out.append((p, ps, pe))
    return out


# language → espeak mnemonic → English espeak mnemonics that map_espeak reads right
LANG_REWRITE: dict[str, dict[str, tuple[str, ...]]] = {
    # [β] is Spanish /b/ between vowels: a bilabial gesture, not map_espeak's labiodental v;
    # [ɣ] (Q) is /g/, not a vowel
    "es": {"B": ("b",), "Q": ("g",)},
    "ru": {"y": ("I",),                   # ы: unrounded (map_espeak's y is the rounded French u)
           "ja": ("j", "a"), "ju": ("j", "u:"), "jo": ("j", "o"), "je": ("j", "e"),  # я ю ё е
           "8": ("@",)},
    "fr": {},
    "it": {},
    "en": {},
    # Czech: affricates c [ts] and dz as two phones (map_espeak would keep only the stop), ť (c)
    # a coronal stop, not k; the diphthong eu; Q is voiced ch [ɦ/ɣ] before a voiced consonant
    "cs": {"ts": ("t", "s"), "dz": ("d", "z"), "c": ("t",), "eU": ("e", "u:"), "Q": ("x",)},
    # Dutch: Q is g [ɣ] (a fricative like x, not a vowel); rounded 8 [ʏ], Y: [ø:], Wy (ui [œy]);
    # the diphthongs ei/ij, ou/au, eeuw; "!" is an unreleased stop before another (wat denk)
    "nl": {"Q": ("x",), "8": ("U",), "Y:": ("o",), "Wy": ("O", "U"), "EI": ("eI",), "VU": ("aU",),
           "eU": ("e", "u:"), "!": ("t",)},
}
MARKER_PREFIX = "("  # "(en)", "(fr)": espeak's language-switch markers, not sounds


def espeak_to_arpabet(phones: Sequence[tuple[str, float, float]], language: str
                      ) -> list[tuple[str, float, float]]:
    """espeak-ng phoneme events of ``language`` (its base code: ``es``, ``en``) → merged ARPAbet
    timeline: the language's rewrites first, language-switch markers give their time to the
    phone before them."""
    rewrite = LANG_REWRITE.get(language, {})
    out: list[tuple[str, float, float]] = []
    for label, s, e in phones:
        if label.startswith(MARKER_PREFIX):  # give a marker's time to the previous phone
            if out:
                out[-1] = (out[-1][0], out[-1][1], e)
            continue
        parts = rewrite.get(label, (label,))
        d = (e - s) / len(parts)
        out.extend((p, s + k * d, s + (k + 1) * d) for k, p in enumerate(parts))
    return to_arpabet(out, "espeak")


def frame_labels(phonemes: Sequence[str], starts: Sequence[float], ends: Sequence[float],
                 n_frames: int, fps: float) -> list[str]:
    """Per-frame phoneme label: the phone whose span contains the frame's centre ``(f+0.5)/fps``.

    Frames outside every span get ``sil``. Labels are normalised (lower case, no stress digits).
    """
    labels = ["sil"] * n_frames
    for lab, s, e in zip(phonemes, starts, ends):
        norm = "".join(ch for ch in str(lab).lower() if ch.isalpha())
        f0 = max(0, int(math.ceil(float(s) * fps - 0.5)))
        f1 = min(n_frames, int(math.ceil(float(e) * fps - 0.5)))
        for f in range(f0, f1):
            labels[f] = norm
    return labels


def frame_classes(phonemes: Sequence[str], starts: Sequence[float], ends: Sequence[float],
                  n_frames: int, fps: float) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per-frame labels and boolean masks for each class in :data:`CLASSES`.

    For the evaluator: e.g. ``masks["bilabial"]`` marks the frames whose centre
    lies inside a /p b m/.
    """
    labels = frame_labels(phonemes, starts, ends, n_frames, fps)
    masks = {name: np.array([lab in members for lab in labels], dtype=bool)
             for name, members in CLASSES.items()}
    return labels, masks
