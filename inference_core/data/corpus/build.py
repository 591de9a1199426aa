"""``python -m inference_core corpus``: generate the synthetic TTS training corpus.

Speech from espeak-ng (8 English accents × ~100 voice variants) and flite
(clustergen voices slt/awb/rms), with ``--festival`` also the installed festival
voices (kal/ked diphone, slt HTS; off by default, the bundled model was trained
without them), each sentence with exact phone timings →
ARKit-52 motion at 30 fps (:mod:`.articulation`) → optional audio degradation
(:mod:`.augment`) → the dataset format of :mod:`.format`.

* Deterministic: utterance ``i`` depends only on (seed, i) and the voice plan,
  never on worker count or scheduling.
* Resumable: re-running with the same arguments skips what is written (the
  manifest is flushed every few utterances; a killed run loses at most those).
* Whole voices are held out for validation (``split="val"``), and so are their
  espeak *variants*: no training voice shares a timbre variant with a val voice.
* ``--tune-voices N`` writes a separate *tuning* set instead (``split="tune"``):
  N voices that are accent × variant combinations no training voice has, with
  their own sentences. Sampler defaults are chosen on it, so the val voices stay
  untouched for the reported figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...shared.channels import ARKIT_52
from ..format import Dataset, DatasetWriter, Utterance, frames_for

SR = 16000
FPS = 30


@dataclass
class Plan:
    seed: int
    train: list[Any]  # list[tts.Voice]
    val: list[Any]
    slots: list[int]  # indices into voices (train + val), weighted
    augment: float
    texts: list[str] | None  # sentences from a file, else the English grammar
    heldout: str = "val"      # split name of the held-out voices ("val", or "tune")
    salt: int = 0             # non-zero: other sentences/choices than the main corpus

    @property
    def voices(self) -> list[Any]:
        return self.train + self.val


def _voice_rng(seed: int, voice_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(voice_id.encode()), 7])


def _rng(plan: Plan, *keys: int) -> np.random.Generator:
    """The generator for one purpose of the plan; salted plans draw different streams."""
    return np.random.default_rng([plan.seed, *keys] + ([plan.salt] if plan.salt else []))


def make_plan(seed: int = 0, n_voices: int = 240, n_val: int = 12, langs: str = "en",
              use_flite: bool = True, flite_weight: int = 8, augment_p: float = 0.5,
              text_file: str | None = None, n_tune: int = 0, use_festival: bool = False) -> Plan:
    """The corpus's voices (train and held-out val) and how often each speaks. Deterministic.

    With ``n_tune`` the plan speaks only with tuning voices instead: espeak
    accent × variant combinations that are neither training voices nor share a
    variant with a val voice (same seed, same training set).

    ``use_festival`` adds the installed English festival voices as training voices
    (weighted like flite); everything else in the plan stays as it is without them."""
    from . import espeak
    from .text import read_text_file
    from .tts import FESTIVAL_PACKAGES, FESTIVAL_VOICES, FLITE_VOICES, Voice, festival_voices

    rng = np.random.default_rng([seed, 1234])
    prefixes = [p.strip() for p in langs.split(",") if p.strip()]
    lang_files: dict[str, str] = {}
    for p in prefixes:
        found = espeak.list_languages(p)
        if not found:
            raise SystemExit(f"error: espeak-ng has no language matching {p!r} "
                             "(see `espeak-ng --voices`)")
        lang_files.update(found)
    if any(not p.startswith("en") for p in prefixes) and not text_file:
        raise SystemExit("error: the built-in sentence generator is English; for other languages "
                         "pass --text FILE with one sentence per line")
    variants = [""] + espeak.list_variants()
    combos = [(lang, var) for lang in sorted(lang_files) for var in variants]
    order = rng.permutation(len(combos))
    combos = [combos[k] for k in order]

    def espeak_voice(lang: str, var: str) -> Voice:
        vid = f"espeak:{lang}{'+' + var if var else ''}"
        r = _voice_rng(seed, vid)
        rate = int(np.clip(r.normal(180, 30), 120, 260))
        params = {"rate": rate, "pitch": int(r.uniform(20, 80)), "range": int(r.uniform(20, 90))}
        return Voice(vid, "espeak", lang_files[lang] + (f"+{var}" if var else ""), params, lang.split("-")[0])

    flite_ok = use_flite and any(p.startswith("en") for p in prefixes) and _have_flite()
    n_val_flite = 1 if (flite_ok and n_val >= 2) else 0
    val: list[Voice] = []
    val_variants: set[str] = set()
    for lang, var in combos:
        if len(val) >= n_val - n_val_flite:
            break
        if var and var not in val_variants:
            val_variants.add(var)
            val.append(espeak_voice(lang, var))
    train = [espeak_voice(lang, var) for lang, var in combos if var not in val_variants][:n_voices]
    weights = [1] * len(train)
    if flite_ok:
        names = sorted(FLITE_VOICES)
        # hold out a male flite voice: slt is the only natural-sounding female voice, and
        # female speech must be well covered in training
        males = [n for n in names if FLITE_VOICES[n] == "M"]
        held = males[int(rng.integers(len(males)))] if n_val_flite else None
        for name in names:
            vid = f"flite:{name}"
            r = _voice_rng(seed, vid)
            v = Voice(vid, "flite", name, {"stretch": float(r.uniform(0.85, 1.2)),
                                           "f0_shift": float(r.uniform(0.85, 1.2))})
            if name == held:
                val.append(v)
            else:
                train.append(v)
                weights.append(flite_weight)
    if use_festival and any(p.startswith("en") for p in prefixes):
        # after every other voice and without drawing from ``rng``: the plan stays the same
        # as without festival, plus these training voices
        installed = set(festival_voices())
        if not installed & set(FESTIVAL_VOICES):
            raise ValueError("festival voices requested but festival or its English voices are not "
                             f"installed (Debian: apt install {FESTIVAL_PACKAGES})")
        for name in sorted(n for n in FESTIVAL_VOICES if n in installed):
            vid = f"festival:{name}"
            r = _voice_rng(seed, vid)
            train.append(Voice(vid, "festival", name, {"stretch": float(r.uniform(0.85, 1.2)),
                                                       "f0_shift": float(r.uniform(0.85, 1.2))}))
            weights.append(flite_weight)
    val_weights = [1 if v.engine == "espeak" else flite_weight for v in val]
    slots = [k for k, w in enumerate(weights + val_weights) for _ in range(w)]
    texts = read_text_file(text_file) if text_file else None
    if n_tune > 0:
        used = {v.id for v in train}
        tune = [v for v in (espeak_voice(lang, var) for lang, var in combos
                            if var and var not in val_variants) if v.id not in used][:n_tune]
        if not tune:
            raise ValueError("no accent x variant combination is left for tuning voices")
        return Plan(seed, train, tune, [len(train) + k for k in range(len(tune))], augment_p, texts,
                    heldout="tune", salt=1)
    return Plan(seed, train, val, slots, augment_p, texts)


def _have_flite() -> bool:
    import shutil

    return shutil.which("flite") is not None


def voice_for(plan: Plan, i: int) -> tuple[Any, str]:
    """Voice of utterance ``i``: a fresh shuffle of the weighted slots per cycle."""
    n = len(plan.slots)
    cycle, k = divmod(i, n)
    perm = _rng(plan, 99, cycle).permutation(n)
    idx = plan.slots[perm[k]]
    voices = plan.voices
    return voices[idx], ("train" if idx < len(plan.train) else plan.heldout)


def _sentence(plan: Plan, rng: np.random.Generator) -> str:
    from .text import sentence

    if plan.texts:
        return plan.texts[int(rng.integers(len(plan.texts)))]
    return sentence(rng)


def _babble_fn(plan: Plan, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Background talkers: 2–4 other training voices saying other sentences, summed."""
    from .tts import speak

    def make(n: int) -> np.ndarray:
        out = np.zeros(n)
        espeak_train = [v for v in plan.train if v.engine == "espeak"] or plan.train
        for _ in range(int(rng.integers(2, 5))):
            v = espeak_train[int(rng.integers(len(espeak_train)))]
            parts, total = [], 0
            while total < n:
                a = speak(v, _sentence(plan, rng), rng).audio
                parts.append(a)
                total += len(a)
            talker = np.concatenate(parts)[:n]
            off = int(rng.integers(0, max(1, n // 2)))
            out += np.roll(talker, off) * rng.uniform(0.5, 1.0)
        return out

    return make


def make_utterance(plan: Plan, i: int) -> Utterance:
    """Utterance ``i`` of the plan: text, speech, motion, augmentation — all from (seed, i)."""
    from ..articulation import articulate, style_for
    from .augment import augment
    from .tts import speak

    voice, split = voice_for(plan, i)
    rng = _rng(plan, 1, i)
    r = rng.random()
    kind = "long" if r < 0.1 else ("pause" if r < 0.18 else "normal")
    if kind == "long":
        target, cap = rng.uniform(20, 30), 30.0
    else:
        target, cap = float(np.clip(rng.gamma(3.0, 2.0), 2.0, 12.0)), 12.0
    lead = rng.uniform(0.05, 0.6)
    pieces: list[np.ndarray] = [np.zeros(int(lead * SR), np.float32)]
    phones: list[tuple[str, float, float]] = [("sil", 0.0, lead)] if lead > 0 else []
    texts: list[str] = []
    questions: list[tuple[float, float]] = []
    settings: list[dict[str, Any]] = []
    t = lead
    long_pause_done = False
    for _ in range(40):
        text = _sentence(plan, rng)
        sp = speak(voice, text, rng)
        dur = len(sp.audio) / SR
        if texts and t + dur > cap:
            break
        if texts:
            if kind == "pause" and not long_pause_done:
                gap = rng.uniform(1.5, 4.0)
                long_pause_done = True
            else:
                gap = rng.uniform(0.1, 0.9)
            if t + gap + dur > cap + (4.0 if kind == "pause" else 0.0):
                break
            pieces.append(np.zeros(int(gap * SR), np.float32))
            phones.append(("sil", t, t + len(pieces[-1]) / SR))
            t += len(pieces[-1]) / SR
        pieces.append(sp.audio)
        phones.extend((lab, s + t, e + t) for lab, s, e in sp.phones)
        if text.rstrip().endswith("?"):
            questions.append((t, t + dur))
        texts.append(text)
        settings.append(sp.settings)
        t += dur
        if t >= target:
            break
    tail = rng.uniform(0.1, 0.6)
    pieces.append(np.zeros(int(tail * SR), np.float32))
    phones.append(("sil", t, t + len(pieces[-1]) / SR))
    audio = np.concatenate(pieces).astype(np.float32)
    phones = _merge_silence(phones, len(audio) / SR)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:
        audio *= 0.99 / peak

    style = style_for(voice.id, plan.seed)
    motion = articulate(phones, audio, SR, FPS, style, _rng(plan, 2, i),
                        questions=questions)
    ops: list[str] = []
    arng = _rng(plan, 3, i)
    if plan.augment > 0 and arng.random() < plan.augment:
        audio, ops = augment(audio, arng, p=1.0, babble=_babble_fn(plan, arng))
        if not ops:  # an augmented utterance is always changed
            from .augment import add_noise, pink_noise

            audio = add_noise(audio.astype(np.float64), pink_noise(arng, len(audio)), 25.0).astype(np.float32)
            ops = ["pink_noise@25dB"]
            audio /= max(1.0, float(np.max(np.abs(audio))))
    assert motion.shape[0] == frames_for(len(audio), SR, FPS)
    mean_setting = {k: round(float(np.mean([s[k] for s in settings])), 3) for k in settings[0]}
    extra: dict[str, Any] = {
        "phonemes": np.array([p[0] for p in phones]),
        "phonemes_start": np.array([p[1] for p in phones], np.float32),
        "phonemes_end": np.array([p[2] for p in phones], np.float32),
        "engine": voice.engine, "voice": voice.name, "kind": kind, "text": " ".join(texts),
        "tts": mean_setting, "augmented": bool(ops), "augment": ops,
    }
    return Utterance(f"u{i:06d}", voice.id, split, audio, motion, extra)


def _merge_silence(phones: list[tuple[str, float, float]], dur: float) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    for lab, s, e in phones:
        e = min(e, dur)
        if e <= s:
            continue
        if out and lab == "sil" and out[-1][0] == "sil":
            out[-1] = ("sil", out[-1][1], e)
        else:
            out.append((lab, s, e))
    return out


# ----------------------------------------------------------------------------- workers

_PLAN: Plan | None = None


def _init_worker(plan: Plan) -> None:
    global _PLAN
    _PLAN = plan


def _work(i: int) -> Utterance:
    assert _PLAN is not None
    return make_utterance(_PLAN, i)


def generate(out: str | Path, minutes: float, plan: Plan, workers: int = 2, progress: bool = True,
             flush_every: int = 20) -> dict[str, Any]:
    """Write utterances 0, 1, 2, … until ``minutes`` of audio exist (counting earlier runs)."""
    from tqdm import tqdm

    out = Path(out)
    writer = DatasetWriter(out, FPS, SR, list(ARKIT_52), source=_source(plan), resume=True)
    writer.meta["generator"] = {"seed": plan.seed, "augment": plan.augment,
                                "train_voices": len(plan.train), "val_voices": len(plan.val)}
    writer.meta["voices"] = {v.id: {"engine": v.engine, "name": v.name, "params": v.params,
                                    "split": "train" if k < len(plan.train) else plan.heldout}
                             for k, v in enumerate(plan.voices)}
    done = {u["id"]: float(u["seconds"]) for u in writer.meta["utterances"]}
    target = minutes * 60.0
    total = 0.0
    i = 0
    while f"u{i:06d}" in done and total < target:  # the already-written prefix
        total += done[f"u{i:06d}"]
        i += 1
    start_i, start_total = i, total
    t0 = time.time()
    made_seconds = 0.0
    bar = tqdm(total=round(target / 60, 1), initial=round(total / 60, 1), unit="min", disable=not progress,
               desc="corpus", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} audio min [{elapsed}<{remaining}{postfix}]")

    def ordered_results():  # type: ignore[no-untyped-def]
        """Utterances start_i, start_i+1, … in order; a bounded window keeps workers busy."""
        from collections import deque

        k = start_i
        window: deque = deque()
        while True:
            while len(window) < 3 * workers:
                window.append(pool.apply_async(_work, (k,)))
                k += 1
            yield window.popleft().get()

    import multiprocessing as mp
    from multiprocessing.context import BaseContext

    # One fresh process per utterance, even with one worker: espeak-ng keeps hidden state
    # between calls (its pitch-flutter phase), so the same call in a used process gives
    # slightly different samples. Every utterance starting from the same pristine library
    # state is what makes the corpus bit-exact for a seed, whatever the worker count.
    # A fork server (a clean process that never synthesises) forks them, so they do not
    # inherit whatever this process did with espeak-ng before.
    ctx: BaseContext
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["inference_core.data.corpus.build", "inference_core.data.articulation",
                                    "inference_core.data.corpus.augment", "inference_core.data.corpus.tts"])
    else:
        ctx = mp.get_context("spawn")
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(plan,), maxtasksperchild=1)
    try:
        results = ordered_results()
        n_new = 0
        for utt in results:
            if total >= target:
                break
            if not writer.has(utt.id):
                writer.add(utt)
                n_new += 1
            secs = len(utt.audio) / SR
            total += secs
            made_seconds += secs
            bar.update(min(secs / 60, max(bar.total - bar.n, 0.0)))
            wall = time.time() - t0
            bar.set_postfix_str(f"{made_seconds / max(wall, 1e-6):.0f}x realtime")
            if n_new % flush_every == 0:
                writer.close()
    finally:
        pool.terminate()
        writer.close()
        bar.close()
    wall = time.time() - t0
    ds = Dataset(out)
    stats = {
        "out": str(out), "utterances": len(ds.entries()), "minutes": round(total / 60, 2),
        "new_minutes": round((total - start_total) / 60, 2), "wall_seconds": round(wall, 1),
        "realtime_factor": round(made_seconds / wall, 1) if wall > 0 else None,
        "train_speakers": len(ds.speakers("train")),
        f"{plan.heldout}_speakers": len(ds.speakers(plan.heldout)),
        "train_minutes": round(sum(u["seconds"] for u in ds.entries("train")) / 60, 2),
        f"{plan.heldout}_minutes": round(sum(u["seconds"] for u in ds.entries(plan.heldout)) / 60, 2),
        "planned_voices": {"train": len(plan.train), plan.heldout: len(plan.val)},
    }
    return stats


def _source(plan: Plan) -> str:
    festival = " + festival voices" if any(v.engine == "festival" for v in plan.voices) else ""
    return ("synthetic TTS corpus (inference_core.data.corpus.build): espeak-ng formant voices + flite "
            f"clustergen voices{festival} with exact phone timings; ARKit-52 motion from a rule-based "
            "coarticulation model (dominance functions, critically damped dynamics, bilabial/"
            f"labiodental gestures, blinks, gaze, prosodic brows); seed {plan.seed}, "
            f"augmentation probability {plan.augment}")


# ----------------------------------------------------------------------------- demo clip

DEMO_TEXT = [
    "Maybe we should move the blue boat before the evening.",
    "Would you believe it?",
    "Five violins, a piano, and three cheerful people played all afternoon.",
]


def demo_clip(path: str | Path, seed: int = 0) -> dict[str, Any]:
    """A ~12 s clean clip (16 kHz FLAC) of a voice held out of the default corpus, with a pause."""
    import soundfile as sf

    from .tts import speak

    plan = make_plan(seed=seed, augment_p=0.0)
    from dataclasses import replace

    # the held-out flite voice (built from human recordings) sounds most like a person;
    # without flite, a held-out espeak voice at an unhurried rate
    held = next((v for v in plan.val if v.engine == "flite"), None)
    if held is not None:
        voice = replace(held, params={"stretch": 1.0, "f0_shift": 1.0})
    else:
        held = next(v for v in plan.val if v.engine == "espeak")
        voice = replace(held, params={**held.params, "rate": 150})
    rng = np.random.default_rng([seed, 4242])
    parts = [np.zeros(int(0.3 * SR), np.float32)]
    for k, text in enumerate(DEMO_TEXT):
        parts.append(speak(voice, text, rng).audio)
        parts.append(np.zeros(int((0.9 if k == 0 else 0.5) * SR), np.float32))
    audio = np.concatenate(parts)
    audio *= 0.9 / max(float(np.max(np.abs(audio))), 1e-6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SR, format="FLAC", subtype="PCM_16")
    return {"path": str(path), "seconds": round(len(audio) / SR, 2), "voice": voice.id,
            "tts_voice": voice.name, "params": voice.params,
            "bytes": path.stat().st_size, "text": " ".join(DEMO_TEXT)}


# ----------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference_core corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="dataset folder to write (resumes if it exists)")
    ap.add_argument("--minutes", type=float, default=120.0, help="audio minutes to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--voices", type=int, default=240, help="espeak training voices (lang × variant)")
    ap.add_argument("--val-voices", type=int, default=12, help="voices held out for validation")
    ap.add_argument("--augment", type=float, default=0.5, help="probability an utterance is degraded")
    ap.add_argument("--langs", default="en", help="espeak-ng language prefixes, comma separated")
    ap.add_argument("--text", default=None, help="sentences, one per line (instead of the grammar)")
    ap.add_argument("--no-flite", action="store_true", help="espeak-ng voices only")
    ap.add_argument("--festival", action="store_true",
                    help="also train on the installed festival voices (off by default: the bundled "
                         "model was trained without them)")
    ap.add_argument("--tune-voices", type=int, default=0, metavar="N",
                    help="write a tuning set instead: N unseen accent x variant voices (split 'tune')")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--demo-clip", default=None, metavar="PATH",
                    help="write the held-out-voice demo clip (FLAC) and exit")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.demo_clip:
        print(json.dumps(demo_clip(args.demo_clip, args.seed), indent=1))
        return 0
    if not args.out:
        ap.error("--out is required (or --demo-clip PATH)")
    if args.minutes <= 0 or not math.isfinite(args.minutes):
        ap.error("--minutes must be positive")
    if not 0 <= args.augment <= 1:
        ap.error("--augment is a probability in [0, 1]")
    if args.val_voices < 1:
        ap.error("--val-voices must be at least 1 (validation holds out whole voices)")
    try:
        plan = make_plan(args.seed, args.voices, args.val_voices, args.langs, not args.no_flite,
                         augment_p=args.augment, text_file=args.text, n_tune=args.tune_voices,
                         use_festival=args.festival)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stats = generate(args.out, args.minutes, plan, workers=max(1, args.workers), progress=not args.quiet)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
