"""Markdown table of the real-speech figures in ``eval --lipsync --json`` outputs.

``python scripts/lipsync_table.py runs/eval_a.json runs/eval_b.json [--group all|speaker|language|sex]``
prints one row per (file, predictor, group): the lip_metrics figures the real-voice targets are
stated in, and the blink figures. Used to compare recipes on the dev speakers and to write the
README's tables from the same JSON the card carries.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (("bilabial_closure_rate", "closure", 2), ("open_vowel_gap_ratio", "open/closed", 2),
           ("gap_openness_corr_speech", "r", 2), ("rounding_ratio", "rounding", 2),
           ("open_vowel_closed_frac", "open shut", 3), ("blinks_per_minute", "blinks/min", 1),
           ("blink_completeness", "complete", 2))


def rows(path: Path, group: str, predictors: list[str] | None) -> list[list[str]]:
    data = json.loads(path.read_text())
    real = data.get("real_speech", data)
    out = []
    for name, groups in real["predictors"].items():
        if predictors and name not in predictors:
            continue
        for gname, fig in groups.items():
            if group == "all" and gname != "all" or group != "all" and not gname.startswith(group + ":"):
                continue
            cells = ["—" if fig.get(k) is None else f"{fig[k]:.{d}f}" for k, _, d in COLUMNS]
            out.append([path.stem, name, gname, *cells])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--group", default="all", choices=["all", "speaker", "language", "sex"])
    ap.add_argument("--predictors", default="", help="comma-separated (default: all)")
    args = ap.parse_args()
    preds = [p for p in args.predictors.split(",") if p] or None
    print("| run | predictor | group | " + " | ".join(c for _, c, _ in COLUMNS) + " |")
    print("|---" * (3 + len(COLUMNS)) + "|")
    for f in args.files:
        for r in rows(f, args.group, preds):
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
