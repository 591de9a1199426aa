"""Lip sync on real speech, in the project's yardstick: ``../shared/tools/lip_metrics.py``.

``eval --lipsync DIR`` scores a folder of phone-aligned recordings (``NAME.wav`` +
``NAME.json``, the lip_metrics format that ``python -m inference_core realspeech``
writes, with ``speaker``, ``language`` and ``sex``) for several predictors:

* the model at its card's defaults (or the eval's overrides), streamed as users run it;
* a regressor checkpoint (``--regressor``);
* the amplitude jaw (lip_metrics' own ``--baseline amplitude``: *Bake Sound to F-Curves*);
* the teacher: the project's articulation rules fed the recordings' true phone timings,
  the motion the model learns from and the ceiling it can reach.

Each predictor's weights are computed once per utterance and handed to lip_metrics.py
(run unchanged, as a subprocess) for every group: all utterances, each speaker, each
language, each sex. The figures are lip_metrics' pooled ones; blink rate and
completeness are added from the weights (the eyes are not in lip_metrics).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..shared.channels import ARKIT_52

LIP_METRICS_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "tools" / "lip_metrics.py"
#: lip_metrics' pooled figures worth reporting (the issue's targets are stated in these)
FIGURES = ("bilabial_closure_rate", "open_vowel_gap_ratio", "gap_openness_corr_speech", "rounding_ratio",
           "open_vowel_closed_frac", "lip_crossing_frac", "n_bilabial", "n_utterances", "total_duration_s")

#: weights(wav_samples_16k, meta) -> (T, K) ARKit-52 weights, frame f at t0 + f / fps
WeightsFn = Callable[[np.ndarray, dict[str, Any]], tuple[np.ndarray, float]]


def load_items(folder: str | Path) -> list[dict[str, Any]]:
    """Every NAME.json with its NAME.wav in ``folder`` (sorted by name)."""
    items = []
    for jp in sorted(Path(folder).resolve().glob("*.json")):  # absolute: the groups link to them
        wav = jp.with_suffix(".wav")
        if wav.exists():
            meta = json.loads(jp.read_text())
            items.append({"id": jp.stem, "wav": wav, "json": jp, "meta": meta})
    return items


def model_weights(model_path: str, backend: str = "auto", threads: int | None = None,
                  **overrides: Any) -> WeightsFn:
    from ..runtime.bundle import load_bundle

    return bundle_weights(load_bundle(model_path, backend=backend, threads=threads), **overrides)


def bundle_weights(bundle: Any, **overrides: Any) -> WeightsFn:
    """A loaded model (:class:`~inference_core.runtime.bundle.ModelBundle`) streamed as users run it,
    at its card's defaults with ``overrides``."""
    from ..runtime.session import StreamingSession
    from ..shared.options import SessionOptions

    t0 = 0.5 / bundle.cfg.fps  # frame f shows time (f + 0.5) / fps, as the training targets do

    def run(audio: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, float]:
        s = StreamingSession(bundle, SessionOptions.resolve(bundle.card, {**overrides, "seed": 0}))
        return np.concatenate([s.push(audio), s.flush()]), t0

    return run


def teacher_weights(fps: float = 30.0, seed: int = 0) -> WeightsFn:
    """The articulation rules on the recording's own phone timings (the training target)."""
    from ..data.articulation import articulate, style_for

    def run(audio: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, float]:
        phones = [(str(lab), float(s), float(e)) for lab, s, e in meta["phones"]]
        speaker = str(meta.get("speaker", "unknown"))
        motion = articulate(phones, audio, 16000, fps, style_for(speaker, seed), np.random.default_rng(seed))
        return motion, 0.5 / fps

    return run


