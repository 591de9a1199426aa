"""Where a model's lip aperture parts from the phones: the diagnosis behind "where r is lost".

    python scripts/gap_diagnosis.py --model inference_core/models/streamingtalker_arkit.safetensors \
        --lipsync data/real_v1/metrics/dev_tiny --cache runs/gap_cache --threads 1 --out runs/gap_final11.json

lip_metrics' r correlates the lip gap on the ICT head with the phones' openness over each
utterance's speech span. This script takes the same gap (lip_metrics' own ``Face``, ``lip_gap``
and ``openness_target``, imported from the file) for the model and for the teacher (the
articulation rules on the true phones) and reports, duration-weighted over utterances:

* ``phones``: each phone's frames, its openness in the yardstick, and the mean and spread of the
  gap there in per-utterance standard units (what the correlation sees), model beside teacher;
* ``r_if_teacher``: r with the teacher's gap (in the same units) put into the frames of one
  class of phones, all else the model's: how much r each class costs;
* ``loudness``: the partial correlation of the gap with the audio's loudness (log RMS over
  20 ms) once the openness is accounted for, and the share of the gap's variance the openness
  explains, alone and with the loudness: a mouth that follows loudness the phones do not call for.

Weights are computed once per utterance and predictor and kept under ``--cache`` (npz).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from json_report import emit  # noqa: E402

from inference_core.data.phonemes import CLASSES, VOWELS  # noqa: E402
from inference_core.shared.channels import ARKIT_52  # noqa: E402
from inference_core.training.lipsync import (LIP_METRICS_DEFAULT, WeightsFn, load_items,  # noqa: E402
                                             model_weights, teacher_weights)

#: the phone groups whose cost to r is reported (``r_if_teacher``)
GROUPS: dict[str, frozenset[str]] = {
    "vowels": frozenset(VOWELS),
    "bilabial": CLASSES["bilabial"],
    "alveolar_t_d_n": frozenset({"t", "d", "n"}),
    "labiodental": CLASSES["labiodental"],
    "other_consonants": frozenset({"s", "z", "sh", "zh", "ch", "jh", "k", "g", "ng", "l", "r", "w", "y", "hh",
                                   "dh", "th", "dx", "q"}),
    "silence": CLASSES["silence"],
}


def load_lip_metrics(path: str | Path) -> ModuleType:
    """lip_metrics.py as a module (it is a script beside the checkout, not a package)."""
    spec = importlib.util.spec_from_file_location("lip_metrics", str(path))
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def utterance_gaps(lm: ModuleType, items: list[dict[str, Any]], fn: WeightsFn, cache: Path | None,
                   ict: str) -> list[dict[str, Any]]:
    """Per utterance: the gap on lip_metrics' 100 Hz grid (and in standard units over the speech
    span), the openness target, each grid point's phone, the speech span and the log loudness."""
    from inference_core.audio.io import load_file

    face = lm.Face(ict)
    out = []
    for it in items:
        path = cache / f"{it['id']}.npz" if cache else None
        if path is not None and path.exists():
            with np.load(path) as d:
                weights, t0 = d["weights"], float(d["t0"])
        else:
            audio = np.asarray(load_file(str(it["wav"]), 16000), np.float32)
            weights, t0 = fn(audio, it["meta"])
            if path is not None:
                np.savez(path, weights=weights, t0=t0)
        x, sr = lm.read_wav(str(it["wav"]))
        dur = len(x) / sr
        t, grid = lm.to_grid({"weights": weights, "t0": t0, "fps": 30.0}, dur)
        gap, _ = lm.lip_gap(face.mouth(grid, list(ARKIT_52))[0])
        phones = [(str(lab), float(s), float(e)) for lab, s, e in it["meta"]["phones"]]
        labels = np.full(len(t), "sil", dtype=object)
        for lab, s, e in phones:
            labels[(t >= s) & (t < e)] = lab
        speech = [(s, e) for lab, s, e in phones if lab != "sil"]
        span = (t >= speech[0][0]) & (t < speech[-1][1]) if speech else np.ones(len(t), bool)
        energy = np.concatenate([[0.0], np.cumsum(x ** 2)])
        lo = np.clip(((t - 0.01) * sr).astype(int), 0, len(x))
        hi = np.clip(((t + 0.01) * sr).astype(int), 0, len(x))
        loud = np.log(np.sqrt((energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)) + 1e-4)
        out.append({"id": it["id"], "dur": dur, "gap": gap, "z": _standard(gap, span),
                    "target": lm.openness_target(phones, t), "labels": labels, "span": span, "loud": loud})
    return out


def _standard(gap: np.ndarray, span: np.ndarray) -> np.ndarray:
    g = gap[span]
    return (gap - g.mean()) / (g.std() + 1e-12)


