"""``SOURCES.json`` and ``summary.json`` of a real-speech build, and the dataset's source line.

``SOURCES.json``: every package (version, sha256), every voice (licence, attribution, the
copyright excerpt, f0, sex and where it comes from, what was kept and why not), the speakers
and the split rule with its outcome (held-out speakers, groups and levels, which speakers and
groups each split holds, the leakage check). ``summary.json``: minutes per split, language,
speaker, sex; drops by reason; the aligners' agreement and synthetic check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from . import sources as src
from . import split as sp

if TYPE_CHECKING:
    from .build import Kept, VoiceData

SPLITS = ("train", "tune", "val", "val_seen_text")
ROLE_F0_RATIO = 1.25  # the small fish's median f0 must be at least this much above the big fish's


def _minutes(items: Iterable[tuple[str, float]]) -> dict[str, float]:
    acc: dict[str, float] = {}
    for key, sec in items:
        acc[key] = acc.get(key, 0.0) + sec
    return {k: round(v / 60, 2) for k, v in sorted(acc.items())}


def _err_stats(errs: list[float]) -> dict[str, Any]:
    a = np.array(errs, float)
    if a.size == 0:
        return {"boundaries": 0}
    return {"boundaries": int(a.size), "median_ms": round(float(np.median(a)) * 1000, 1),
            "mean_ms": round(float(a.mean()) * 1000, 1), "p90_ms": round(float(np.percentile(a, 90)) * 1000, 1),
            "within_20ms": round(float((a <= 0.02).mean()), 3), "within_50ms": round(float((a <= 0.05).mean()), 3)}


def agreement(kept: list[Kept]) -> dict[str, Any]:
    """pocketsphinx vs espeak-dtw on the English prompts where both aligned."""
    from .align import boundary_errors

    errs: list[float] = []
    per_utt: list[float] = []
    n = 0
    for k in kept:
        s, d = k.res.get("sphinx", {}), k.res.get("dtw", {})
        if "phones" in s and "phones" in d:
            e = boundary_errors(s["phones"], d["phones"])
            if e.size:
                errs.extend(e.tolist())
                per_utt.append(float(np.median(e)))
                n += 1
    out = {"utterances": n, **_err_stats(errs)}
    if per_utt:
        out["median_of_utterance_medians_ms"] = round(float(np.median(per_utt)) * 1000, 1)
    return out


def synthetic_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in sorted({r["language"] for r in results}):
        rs = [r for r in results if r["language"] == lang]
        entry = {"sentences": len(rs), "espeak-dtw": _err_stats([e for r in rs for e in r["dtw"]])}
        if any("pocketsphinx" in r for r in rs):
            entry["pocketsphinx"] = _err_stats([e for r in rs for e in r.get("pocketsphinx", [])])
        out[lang] = entry
    out["note"] = ("espeak-ng voice + m3 at rate 130 or 230 with 1-2 inserted pauses (the truth) aligned "
                   "by DTW to the same language's voice + f2 at a matched rate; pocketsphinx on the same "
                   "audio. Synthetic speech is easier than a person: a floor, not an estimate, of the "
                   "real-speech error.")
    return out


def source_text(vds: list[VoiceData], sphinx_version: str) -> str:
    """The dataset manifest's ``source`` line (for Asterisk voices alone, the same as before
    Fish Fillets was added)."""
    def listing(corpus: str) -> str:
        pkgs = {vd.package.name: vd.package for vd in vds if vd.voice.corpus == corpus}
        pkgs.update({vd.transcript_package.name: vd.transcript_package for vd in vds if vd.voice.corpus == corpus})
        return ", ".join(f"{p} {pkgs[p].version}" for p in sorted(pkgs))

    parts = []
    if any(vd.voice.corpus == "asterisk" for vd in vds):
        parts.append("real human speech from Debian's Asterisk voice prompt packages (" + listing("asterisk")
                     + "), transcripts from the asterisk-core-sounds-XX packages")
    if any(vd.voice.corpus == "fillets" for vd in vds):
        parts.append(("and " if parts else "real human speech from ") + "the Fish Fillets NG voice acting ("
                     + listing("fillets") + "; the two fish in Czech and Dutch, transcripts from "
                     "fillets-ng-data's dialogs_<lang>.lua)")
    if any(vd.voice.corpus == "tuxpaint" for vd in vds):
        parts.append(("and " if parts else "real human speech from ") + "Tux Paint's spoken stamp descriptions ("
                     + listing("tuxpaint") + "; training only, texts from the stamps' .txt files)")
    return (", ".join(parts) + ", phone timings by "
            f"pocketsphinx {sphinx_version} forced alignment (English) and espeak-ng "
            "synthesis + DTW (all languages); ARKit-52 motion from the rule-based articulation "
            "model on the aligned phones with a per-speaker style; licences and attribution per "
            "utterance and in SOURCES.json")


def role_f0_check(vds: list[VoiceData], vinfo: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Fish Fillets, per language: the small fish's median f0 against the big fish's (one person
    each, a woman and a man: the small fish clearly higher)."""
    out: dict[str, Any] = {}
    for vd in vds:
        v = vd.voice
        if v.corpus == "fillets":
            out.setdefault(v.language, {})[f"{v.role}_fish_f0_median_hz"] = vinfo[v.key]["f0_median_hz"]
    for lang, d in out.items():
        small, big = d.get("small_fish_f0_median_hz"), d.get("big_fish_f0_median_hz")
        d["small_above_big_by"] = round(small / big, 3) if small and big else None
        d["ok"] = bool(small and big and small >= ROLE_F0_RATIO * big)
    if out:
        out["rule"] = f"small fish's median f0 >= {ROLE_F0_RATIO} x the big fish's, per language"
    return out