def _groups(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {"all": items}
    for key in ("speaker", "language", "sex"):
        for it in items:
            value = it["meta"].get(key)
            if value is not None:
                groups.setdefault(f"{key}:{value}", []).append(it)
    return groups


def _run_lip_metrics(tool: Path, folder: Path, source: list[str]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(tool), "--data", str(folder), "--json", *source],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise RuntimeError(f"lip_metrics.py failed: {r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out.get("errors"):
        raise RuntimeError(f"lip_metrics.py could not score {sorted(out['errors'])[:3]}: "
                           f"{next(iter(out['errors'].values()))}")
    return out


def report(folder: str | Path, predictors: dict[str, WeightsFn | None], tool: str | Path = LIP_METRICS_DEFAULT,
           progress: bool = False, pooled_only: bool = False) -> dict[str, Any]:
    """{predictor: {group: figures}} for every predictor (None = lip_metrics' amplitude baseline).
    ``pooled_only``: the "all" group alone (a sampler grid needs one figure per setting)."""
    from ..audio.io import load_file
    from .evaluate import BLINK_COMPLETE, blinks

    tool = Path(tool)
    if not tool.is_file():
        raise FileNotFoundError(f"lip_metrics.py not found at {tool} (pass --lip-metrics PATH)")
    items = load_items(folder)
    if not items:
        raise ValueError(f"{folder} holds no NAME.wav + NAME.json pairs")
    groups = _groups(items)
    if pooled_only:
        groups = {"all": groups["all"]}
    audio = {it["id"]: load_file(it["wav"], 16000) for it in items}
    out: dict[str, Any] = {"data": str(folder), "utterances": len(items),
                           "speakers": sorted({str(it["meta"].get("speaker")) for it in items}),
                           "languages": sorted({str(it["meta"].get("language")) for it in items}),
                           "predictors": {}}
    with tempfile.TemporaryDirectory(prefix="stk_lipsync_") as tmp:
        for name, fn in predictors.items():
            blink_peaks: dict[str, list[float]] = {}
            if fn is not None:
                for it in items:
                    w, t0 = fn(audio[it["id"]], it["meta"])
                    it["_npz"] = Path(tmp) / f"{name}.{it['id']}.npz"
                    np.savez(it["_npz"], weights=w.astype(np.float32), channels=np.array(ARKIT_52),
                             fps=np.float32(30.0), t0=np.float32(t0))
                    blink_peaks[it["id"]] = blinks(w, list(ARKIT_52))
            per_group = {}
            for gname, members in groups.items():
                gdir = Path(tmp) / f"{name}__{gname.replace(':', '_').replace('/', '_')}"
                gdir.mkdir()
                for it in members:
                    os.symlink(it["wav"], gdir / it["wav"].name)
                    os.symlink(it["json"], gdir / it["json"].name)
                    if fn is not None:
                        os.symlink(it["_npz"], gdir / (it["wav"].name + ".npz"))
                source = ["--baseline", "amplitude"] if fn is None else ["--weights-cmd", "cp {wav}.npz {out}"]
                pooled = _run_lip_metrics(tool, gdir, source)["pooled"]
                figures = {k: pooled.get(k) for k in FIGURES}
                if fn is not None:
                    minutes = sum(audio[it["id"]].size for it in members) / 16000 / 60
                    peaks = [b for it in members for b in blink_peaks[it["id"]]]
                    figures["blinks_per_minute"] = round(len(peaks) / minutes, 2) if minutes else None
                    figures["blink_completeness"] = (round(float(np.mean([b >= BLINK_COMPLETE for b in peaks])), 3)
                                                     if peaks else None)
                per_group[gname] = figures
                if progress:
                    print(f"lipsync {name} {gname}: closure {figures['bilabial_closure_rate']}", file=sys.stderr)
            out["predictors"][name] = per_group
    out["sex_gap"] = {name: sex_gap(groups_) for name, groups_ in out["predictors"].items()}
    return out


def sex_gap(per_group: dict[str, Any]) -> dict[str, float | None]:
    """Relative difference female vs male per figure: |f - m| / max(|f|, |m|) (target ≤ 0.10)."""
    f, m = per_group.get("sex:F"), per_group.get("sex:M")
    if not f or not m:
        return {}
    out: dict[str, float | None] = {}
    for k in ("bilabial_closure_rate", "open_vowel_gap_ratio", "gap_openness_corr_speech", "rounding_ratio"):
        a, b = f.get(k), m.get(k)
        out[k] = None if a is None or b is None or max(abs(a), abs(b)) == 0 else \
            round(abs(a - b) / max(abs(a), abs(b)), 3)
    return out