def phone_profile(model: list[dict[str, Any]], teacher: list[dict[str, Any]], openness: dict[str, float],
                  default_openness: float) -> dict[str, dict[str, float]]:
    """Each phone's frames in the speech span and the gap there in per-utterance standard units."""
    sums: dict[str, np.ndarray] = {}
    for m, te in zip(model, teacher):
        zm, zt = m["z"], te["z"]
        for lab in set(m["labels"][m["span"]]):
            sel = (m["labels"] == lab) & m["span"]
            s = sums.setdefault(str(lab), np.zeros(5))
            s += [sel.sum(), zm[sel].sum(), (zm[sel] ** 2).sum(), zt[sel].sum(), (zt[sel] ** 2).sum()]
    out = {}
    for lab, (n, m1, m2, t1, t2) in sorted(sums.items(), key=lambda kv: -kv[1][0]):
        out[lab] = {"frames": int(n), "openness": openness.get(lab, default_openness),
                    "model_mean": round(m1 / n, 3), "model_sd": round(float(np.sqrt(max(m2 / n - (m1 / n) ** 2, 0))), 3),
                    "teacher_mean": round(t1 / n, 3),
                    "teacher_sd": round(float(np.sqrt(max(t2 / n - (t1 / n) ** 2, 0))), 3)}
    return out


def r_if_teacher(lm: ModuleType, model: list[dict[str, Any]], teacher: list[dict[str, Any]],
                 phones: frozenset[str]) -> float:
    """Duration-weighted r over the speech span with the teacher's standardised gap in the
    frames of ``phones`` (empty: the model's own r)."""
    total = weight = 0.0
    for m, te in zip(model, teacher):
        sel = np.isin(m["labels"], list(phones))
        z = np.where(sel, te["z"], m["z"])
        total += lm.pearson(z[m["span"]], m["target"][m["span"]]) * m["dur"]
        weight += m["dur"]
    return total / weight


def loudness_terms(lm: ModuleType, model: list[dict[str, Any]]) -> dict[str, float]:
    """Duration-weighted partial r(gap, loudness | openness) and R^2 of the gap on the openness
    alone and with the loudness (least squares within each utterance's speech span)."""
    acc, weight = np.zeros(3), 0.0
    for u in model:
        g, o, q = u["gap"][u["span"]], u["target"][u["span"]], u["loud"][u["span"]]
        if g.std() < 1e-12 or o.std() < 1e-12:
            continue
        one = np.stack([o, np.ones_like(o)], 1)
        rg = g - one @ np.linalg.lstsq(one, g, rcond=None)[0]
        rq = q - one @ np.linalg.lstsq(one, q, rcond=None)[0]
        two = np.stack([o, q, np.ones_like(o)], 1)
        fit = two @ np.linalg.lstsq(two, g, rcond=None)[0]
        partial = lm.pearson(rg, rq)
        acc += u["dur"] * np.array([partial, 1 - rg.var() / g.var(), 1 - ((g - fit) ** 2).mean() / g.var()])
        weight += u["dur"]
    a = acc / max(weight, 1e-12)
    return {"partial_r": round(float(a[0]), 3), "r2_openness": round(float(a[1]), 3),
            "r2_openness_loudness": round(float(a[2]), 3)}


def diagnose(lm: ModuleType, model: list[dict[str, Any]], teacher: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "r": {"model": round(r_if_teacher(lm, model, teacher, frozenset()), 3),
              "teacher": round(r_if_teacher(lm, teacher, teacher, frozenset()), 3)},
        "r_if_teacher": {k: round(r_if_teacher(lm, model, teacher, v), 3) for k, v in GROUPS.items()},
        "loudness": {"model": loudness_terms(lm, model), "teacher": loudness_terms(lm, teacher)},
        "phones": phone_profile(model, teacher, lm.OPENNESS, lm.CONSONANT_OPENNESS),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--lipsync", required=True, help="a lip_metrics folder (NAME.wav + NAME.json)")
    ap.add_argument("--lip-metrics", default=str(LIP_METRICS_DEFAULT))
    ap.add_argument("--cache", type=Path, help="keep each predictor's weights here (a folder per predictor)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", type=Path, help="write the JSON here as well as to stdout")
    args = ap.parse_args(argv)
    lm = load_lip_metrics(args.lip_metrics)
    items = load_items(args.lipsync)
    if not items:
        raise SystemExit(f"no NAME.wav + NAME.json pairs in {args.lipsync}")
    caches: dict[str, Path | None] = {"model": None, "teacher": None}
    if args.cache:
        for name in caches:
            folder = args.cache / (Path(args.model).stem if name == "model" else "teacher")
            folder.mkdir(parents=True, exist_ok=True)
            caches[name] = folder
    model = utterance_gaps(lm, items, model_weights(args.model, threads=args.threads), caches["model"], lm.DEFAULT_ICT)
    teacher = utterance_gaps(lm, items, teacher_weights(), caches["teacher"], lm.DEFAULT_ICT)
    report = {"model": args.model, "lipsync": args.lipsync, "utterances": len(items), **diagnose(lm, model, teacher)}
    emit(report, args.out)


if __name__ == "__main__":
    main()
