"""``python -m inference_core realspeech``: build the real-speech set from Debian packages.

Sources: the Asterisk voice prompts (:mod:`.sources`), the Fish Fillets NG voice acting (:mod:`.fillets`)
and Tux Paint's spoken stamp descriptions, nine voices that only train (:mod:`.tuxpaint`).

    python -m inference_core realspeech --out data/real_v3 [--cache data/debian_cache]

Stages, each resumable (re-running skips finished work; a killed run loses at most the
utterances in flight):

1. **sources** – ``apt-get download`` the packages into ``--cache`` (or take them from
   ``--debs DIR``), ``dpkg-deb -x`` them, read transcripts and copyright files (:mod:`.sources`,
   :mod:`.fillets`, :mod:`.tuxpaint`).
2. **voices** – median f0 of each voice (sex where the package does not name it).
3. **align** – every prompt with a usable transcript, in a fresh process each (espeak-ng keeps
   hidden state; a fresh process makes the result depend on the prompt only): espeak-ng + DTW
   for all, pocketsphinx as well for English, plus the DTW cost of *impostor* texts. Results
   are cached in ``<out>/work/align/``.
4. **decide** – keep, drop (with a reason) and split (:mod:`.split`); English uses pocketsphinx
   where it succeeded. A borrowed transcript is kept only where it plainly fits, and a voice
   whose prompts mostly do not fit is dropped whole.
5. **write** – ``metrics/<split>/NAME.wav`` + ``NAME.json`` (the lip_metrics.py format) for the
   held-out splits, ``dataset/`` (the :mod:`inference_core.data.format` layout, ARKit-52 motion
   from :func:`inference_core.data.articulation.articulate` on the aligned phones),
   ``SOURCES.json`` (packages, licences, attribution, the split rule) and ``summary.json``
   (:mod:`.write`, :mod:`.report`).

Deterministic: nothing depends on timing, worker count or order; the same packages give the
same files (``.npz`` archives differ only in their zip timestamps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import fillets as fl
from . import report as rp
from . import sources as src
from . import split as sp
from . import tuxpaint as tp
from .sources import SR, Voice, select_voices
from .write import write_json as _write_json
from .write import write_outputs
MIN_SECONDS = 0.6
N_IMPOSTORS = 4
OWN_MARGIN = 1.0        # own transcript: must fit better than every impostor text
BORROWED_MARGIN = 1.05  # borrowed transcript: at least 5 % better than every impostor, and
NULL_QUANTILE = 0.99    # above what 99 % of wrong texts reach on the same recordings
VOICE_MIN_FIT = 0.25    # a borrowed-transcript voice is dropped when fewer of its prompts fit
SPAN_RATIO = (0.6, 1.6)  # recording / rate-matched synthesis speech span
COST_MAD = 5.0          # DTW cost more than 5 robust SDs above the voice's median: bad alignment
SPHINX_MAD = 5.0        # pocketsphinx score more than 5 robust SDs below the voice's median
F0_CLIPS = 40
SYNTH_SENTENCES = 8
METRICS_SPLITS = ("val", "val_seen_text", "tune")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.replace("/", "-"))


def utt_id(voice: Voice, name: str) -> str:
    return f"{voice.key}_{_safe(name)}"


# ----------------------------------------------------------------------------- stage 1: sources

@dataclass
class VoiceData:
    voice: Voice
    package: src.Package
    transcript_package: src.Package
    transcript: src.Transcript
    prompts: dict[str, Path]
    licence: dict[str, Any]
    texts: dict[str, str] = field(default_factory=dict)     # name → cleaned spoken text
    skipped: dict[str, str] = field(default_factory=dict)   # name → reason (before aligning)


def load_sources(voices: list[Voice], cache: Path, debs: Path | None) -> tuple[list[VoiceData], list[str]]:
    from . import text as tx

    pkgs: dict[str, src.Package] = {}
    notes: list[str] = []

    def pkg(name: str) -> src.Package:
        if name not in pkgs:
            pkgs[name] = src.get_package(name, cache, debs)
        return pkgs[name]

    out: list[VoiceData] = []
    for v in voices:
        try:
            audio_pkg, tr_pkg = pkg(v.package), pkg(v.transcript_package)
        except src.SourceError as exc:
            notes.append(f"{v.key}: left out, {exc}")
            _log(f"note: {v.key}: left out ({exc})")
            continue
        if v.corpus == "fillets":
            tr, dialogs = fl.read_dialogs(tr_pkg.root, v.language)
            vd = VoiceData(v, audio_pkg, tr_pkg, tr, fl.list_prompts(audio_pkg.root, v), src.check_licence(v, audio_pkg))
            vd.licence["credit_files"] = fl.check_credit_files(v, tr_pkg.root, tr_pkg.name)
            vd.texts, vd.skipped = fl.texts_for(v, vd.prompts, tr, dialogs)
            out.append(vd)
            continue
        if v.corpus == "tuxpaint":
            prompts = tp.list_prompts(audio_pkg.root, v)
            tr, texts, skipped = tp.texts_for(audio_pkg.root, v, prompts)
            out.append(VoiceData(v, audio_pkg, tr_pkg, tr, prompts, src.check_licence(v, audio_pkg), texts, skipped))
            out[-1].licence["credit_files"] = tp.check_credit(v, audio_pkg.root, audio_pkg.name)
            continue
        tr = src.read_transcript(tr_pkg.root / src.transcript_path(v.language))
        vd = VoiceData(v, audio_pkg, tr_pkg, tr, src.list_prompts(audio_pkg.root, v), src.check_licence(v, audio_pkg))
        for name in vd.prompts:
            if name not in tr.texts:
                vd.skipped[name] = "no_transcript"
                continue
            if name in tr.duplicates:
                vd.skipped[name] = "ambiguous_transcript"
                continue
            text, why = tx.clean(name, tr.texts[name], v.language)
            if text is None:
                vd.skipped[name] = why
            else:
                vd.texts[name] = text
        out.append(vd)
    return out, notes


# ----------------------------------------------------------------------------- stage 2: voices

def analyse_voices(vds: list[VoiceData], work: Path) -> dict[str, dict[str, Any]]:
    """Median f0 over the first :data:`F0_CLIPS` prompts (by name) of each voice; sex."""
    from . import features

    path = work / "voices.json"
    cached: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    for vd in vds:
        v = vd.voice
        key = f"{v.key}:{vd.package.sha256[:16]}"
        if key not in cached:
            names = sorted(vd.texts)[:F0_CLIPS]
            clips = [src.decode(vd.prompts[n]).astype(np.float64) / 32768.0 for n in names]
            f0 = features.median_f0(clips, SR)
            est = features.sex_from_f0(f0) if f0 > 0 else ""
            cached[key] = {"f0_median_hz": round(f0, 1), "sex_estimated": est, "f0_clips": len(clips),
                           "native_rate": src.native_rate(v, next(iter(vd.prompts.values())))
                           if vd.prompts else SR}
            _write_json(path, cached)
    out = {}
    for vd in vds:
        v = vd.voice
        info = dict(cached[f"{v.key}:{vd.package.sha256[:16]}"])
        if v.sex_doc:
            info.update(sex=v.sex_doc, sex_source=v.sex_doc_source)
        else:
            info.update(sex=info["sex_estimated"] or "F",
                        sex_source=f"estimated from median f0 ({info['f0_median_hz']} Hz; "
                                   "F if >= 165 Hz), not stated by the package")
        out[v.key] = info
    return out


# ----------------------------------------------------------------------------- stage 3: align

@dataclass
class Job:
    uid: str
    path: str
    language: str
    text: str
    template: str           # espeak-ng voice for the DTW template
    narrowband: bool
    impostors: list[str]    # texts of other prompts (the synthetic fit test)
    sphinx: bool
    out: str                # cache file
    reference: str = ""     # borrowed transcript: the core speaker's recording of the same prompt
    reference_impostors: list[str] = field(default_factory=list)  # ... and of the impostor prompts


def run_job(job: Job) -> dict[str, Any]:
    """Align one prompt (runs in a fresh worker process) and cache the result as JSON."""
    from . import align
    from .text import words

    try:
        pcm = src.decode(Path(job.path))
    except (src.SourceError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        res0 = {"uid": job.uid, "samples": 0, "seconds": 0.0, "status": "undecodable", "error": str(exc)[-300:]}
        _write_json(Path(job.out), res0)
        return res0
    x = pcm.astype(np.float64) / 32768.0
    res: dict[str, Any] = {"uid": job.uid, "samples": int(len(pcm)), "seconds": round(len(pcm) / SR, 4)}
    if len(pcm) / SR < MIN_SECONDS:
        res["status"] = "too_short"
    elif not np.any(pcm):
        res["status"] = "silent"
    else:
        res["status"] = "aligned"
        d = align.dtw_align(x, job.text, job.language, job.template, job.narrowband, job.impostors)
        res["dtw"] = {"phones": d.phones, "cost": round(d.cost, 5), "rate": d.rate,
                      "span_ratio": round(d.span_ratio, 4),
                      "impostor_costs": [round(c, 5) for c in d.impostor_costs],
                      "margin": None if d.margin is None else round(d.margin, 5)}
        if job.reference:
            own, imp = align.recording_costs(x, src.decode(Path(job.reference)).astype(np.float64) / 32768.0,
                                             [src.decode(Path(p)).astype(np.float64) / 32768.0
                                              for p in job.reference_impostors])
            res["reference"] = {"cost": round(own, 5), "impostor_costs": [round(c, 5) for c in imp],
                                "margin": round(min(imp) / own, 5) if imp else None}
        if job.sphinx:
            try:
                s = align.Sphinx().align(pcm, words(job.text))
                res["sphinx"] = {"phones": s.phones, "score": round(s.score, 4), "oov": s.oov,
                                 "wide_beams": s.wide_beams}
            except align.SphinxError as exc:
                res["sphinx"] = {"error": str(exc)}
    _write_json(Path(job.out), res)
    return res


@dataclass
class SynthJob:
    key: str
    text: str
    voice: str
    language: str
    seed: int
    index: int
    sphinx: bool
    out: str


def run_synth_job(job: SynthJob) -> dict[str, Any]:
    from .align import synthetic_check

    res = synthetic_check(job.text, job.voice, job.language, job.seed, job.index, job.sphinx)
    res.update(language=job.language, index=job.index)
    _write_json(Path(job.out), res)
    return res


def _call(job: Any) -> Any:
    return run_synth_job(job) if isinstance(job, SynthJob) else run_job(job)


def run_jobs(jobs: list[Any], workers: int, progress: bool, desc: str) -> None:
    """Each job in its own fresh process (forkserver, one task per child), with a progress bar."""
    import multiprocessing as mp

    from tqdm import tqdm

    if not jobs:
        return
    ctx: Any
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["inference_core.data.realspeech.build", "inference_core.data.realspeech.align"])
    else:
        ctx = mp.get_context("spawn")
    with ctx.Pool(max(1, workers), maxtasksperchild=1) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="utt", disable=not progress) as bar:
        for _ in pool.imap_unordered(_call, jobs):
            bar.update(1)


# ----------------------------------------------------------------------------- stage 4: decide

def _robust(values: Iterable[float]) -> tuple[float, float]:
    v = np.array(list(values), float)
    if v.size == 0:
        return 0.0, 0.0
    med = float(np.median(v))
    return med, float(1.4826 * np.median(np.abs(v - med)))


@dataclass
class Kept:
    uid: str
    vd: VoiceData
    name: str
    group: str
    res: dict[str, Any]
    aligner: str
    phones: list[tuple[str, float, float]]
    confidence: float
    split: str = ""


def null_margins(results: Iterable[dict[str, Any]], key: str) -> np.ndarray:
    """Margins a *wrong* text gets: each impostor against the other impostors of its prompt.

    Impostors are other prompts' texts, so this is the margin distribution of a transcript that
    does not fit, measured on the same recordings (with one competitor fewer: conservative)."""
    out: list[float] = []
    for r in results:
        c = (r.get(key) or {}).get("impostor_costs") or []
        for k in range(len(c)):
            rest = c[:k] + c[k + 1:]
            if rest:
                out.append(min(rest) / c[k])
    return np.array(out)


def fit_threshold(results: list[dict[str, Any]], key: str) -> tuple[float, dict[str, Any]]:
    """Required margin: above :data:`NULL_QUANTILE` of the null margins, and at least
    :data:`BORROWED_MARGIN`."""
    null = null_margins(results, key)
    q = float(np.quantile(null, NULL_QUANTILE)) if null.size >= 20 else BORROWED_MARGIN
    thr = max(BORROWED_MARGIN, q)
    return thr, {"required_margin": round(thr, 4), f"null_margin_q{int(NULL_QUANTILE * 100)}": round(q, 4),
                 "null_margins": int(null.size),
                 "null_false_fit_rate": round(float((null > thr).mean()), 4) if null.size else None}


def _margin(r: dict[str, Any], key: str) -> float | None:
    return (r.get(key) or {}).get("margin")


def decide(vds: list[VoiceData], results: dict[str, dict[str, Any]], groups: dict[str, str]
           ) -> tuple[list[Kept], dict[str, dict[str, int]], dict[str, Any]]:
    """Keep or drop (with a reason) every prompt; drop borrowed-transcript voices that do not fit.

    * own transcript: the text must fit better than every impostor text (margin > 1), else
      ``text_mismatch`` (a transcript line that is not what was read);
    * borrowed transcript: margin above the null's :data:`NULL_QUANTILE` against the core
      speaker's recording of the prompt (against synthesis where the core speaker has none),
      and > 1 against synthesis, else ``transcript_does_not_fit``; the voice is dropped when
      fewer than :data:`VOICE_MIN_FIT` of its prompts fit;
    * the speech span must be within 0.6-1.6x of the rate-matched synthesis's
      (``duration_mismatch``), and the aligner's own score not far off the voice's
      (``bad_alignment``: DTW cost or pocketsphinx score beyond 5 robust SDs of the median).

    English uses pocketsphinx where it aligned, else DTW. ``alignment_confidence`` (0-1) is the
    product of how typical the aligner's score is (1 at or better than the voice's median, 0 at
    the bad-alignment limit) and how plainly the transcript fits (margin 1 → 0, 1.5 or more → 1).
    """
    from .align import sphinx_version

    kept: list[Kept] = []
    dropped: dict[str, dict[str, int]] = {}
    voice_notes: dict[str, Any] = {}
    for vd in vds:
        v = vd.voice
        drops: dict[str, int] = {}

        def drop(why: str, n: int = 1) -> None:
            if n:
                drops[why] = drops.get(why, 0) + n

        for why in vd.skipped.values():
            drop(why)
        rs = {n: results[utt_id(v, n)] for n in sorted(vd.texts)}
        for r in rs.values():
            if r["status"] != "aligned":
                drop(r["status"])
        aligned = {n: r for n, r in rs.items() if r["status"] == "aligned"}
        margins = [m for m in (_margin(r, "dtw") for r in aligned.values()) if m is not None]
        note: dict[str, Any] = {"aligned": len(aligned),
                                "median_margin": round(float(np.median(margins)), 4) if margins else None}
        if v.own_transcript:
            fits = {n: r for n, r in aligned.items() if (_margin(r, "dtw") or 2.0) > OWN_MARGIN}
            note["required_margin"] = OWN_MARGIN
        else:
            thr, info = fit_threshold(list(aligned.values()), "dtw")
            note["synthesis_test"] = info
            have_ref = [r for r in aligned.values() if _margin(r, "reference") is not None]
            rthr, rinfo = fit_threshold(have_ref, "reference")
            rinfo["median_margin"] = round(float(np.median([_margin(r, "reference") for r in have_ref])), 4) \
                if have_ref else None
            note["reference_recording_test"] = rinfo
            # the words: person against person where the core speaker recorded the prompt (the
            # sharper test), else against synthesis; the synthesis must fit better than every
            # impostor in any case, or the DTW alignment made from it is not to be trusted
            fits = {n: r for n, r in aligned.items()
                    if (_margin(r, "dtw") or 0.0) > OWN_MARGIN
                    and ((_margin(r, "reference") or 0.0) > rthr if _margin(r, "reference") is not None
                         else (_margin(r, "dtw") or 0.0) > thr)}
        fit_frac = len(fits) / len(aligned) if aligned else 0.0
        note.update(transcript_fits=len(fits), transcript_fit_fraction=round(fit_frac, 3))
        if not v.own_transcript and fit_frac < VOICE_MIN_FIT:
            note["status"] = (f"dropped: the borrowed {v.language} core transcript plainly fits only "
                              f"{len(fits)} of {len(aligned)} prompts (< {VOICE_MIN_FIT:.0%})")
            drop("voice_transcript_does_not_fit", len(aligned))
            dropped[v.key] = drops
            voice_notes[v.key] = note
            continue
        drop("text_mismatch" if v.own_transcript else "transcript_does_not_fit", len(aligned) - len(fits))
        med, mad = _robust(r["dtw"]["cost"] for r in fits.values())
        cost_limit = med + COST_MAD * max(mad, 1e-3)
        smed, smad = _robust(r["sphinx"]["score"] for r in fits.values() if "score" in r.get("sphinx", {}))
        score_limit = smed - SPHINX_MAD * max(smad, 1e-3)
        note.update(dtw_cost_median=round(med, 4), dtw_cost_limit=round(cost_limit, 4))
        if any("sphinx" in r for r in fits.values()):
            note.update(sphinx_score_median=round(smed, 3), sphinx_score_limit=round(score_limit, 3))
        n_kept = 0
        for n, r in fits.items():
            d = r["dtw"]
            if not SPAN_RATIO[0] <= d["span_ratio"] <= SPAN_RATIO[1]:
                drop("duration_mismatch")
                continue
            s = r.get("sphinx")
            if s is not None and "score" in s:
                if s["score"] < score_limit:
                    drop("bad_alignment")
                    continue
                aligner, phones = f"pocketsphinx-{sphinx_version()}", s["phones"]
                z = (smed - s["score"]) / max(smad, 1e-3)
            else:
                if d["cost"] > cost_limit:
                    drop("bad_alignment")
                    continue
                if s is not None:  # English where pocketsphinx failed: DTW, and say so
                    note["sphinx_failed_used_dtw"] = note.get("sphinx_failed_used_dtw", 0) + 1
                aligner, phones = "espeak-dtw", d["phones"]
                z = (d["cost"] - med) / max(mad, 1e-3)
            margin = d["margin"] if d["margin"] is not None else 1.5
            conf = float(np.clip(1 - max(z, 0) / COST_MAD, 0, 1) * np.clip((margin - 1) / 0.5, 0, 1))
            kept.append(Kept(utt_id(v, n), vd, n, sp.group_of(n, groups), r, aligner,
                             [(str(a), float(b), float(c)) for a, b, c in phones], round(conf, 3)))
            n_kept += 1
        note.update(kept=n_kept, status="used")
        dropped[v.key] = drops
        voice_notes[v.key] = note
    return kept, dropped, voice_notes


# ----------------------------------------------------------------------------- main

def build(out: Path, cache: Path, debs: Path | None = None, voices: list[Voice] | None = None,
          seed: int = 0, workers: int = 2, progress: bool = True, limit: int = 0,
          metrics_splits: tuple[str, ...] = METRICS_SPLITS, synth_sentences: int = SYNTH_SENTENCES) -> dict[str, Any]:
    from . import align
    from .text import words as word_tokens

    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    vds, notes = load_sources(voices or list(src.VOICES), cache, debs)
    if not vds:
        raise SystemExit("error: no voice could be loaded: " + "; ".join(notes))
    if limit:
        for vd in vds:
            vd.texts = {n: vd.texts[n] for n in sorted(vd.texts)[:limit]}
    # the group universe: every name some language has usable text for, over the core transcripts
    universe: set[str] = set()
    seen_tr: set[str] = set()
    for vd in vds:
        if vd.transcript_package.name in seen_tr or vd.voice.corpus != "asterisk":
            continue
        seen_tr.add(vd.transcript_package.name)
        from .text import clean

        universe |= {n for n, t in vd.transcript.texts.items() if clean(n, t, vd.voice.language)[0]}
    groups = sp.group_map(universe)
    # Fish Fillets: a line's group is its level (the universe: every level with a fish's line)
    fgroups = {n: fl.group_of(n) for vd in vds if vd.voice.corpus == "fillets" for n in vd.prompts}
    # Tux Paint: a description's group is its stamp category (never held out: the voices train)
    tgroups = {n: tp.group_of(n) for vd in vds if vd.voice.corpus == "tuxpaint" for n in vd.prompts}
    all_groups = {**groups, **fgroups, **tgroups}
    vinfo = analyse_voices(vds, work)

    jobs: list[Any] = []
    results: dict[str, dict[str, Any]] = {}
    core = {vd.voice.language: vd for vd in vds if vd.voice.own_transcript}
    for vd in vds:
        v = vd.voice
        template = v.espeak_voice + ("+f2" if vinfo[v.key]["sex"] == "F" else "")
        narrow = vinfo[v.key]["native_rate"] < SR
        ref = None if v.own_transcript else core.get(v.language)
        for n in sorted(vd.texts):
            uid = utt_id(v, n)
            cache_file = work / "align" / v.key / f"{_safe(n)}.json"
            if cache_file.exists():
                results[uid] = json.loads(cache_file.read_text())
                continue
            words = word_tokens(vd.texts[n])
            if ref is not None and n in ref.prompts:
                imp = sp.impostor_names(n, vd.texts, all_groups, N_IMPOSTORS, allowed=set(ref.prompts))
                refs = (str(ref.prompts[n]), [str(ref.prompts[m]) for m in imp])
            else:
                imp, refs = sp.impostor_names(n, vd.texts, all_groups, N_IMPOSTORS), ("", [])
            jobs.append(Job(uid, str(vd.prompts[n]), v.language, vd.texts[n], template, narrow,
                            [vd.texts[m] for m in imp], v.language == "en" and bool(words),
                            str(cache_file), *refs))
    _log(f"align: {len(jobs)} prompt(s) to align, {len(results)} cached")
    synth_jobs: list[SynthJob] = []
    synth_results: list[dict[str, Any]] = []
    for vd in vds:
        lang = vd.voice.language
        if any(j.language == lang for j in synth_jobs) or any(r["language"] == lang for r in synth_results):
            continue
        cands = sorted(n for n, t in vd.texts.items() if 4 <= len(t.split()) <= 20)
        step = max(1, len(cands) // max(synth_sentences, 1))
        for i, n in enumerate(cands[::step][:synth_sentences]):
            f = work / "synthetic" / f"{lang}-{i:02d}.json"
            if f.exists():
                synth_results.append(json.loads(f.read_text()))
            else:
                synth_jobs.append(SynthJob(f"{lang}-{i}", vd.texts[n], vd.voice.espeak_voice, lang, seed, i,
                                           lang == "en", str(f)))
    run_jobs(jobs + synth_jobs, workers, progress, "align")
    for j in jobs:
        results[j.uid] = json.loads(Path(j.out).read_text())
    for sj in synth_jobs:
        synth_results.append(json.loads(Path(sj.out).read_text()))
    synth_results.sort(key=lambda r: (r["language"], r["index"]))

    kept, dropped, voice_notes = decide(vds, results, all_groups)
    facts: dict[str, sp.SpeakerFacts] = {}
    for vd in vds:
        v = vd.voice
        if voice_notes[v.key]["status"] != "used":
            continue
        prev = facts.get(v.speaker)
        langs = tuple(sorted(set((prev.languages if prev else ()) + (v.language,))))
        wide = bool((prev.wideband if prev else False) or vinfo[v.key]["native_rate"] >= SR)
        facts[v.speaker] = sp.SpeakerFacts(v.speaker, langs, vinfo[v.key]["sex"], wide)
    # speakers whose split the voice table fixes (Fish Fillets) stay out of the rule's choice,
    # so adding them leaves the Asterisk assignment as it was
    fixed = {vd.voice.speaker: vd.voice.fixed_split for vd in vds
             if vd.voice.fixed_split and vd.voice.speaker in facts}
    speaker_rule = sp.choose_speakers([f for s, f in facts.items() if s not in fixed], seed)
    held_groups = sp.heldout_groups(groups, seed)
    levels = sorted(set(fgroups.values()))
    held_levels = sp.heldout_levels(levels, seed)
    held_set = set(held_groups) | set(held_levels)
    val_set = set(speaker_rule["val"]) | {s for s, x in fixed.items() if x == "val"}
    for k in kept:
        k.split = sp.split_of(k.vd.voice.speaker in val_set, k.group in held_set)
    kept = sp.drop_same_phones_as_heldout(kept, "tuxpaint", dropped, voice_notes)
    leakage = sp.leakage(kept)
    if leakage["speakers_in_train_and_heldout"] or leakage["groups_in_train_and_heldout"]:
        raise RuntimeError(f"split rule broken: {leakage}")

    source_text = rp.source_text(vds, align.sphinx_version())
    write_outputs(kept, out, seed, vinfo, source_text, metrics_splits, progress)
    sources_json = rp.sources_json(
        vds, vinfo, voice_notes, facts, val_set, speaker_rule, fixed, seed, groups, held_groups,
        fgroups, levels, held_levels, kept, leakage, notes,
        {"rules": decide.__doc__, "min_seconds": MIN_SECONDS, "impostors": N_IMPOSTORS,
         "own_margin": OWN_MARGIN, "borrowed_margin_min": BORROWED_MARGIN,
         "null_quantile": NULL_QUANTILE, "voice_min_fit": VOICE_MIN_FIT,
         "span_ratio": list(SPAN_RATIO), "dtw_cost_mad": COST_MAD, "sphinx_score_mad": SPHINX_MAD},
        align.sphinx_version())
    _write_json(out / "SOURCES.json", sources_json)
    summary = rp.summary_json(out, kept, vinfo, dropped, voice_notes, facts, val_set, held_groups,
                              held_levels, synth_results, speaker_rule, notes, vds)
    _write_json(out / "summary.json", summary)
    _log(f"realspeech: done in {time.time() - t_start:.0f} s")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference_core realspeech", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/real_v1", help="output folder (resumes if it exists)")
    ap.add_argument("--cache", default="data/debian_cache",
                    help="where .deb files are downloaded and unpacked (kept between runs)")
    ap.add_argument("--debs", default=None, metavar="DIR",
                    help="take the .deb files from DIR instead of apt-get download (offline, tests)")
    ap.add_argument("--voices", default=None,
                    help="comma-separated voices or sources (default: all; 'asterisk,fillets': the bundled model's "
                         "set): " + ",".join(sorted({v.corpus for v in src.VOICES}) + [v.key for v in src.VOICES]))
    ap.add_argument("--seed", type=int, default=0, help="split rule and motion seed")
    ap.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts of each voice (trial runs)")
    ap.add_argument("--metrics-splits", default=",".join(METRICS_SPLITS),
                    help="splits written as metrics/<split>/NAME.wav+json (default %(default)s)")
    ap.add_argument("--synthetic-sentences", type=int, default=SYNTH_SENTENCES,
                    help="sentences per language for the synthetic aligner check")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        summary = build(Path(args.out), Path(args.cache), Path(args.debs) if args.debs else None,
                        select_voices(args.voices), args.seed, args.workers, not args.quiet, args.limit,
                        tuple(s.strip() for s in args.metrics_splits.split(",") if s.strip()),
                        args.synthetic_sentences)
    except src.SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