def sources_json(vds: list[VoiceData], vinfo: dict[str, dict[str, Any]], voice_notes: dict[str, Any],
                 facts: dict[str, sp.SpeakerFacts], val_set: set[str], speaker_rule: dict[str, Any],
                 fixed: dict[str, str], seed: int, groups: dict[str, str], held_groups: list[str],
                 fgroups: dict[str, str], levels: list[str], held_levels: list[str], kept: list[Kept],
                 leakage: dict[str, Any], notes: list[str], selection: dict[str, Any],
                 sphinx_version: str) -> dict[str, Any]:
    pkg_by = {vd.package.name: vd.package for vd in vds}
    pkg_by.update({vd.transcript_package.name: vd.transcript_package for vd in vds})
    held_set = set(held_groups)
    voices_json = []
    for vd in vds:
        v = vd.voice
        voices_json.append({**src.voice_info(v), **vd.licence, **vinfo[v.key],
                            "package_version": vd.package.version,
                            "transcript_package_version": vd.transcript_package.version,
                            "prompts": len(vd.prompts), "with_text": len(vd.texts), **voice_notes[v.key],
                            "speaker_split": ("val" if v.speaker in val_set else "train")
                            if voice_notes[v.key]["status"] == "used" else None})
    rule = dict(speaker_rule)
    if fixed:
        rule.update(val=sorted(set(speaker_rule["val"]) | {s for s, x in fixed.items() if x == "val"}),
                    train=sorted(set(speaker_rule["train"]) | {s for s, x in fixed.items() if x != "val"}),
                    fixed_by_voice_table=dict(sorted(fixed.items())))
    split_rule: dict[str, Any] = {
        "seed": seed, "doc": sp.__doc__, "heldout_share_target": sp.HELDOUT_SHARE,
        "heldout_groups": held_groups, "groups": dict(sorted(groups.items())),
        "heldout_prompt_share": round(sum(1 for g in groups.values() if g in held_set) / max(len(groups), 1), 4),
        "speakers": rule,
        "splits": {"val": "held-out speakers x held-out groups",
                   "val_seen_text": "held-out speakers x the other groups (text other voices train on)",
                   "tune": "training speakers x held-out groups",
                   "train": "training speakers x the other groups"},
        "speakers_per_split": {s: sorted({k.vd.voice.speaker for k in kept if k.split == s}) for s in SPLITS},
        "groups_per_split": {s: sorted({k.group for k in kept if k.split == s}) for s in SPLITS},
    }
    if levels:
        held_lv = set(held_levels)
        split_rule["fillets"] = {
            "rule": "groups are the levels (fillets/<level>); a quarter of the levels by count, seeded, "
                    "held out in both languages; speakers fixed by the voice table (see doc)",
            "levels": levels, "heldout_levels": held_levels,
            "heldout_level_share": round(len(held_levels) / len(levels), 4),
            "heldout_line_share": round(sum(1 for g in fgroups.values() if g in held_lv) / max(len(fgroups), 1), 4),
            "speakers": {"val": sorted(s for s, x in fixed.items() if x == "val"),
                         "train": sorted(s for s, x in fixed.items() if x != "val")}}
    if any(vd.voice.corpus == "tuxpaint" for vd in vds):
        split_rule["tuxpaint"] = {
            "rule": "training only (speakers fixed by the voice table), groups are the stamp categories and "
                    "never held out; a description whose phones equal a val or tune utterance's is dropped "
                    "(split.same_phones_as_heldout)",
            "speakers": sorted({vd.voice.speaker for vd in vds if vd.voice.corpus == "tuxpaint"})}
    split_rule["leakage_check"] = leakage
    return {
        "packages": [pkg_by[p].info() for p in sorted(pkg_by)],
        "voices": voices_json,
        "speakers": {s: {"languages": list(f.languages), "sex": f.sex, "wideband": f.wideband,
                         "split": "val" if s in val_set else "train"} for s, f in sorted(facts.items())},
        "split_rule": split_rule,
        "selection": selection,
        "aligners": {"pocketsphinx": f"pocketsphinx {sphinx_version} (PyPI), bundled en-us model and "
                                     "cmudict-en-us.dict; out-of-dictionary words pronounced by espeak-ng",
                     "espeak-dtw": "espeak-ng (libespeak-ng, C API phoneme events) + DTW on mean-normalised "
                                   "24-band log-mel + deltas (inference_core.data.realspeech.features)"},
        **({"role_f0_check": role_f0_check(vds, vinfo)} if levels else {}),
        "notes": notes,
    }


