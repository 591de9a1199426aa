"""Choose a checkpoint's sampler defaults on the tuning split, never on val.

    python scripts/tune_defaults.py --model runs/diff_v2.safetensors --data data/tune_v1 --split tune

Scores every (steps, guidance, temperature) of a small grid with the
evaluation's metrics (seed 0; lip metrics on the ICT head) and prints JSON:
all rows, and the row with the lowest lip vertex error — the selection rule,
fixed before looking at the numbers. The reported figures then come from
``python -m inference_core eval`` on the val voices with those defaults.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="tune")
    ap.add_argument("--steps", default="2,3")
    ap.add_argument("--guidance", default="1.0,1.25,1.5,2.0,2.5")
    ap.add_argument("--temperature", default="0.2,0.3,0.5",
                    help="above 0 so that takes differ by seed (diversity)")
    ap.add_argument("--max-utts", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from inference_core.data.format import Dataset
    from inference_core.training.evaluate import ICT_DEFAULT, ArkitFace, model_predictor, score

    ds = Dataset(args.data)
    utts = [ds.load(e) for e in ds.entries(args.split)[: args.max_utts]]
    if not utts:
        print(f"error: no {args.split!r} utterances in {args.data}", file=sys.stderr)
        return 2
    face = ArkitFace(ICT_DEFAULT) if ICT_DEFAULT.exists() else None
    rows = []
    grid = itertools.product([int(s) for s in args.steps.split(",")],
                             [float(g) for g in args.guidance.split(",")],
                             [float(t) for t in args.temperature.split(",")])
    for steps, guidance, temperature in grid:
        t0 = time.time()
        pred = model_predictor(args.model, threads=args.threads, steps=steps, guidance=guidance,
                               temperature=temperature)
        res = score(pred, utts, ds, face, seeds=1)
        rows.append({"steps": steps, "guidance": guidance, "temperature": temperature, **res,
                     "seconds": round(time.time() - t0, 1)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    key = "lve_mm" if face is not None else "mouth_mae"
    best = min(rows, key=lambda r: r[key])
    out = {"model": args.model, "data": args.data, "split": args.split, "utterances": len(utts),
           "selection": f"lowest {key} on the {args.split} split ({len(utts)} utterances); grid: steps "
                        f"{{{args.steps}}} x guidance {{{args.guidance}}} x temperature {{{args.temperature}}}",
           "best": {k: best[k] for k in ("steps", "guidance", "temperature")},
           "rows": rows}
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
