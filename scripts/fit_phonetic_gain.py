"""Choose a model's phonetic gain (inference_core/runtime/postfilter.py, ``PhoneticGain``) and write it as
JSON for ``finalize-model --phonetic-gain``.

Why: the audio encoder's features say how open the mouth should be far better than the model's lip
gap shows (``scripts/readout_openness.py``). The gain multiplies the opening channels by how much
more open the articulation rules' jaw is for the phones a linear read-out of those features hears
now than over the last second, raised to ``beta``.

Rule (docs/measurements/stop34/rule.txt, addenda 2 and 4): every beta x floor of the grid is streamed
through the session as users run the model (card defaults, the option ``phonetic`` 1) on the
real-speech ``tune`` split (speakers the model was trained on, prompts it was not); qualifying are
the settings whose closure, open/closed and rounding are not below the model's own there (no
gain), whose open-vowel shut share is not above the model's own by more than ``--open-shut-slack``
and, with ``--tts DIR`` (the TTS tuning voices, the sampler rule's set), whose lip vertex error
there is within ``--lve-slack`` of the model's own; chosen is the highest r among them (ties: the
smaller beta, then the higher floor). None qualifying, ``chosen`` is null and ``finalize-model``
refuses it.

    .venv/bin/python scripts/fit_phonetic_gain.py --model inference_core/models/streamingtalker_arkit.safetensors \\
        --read-out runs/p0.safetensors.state --lipsync data/real_v1/metrics/tune --out runs/phonetic_fit.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from json_report import emit  # noqa: E402

from inference_core.training.phonetic import FIGURES, choose, phonetic_spec, phonetic_tensors, read_out_tensors  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def tts_lve(bundles: dict[str, Any], data: str, max_utts: int, split: str = "tune") -> dict[str, float]:
    """Each bundle's lip vertex error (mm, ICT head) on a split of a TTS dataset, streamed at its
    card's defaults (what ``scripts/tune_defaults.py`` weighs the sampler by)."""
    from inference_core.data.format import Dataset
    from inference_core.training.evaluate import ICT_DEFAULT, ArkitFace, bundle_predictor, score

    ds = Dataset(data)
    utts = [ds.load(e) for e in ds.entries(split)[:max_utts]]
    face = ArkitFace(ICT_DEFAULT)
    return {name: round(float(score(bundle_predictor(b, name, phonetic=1.0), utts, ds, face, seeds=1)["lve_mm"]), 4)
            for name, b in bundles.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--read-out", required=True, help="train's OUT.state, or pretrain_audio_branch.py's state")
    ap.add_argument("--lipsync", required=True, help="real speech in lip_metrics format (the tune split)")
    ap.add_argument("--beta", type=_floats, default=_floats("0.5,0.75,1.0,1.25,1.5"))
    ap.add_argument("--floor", type=_floats, default=_floats("0.5,0.75,1.0"))
    ap.add_argument("--ceiling", type=float, default=2.0)
    ap.add_argument("--mean-seconds", type=float, default=1.0)
    ap.add_argument("--open-shut-slack", type=float, default=0.01)
    ap.add_argument("--mode", choices=("absolute", "relative"), default="absolute")
    ap.add_argument("--tts", default=None, metavar="DIR",
                    help="TTS dataset whose tune split's lip vertex error must stay within --lve-slack")
    ap.add_argument("--tts-split", default="tune")
    ap.add_argument("--tts-max-utts", type=int, default=20)
    ap.add_argument("--lve-slack", type=float, default=0.02)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lip-metrics", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from inference_core.runtime.bundle import load_bundle
    from inference_core.shared.model_card import PHONETIC_KEY
    from inference_core.training import lipsync

    weight, bias = read_out_tensors(args.read_out)
    bundle = load_bundle(args.model, backend=args.backend, threads=args.threads)
    if weight.shape[1] != bundle.cfg.model_dim:
        print(f"error: the read-out reads {weight.shape[1]} features, the model gives {bundle.cfg.model_dim}",
              file=sys.stderr)
        return 2
    tensors = phonetic_tensors(weight, bias)
    settings = [(b, f) for b in args.beta for f in args.floor]
    bundles = {"base": bundle}
    for b, f in settings:
        card = {**bundle.card, PHONETIC_KEY: phonetic_spec(b, f, args.ceiling, args.mean_seconds, args.mode)}
        bundles[f"beta{b:g}_floor{f:g}"] = dataclasses.replace(bundle, card=card, extra={**bundle.extra, **tensors})
    predictors = {name: lipsync.bundle_weights(b, phonetic=1.0) for name, b in bundles.items()}
    kw = {"tool": args.lip_metrics} if args.lip_metrics else {}
    rep = lipsync.report(args.lipsync, predictors, pooled_only=True, **kw)["predictors"]
    figures = {name: {k: rep[name]["all"][k] for k in FIGURES} for name in bundles}
    if args.tts:
        for name, lve in tts_lve(bundles, args.tts, args.tts_max_utts, args.tts_split).items():
            figures[name]["tts_lve_mm"] = lve
    base = figures["base"]
    grid = [{"beta": b, "floor": f, "figures": figures[f"beta{b:g}_floor{f:g}"]} for b, f in settings]
    chosen = choose(base, grid, args.open_shut_slack, args.lve_slack if args.tts else None)
    out = {"model": Path(args.model).name, "read_out": args.read_out, "data": args.lipsync,
           "mode": args.mode, "tts": args.tts,
           "rule": ("stream every beta x floor at the card's defaults on the tune split; qualifying: closure, "
                    "open/closed and rounding not below the model's own, open shut not above its own by more "
                    f"than {args.open_shut_slack:g}"
                    + (f", TTS tune lip vertex error within {args.lve_slack:.0%} of its own" if args.tts else "")
                    + "; chosen: highest r (ties: smaller beta, higher floor)"),
           "base": base, "grid": grid,
           "chosen": None if chosen is None else {
               **phonetic_spec(chosen["beta"], chosen["floor"], args.ceiling, args.mean_seconds, args.mode),
               "figures": chosen["figures"]}}
    emit(out, args.out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