def summary_json(out: Path, kept: list[Kept], vinfo: dict[str, dict[str, Any]], dropped: dict[str, dict[str, int]],
                 voice_notes: dict[str, Any], facts: dict[str, sp.SpeakerFacts], val_set: set[str],
                 held_groups: list[str], held_levels: list[str], synth_results: list[dict[str, Any]],
                 speaker_rule: dict[str, Any], notes: list[str], vds: list[VoiceData]) -> dict[str, Any]:
    sex = {k.uid: vinfo[k.vd.voice.key]["sex"] for k in kept}
    summary: dict[str, Any] = {
        "out": str(out), "utterances": len(kept),
        "utterances_per_split": {s: sum(1 for k in kept if k.split == s) for s in SPLITS},
        "minutes": round(sum(k.res["seconds"] for k in kept) / 60, 2),
        "minutes_per_split": _minutes((k.split, k.res["seconds"]) for k in kept),
        "minutes_per_language": _minutes((k.vd.voice.language, k.res["seconds"]) for k in kept),
        "minutes_per_speaker": _minutes((k.vd.voice.speaker, k.res["seconds"]) for k in kept),
        "minutes_per_voice": _minutes((k.vd.voice.key, k.res["seconds"]) for k in kept),
        "minutes_per_sex": _minutes((sex[k.uid], k.res["seconds"]) for k in kept),
        "minutes_per_split_language": _minutes((f"{k.split}/{k.vd.voice.language}", k.res["seconds"]) for k in kept),
        "minutes_per_split_sex": _minutes((f"{k.split}/{sex[k.uid]}", k.res["seconds"]) for k in kept),
        "aligner_used": {a: sum(1 for k in kept if k.aligner == a) for a in sorted({k.aligner for k in kept})},
        "dropped": dropped,
        "dropped_total": {r: sum(d.get(r, 0) for d in dropped.values())
                          for r in sorted({r for d in dropped.values() for r in d})},
        "voices": voice_notes,
        "speakers": {s: {"sex": f.sex, "split": "val" if s in val_set else "train", "languages": list(f.languages)}
                     for s, f in sorted(facts.items())},
        "heldout_groups": len(held_groups),
        "aligner_agreement_en": agreement(kept),
        "synthetic_check": synthetic_summary(synth_results),
        "constraints_unmet": speaker_rule["constraints_unmet"],
        "notes": notes,
    }
    if held_levels:
        summary["heldout_levels"] = len(held_levels)
        summary["minutes_per_corpus_split"] = _minutes((f"{k.vd.voice.corpus}/{k.split}", k.res["seconds"]) for k in kept)
        summary["f0_median_hz"] = {vd.voice.key: vinfo[vd.voice.key]["f0_median_hz"] for vd in vds}
        summary["role_f0_check"] = role_f0_check(vds, vinfo)
    return summary
