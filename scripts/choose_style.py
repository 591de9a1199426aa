"""Choose the model's default speaking style on the dev speakers, by a rule fixed before the
held-out run.

Why: every style the model was trained with is a set of the articulation rules' gains (jaw,
lips, rounding, speed, how firmly the lips press) that the model learned with its voice. New
voices get the *generic* style by default, the average the style dropout taught, and that average
is a timid mouth: on the dev speakers, styles alone move /p b m/ closure between 0.70 and 0.85
(measured on 43 styles of the bundled model, dev_tiny). A user can pick any style; this picks the
default, on held-out speakers' recordings that are not the reported ``val`` set.

Rule:

1. Score every ``--every``-th trained style (the mouth's figures; the upper face is drawn in one
   cheap step, which leaves the mouth's chain as it is) and ``generic`` on ``--scan`` (dev_tiny) with
   ``lip_metrics.py`` (:func:`inference_core.training.lipsync.report`): score = mean of closure /
   0.85, open/closed / 4, r / 0.55, rounding / 3 (issue 13's targets), each capped at 1.
2. Eligible: open vowels shut <= 0.15 (the target) and none of the four figures more than 2 % under
   generic's (a style may not buy closure with rounding).
3. The ``--top`` best eligible styles are scored again on ``--confirm`` (dev_small, more speech);
   the best there that is still eligible is chosen, else generic.

TTS guard (``--tts DATASET``): the chosen style's lip vertex error on the TTS held-out voices may
be at most 3 % above generic's (the sampler rule's slack), else the next confirmed style is tried.

    .venv/bin/python scripts/choose_style.py --every 6 --workers 2 --tts data/corpus_v1 --out runs/style_choice.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from json_report import emit  # noqa: E402

TARGETS = {"bilabial_closure_rate": 0.85, "open_vowel_gap_ratio": 4.0, "gap_openness_corr_speech": 0.55,
           "rounding_ratio": 3.0}
OPEN_SHUT_MAX = 0.15
WORSE_THAN_GENERIC = 0.02
TTS_SLACK = 0.03


def score(fig: dict[str, Any]) -> float:
    return sum(min(1.0, float(fig[k]) / t) for k, t in TARGETS.items()) / len(TARGETS)


def eligible(fig: dict[str, Any], generic: dict[str, Any]) -> bool:
    return (float(fig["open_vowel_closed_frac"]) <= OPEN_SHUT_MAX
            and all(float(fig[k]) >= (1 - WORSE_THAN_GENERIC) * float(generic[k]) for k in TARGETS))


def figures(job: tuple[str, str, str, int]) -> tuple[str, dict[str, Any]]:
    """lip_metrics' pooled figures of one style on one folder (one process per style)."""
    from inference_core.training import lipsync

    model, folder, style, threads = job
    # the mouth is its own chain, exactly independent of the upper face's temperature and steps
    # (tested in test_core_session), so the cheapest upper chain gives the defaults' lip figures
    fn = lipsync.model_weights(model, "onnx", threads, style=style, temperature_upper=0.1, steps_upper=1)
    rep = lipsync.report(folder, {"model": fn}, pooled_only=True)
    return style, rep["predictors"]["model"]["all"]


def scored(model: str, folder: str, styles: list[str], workers: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(workers) as pool:
        for s, fig in pool.map(figures, [(model, folder, s, 1) for s in styles]):
            fig["score"] = round(score(fig), 4)
            print(f"{Path(folder).name} {s}: {json.dumps(fig)}", file=sys.stderr, flush=True)
            out[s] = fig
    return out


def tts_lve(model: str, data: str, style: str) -> float:
    cmd = [sys.executable, "-m", "inference_core", "eval", "--model", model, "--data", data, "--style", style,
           "--drift-minutes", "0", "--threads", "1", "--json"]
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    return float(res["model_scores"]["lve_mm"])


def choose(scan: dict[str, dict[str, Any]], confirm_with: Callable[[list[str]], dict[str, dict[str, Any]]],
           top: int, tts_with: Callable[[str], float] | None = None) -> dict[str, Any]:
    """The rule (module docstring) on the scan's figures; ``confirm_with(styles)`` scores styles on
    the confirming set (generic among them), ``tts_with(style)`` gives the TTS lip vertex error."""
    generic = scan["generic"]
    ranked = sorted((s for s in scan if s != "generic" and eligible(scan[s], generic)), key=lambda s: -scan[s]["score"])
    confirm = confirm_with(["generic"] + ranked[:top])
    order = sorted((s for s in ranked[:top] if eligible(confirm[s], confirm["generic"])),
                   key=lambda s: -confirm[s]["score"])
    tts: dict[str, float] = {}
    chosen = "generic"
    for s in order:
        if tts_with is not None:
            tts.setdefault("generic", tts_with("generic"))
            tts[s] = tts_with(s)
            if tts[s] > (1 + TTS_SLACK) * tts["generic"]:
                continue
        chosen = s
        break
    return {"scan_eligible_ranked": ranked, "confirm": confirm, "confirm_eligible_ranked": order,
            "tts_lve_mm": tts, "chosen": chosen}


def main(argv: list[str] | None = None) -> int:
    from inference_core.model.checkpoint import read_card
    from inference_core.shared.paths import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--scan", default="data/real_v1/metrics/dev_tiny")
    ap.add_argument("--confirm", default="data/real_v1/metrics/dev_small")
    ap.add_argument("--every", type=int, default=6, help="scan every N-th trained style (1: all)")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tts", default=None, metavar="DATASET", help="apply the TTS guard on this dataset")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    styles = list(read_card(args.model)["styles"])
    scan = scored(args.model, args.scan, ["generic"] + styles[1:][::args.every], args.workers)
    picked = choose(scan, lambda names: scored(args.model, args.confirm, names, args.workers), args.top,
                    (lambda s: tts_lve(args.model, args.tts, s)) if args.tts else None)
    result = {"model": args.model, "rule": __doc__, "targets": TARGETS, "open_shut_max": OPEN_SHUT_MAX,
              "worse_than_generic_max": WORSE_THAN_GENERIC, "tts_slack": TTS_SLACK,
              "scan": {"data": args.scan, "every": args.every, "figures": scan,
                       "eligible_ranked": picked["scan_eligible_ranked"]},
              "confirm": {"data": args.confirm, "figures": picked["confirm"],
                          "eligible_ranked": picked["confirm_eligible_ranked"]},
              "tts_lve_mm": picked["tts_lve_mm"], "chosen": picked["chosen"]}
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
