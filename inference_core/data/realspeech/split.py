"""Who and what is held out: whole speakers, and whole prompt groups, by a fixed rule.

Why both: a held-out *speaker* measures a new voice; a held-out *prompt group* measures new
text. Prompts with the same name are translations of each other (``vm-intro`` in en, es, fr
...), and prompts of one family share phrases (``vm-review``, ``vm-review-urgent``), so text
is held out by group, for every speaker and language at once:

* ``val``  = held-out speakers × held-out groups (the reported figures)
* ``tune`` = training speakers × held-out groups (choosing sampler defaults; unseen text)
* ``train`` = training speakers × the other groups
* ``val_seen_text`` = held-out speakers × the other groups: a new voice saying text that other
  voices say in training. Kept, clearly named, never mixed into ``val``.

Groups: the sub-folder of a prompt (``digits/``, ``letters/``, ``phonetic/`` ...), else the first
``-``/``_`` token of its name (``conf``, ``queue``, ``agent``); a family holding more than
:data:`SPLIT_FAMILY_SHARE` of all names (``vm``) is split by its first two tokens
(``vm-review``). Groups larger than :data:`MAX_HELDOUT_GROUP_SHARE` are never held out (they
would empty training of a whole kind of prompt, e.g. ``digits/``). The held-out groups are
drawn in a seeded order until :data:`HELDOUT_SHARE` of the names is reached.

Speakers: every language holds out at least one speaker, and a language with one speaker
(English, Russian) holds it out, never training on it; one person is one speaker in every
language (Allison Smith speaks the English and the Spanish core set). Then, in this order of
priority: ``val`` has both sexes; every language with several speakers keeps one in training;
training keeps a 16 kHz (wideband) speaker; as few speakers as possible are held out. Among
equally good assignments the seed chooses. Everything is recorded in ``SOURCES.json``.

Fish Fillets (:mod:`.fillets`): the prompt groups are the game's *levels* (the ``<level>``
folder of ``sound/``, ``share`` for the lines any level plays; group ``fillets/<level>``), and
the same level is held out in both languages, since a line's Czech and Dutch versions translate
one English line. A quarter of the levels (by count, :data:`HELDOUT_SHARE`) is held out, drawn
in a seeded order (:func:`heldout_levels`). Its speakers' splits are fixed in the voice table
(``Voice.fixed_split``), not chosen by :func:`choose_speakers`, so the Asterisk assignment is
untouched: held out are the Dutch big fish (M) and the Czech small fish (F), trained on the
Czech big fish (M) and the Dutch small fish (F), so ``val`` gains a male and a female voice in
two new languages and training a male and a female wideband voice. The four splits follow the
same rule as above (speaker held out or not x level held out or not); :func:`leakage` checks
that no speaker and no group is both in training and held out.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

HELDOUT_SHARE = 0.25
SPLIT_FAMILY_SHARE = 0.10
MAX_HELDOUT_GROUP_SHARE = 0.10


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[-_]", name) if t]


def family(name: str) -> str:
    if "/" in name:
        return name.split("/", 1)[0] + "/"
    toks = _tokens(name)
    return toks[0].lower() if toks else name


def group_map(names: Iterable[str]) -> dict[str, str]:
    """Prompt name → group, for the universe of ``names`` (all transcripts' names)."""
    names = sorted(set(names))
    fam = {n: family(n) for n in names}
    counts: dict[str, int] = {}
    for f in fam.values():
        counts[f] = counts.get(f, 0) + 1
    out = {}
    for n in names:
        f = fam[n]
        if not f.endswith("/") and counts[f] > SPLIT_FAMILY_SHARE * len(names):
            toks = _tokens(n)
            out[n] = "-".join(t.lower() for t in toks[:2])
        else:
            out[n] = f
    return out


def group_of(name: str, groups: dict[str, str]) -> str:
    """Group of a name; names outside the universe (prompts without transcript) by family."""
    return groups.get(name) or family(name)


def heldout_groups(groups: dict[str, str], seed: int, share: float = HELDOUT_SHARE) -> list[str]:
    """The held-out groups: seeded order, taken while the held-out share stays <= ``share``."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    total = sum(sizes.values())
    if total == 0:
        return []
    order = sorted(sizes)
    perm = np.random.default_rng([seed, 2024]).permutation(len(order))
    target = share * total
    taken: list[str] = []
    n = 0
    for k in perm:
        g = order[int(k)]
        if sizes[g] > MAX_HELDOUT_GROUP_SHARE * total and total >= 20:
            continue
        if n + sizes[g] <= target or not taken:
            taken.append(g)
            n += sizes[g]
        if n >= target - 0.01 * total:
            break
    return sorted(taken)


def impostor_names(name: str, texts: dict[str, str], groups: dict[str, str], k: int = 4,
                   allowed: set[str] | None = None) -> list[str]:
    """``k`` other prompts of the language whose texts are nearest in length, from other groups
    and with other texts (deterministic); ``allowed`` limits the candidates."""
    own = texts[name]
    g = group_of(name, groups)
    cands = sorted((abs(len(t) - len(own)), n) for n, t in texts.items()
                   if n != name and group_of(n, groups) != g and t.lower() != own.lower()
                   and (allowed is None or n in allowed))
    return [n for _, n in cands[:k]]


@dataclass(frozen=True)
class SpeakerFacts:
    speaker: str
    languages: tuple[str, ...]
    sex: str          # F / M
    wideband: bool    # recorded at 16 kHz


def choose_speakers(facts: list[SpeakerFacts], seed: int) -> dict[str, Any]:
    """Held-out and training speakers by the rule in the module docstring."""
    speakers = sorted(f.speaker for f in facts)
    by = {f.speaker: f for f in facts}
    langs = sorted({lang for f in facts for lang in f.languages})
    speakers_of = {lang: [s for s in speakers if lang in by[s].languages] for lang in langs}
    forced = sorted({s for lang in langs if len(speakers_of[lang]) == 1 for s in speakers_of[lang]})
    soft_names = ["val_has_both_sexes", "every_multi_speaker_language_trains_one",
                  "train_has_a_wideband_speaker", "fewest_heldout_speakers"]
    best: tuple[int, ...] | None = None
    cands: list[frozenset[str]] = []
    free = [s for s in speakers if s not in forced]
    for bits in itertools.product((False, True), repeat=len(free)):
        val = frozenset(forced) | {s for s, b in zip(free, bits) if b}
        train = [s for s in speakers if s not in val]
        if not all(any(s in val for s in speakers_of[lang]) for lang in langs):
            continue
        score = (
            int({by[s].sex for s in val} >= {"F", "M"} or {by[s].sex for s in speakers} < {"F", "M"}),
            int(all(any(s not in val for s in speakers_of[lang]) for lang in langs
                    if len(speakers_of[lang]) > 1)),
            int(any(by[s].wideband for s in train) or not any(by[s].wideband for s in speakers)),
            -len(val),
        )
        if best is None or score > best:
            best, cands = score, [val]
        elif score == best:
            cands.append(val)
    if best is None:
        raise ValueError("no speaker assignment holds out a speaker in every language")
    cands.sort(key=lambda v: sorted(v))
    pick = cands[int(np.random.default_rng([seed, 77]).integers(len(cands)))]
    unmet = [n for n, v in zip(soft_names[:3], best[:3]) if not v]
    return {"val": sorted(pick), "train": [s for s in speakers if s not in pick],
            "forced_val": forced, "equally_good_assignments": len(cands), "constraints_unmet": unmet,
            "priorities": soft_names}


def split_of(speaker_heldout: bool, group_heldout: bool) -> str:
    if speaker_heldout:
        return "val" if group_heldout else "val_seen_text"
    return "tune" if group_heldout else "train"


def heldout_levels(levels: Iterable[str], seed: int, share: float = HELDOUT_SHARE) -> list[str]:
    """A seeded ``share`` of the levels, by count (every level weighs one)."""
    return heldout_groups({lv: lv for lv in levels}, seed, share)


def leakage(kept: Iterable[Any]) -> dict[str, Any]:
    """Speakers in ``train`` that are also in ``val``/``val_seen_text``, and groups in ``train``
    that are also in ``val``/``tune`` (both must be empty), over kept utterances (``.split``,
    ``.group``, ``.vd.voice.speaker``)."""
    spk: dict[str, set[str]] = {}
    grp: dict[str, set[str]] = {}
    for k in kept:
        spk.setdefault(k.split, set()).add(k.vd.voice.speaker)
        grp.setdefault(k.split, set()).add(k.group)
    train_s, train_g = spk.get("train", set()), grp.get("train", set())
    return {"speakers_in_train_and_heldout": sorted(train_s & (spk.get("val", set()) | spk.get("val_seen_text", set()))),
            "groups_in_train_and_heldout": sorted(train_g & (grp.get("val", set()) | grp.get("tune", set()))),
            "groups_in_val_and_val_seen_text": sorted(grp.get("val", set()) & grp.get("val_seen_text", set()))}


def phone_key(phones: Iterable[tuple[str, float, float]]) -> tuple[str, ...]:
    """What an utterance says, as its phones without pauses (lower case, no stress digits)."""
    out = []
    for lab, _, _ in phones:
        p = "".join(ch for ch in str(lab).lower() if ch.isalpha())
        if p and p not in ("sil", "sp", "pau"):
            out.append(p)
    return tuple(out)


def same_phones_as_heldout(kept: Iterable[Any], corpus: str) -> set[str]:
    """Training utterances of ``corpus`` that say what a held-out-group utterance (``val`` or
    ``tune``) says, by phones: a held-out *text* must stay unheard in training even where it is
    written otherwise or comes from another package (a stamp called "One." against the Asterisk
    digit). Returns their uids (``.uid``, ``.phones``, ``.split``, ``.vd.voice.corpus``)."""
    kept = list(kept)
    heldout = {phone_key(k.phones) for k in kept if k.split in ("val", "tune")}
    return {k.uid for k in kept if k.split == "train" and k.vd.voice.corpus == corpus
            and phone_key(k.phones) in heldout}


def drop_same_phones_as_heldout(kept: list[Any], corpus: str, dropped: dict[str, dict[str, int]],
                                voice_notes: dict[str, dict[str, Any]]) -> list[Any]:
    """``kept`` without :func:`same_phones_as_heldout`'s utterances, counted in ``dropped`` and
    taken off their voice's ``kept`` count in ``voice_notes``."""
    gone = same_phones_as_heldout(kept, corpus)
    for k in kept:
        if k.uid in gone:
            d = dropped.setdefault(k.vd.voice.key, {})
            d["same_phones_as_heldout"] = d.get("same_phones_as_heldout", 0) + 1
            voice_notes[k.vd.voice.key]["kept"] -= 1
    return [k for k in kept if k.uid not in gone]
