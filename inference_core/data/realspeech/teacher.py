"""The "teacher" for lip_metrics.py: the dataset's own motion for an utterance, as per-frame weights.

    python3 lip_metrics.py --data data/real_v1/metrics/val --json --weights-cmd \\
      ".venv/bin/python -m inference_core.data.realspeech.teacher --dataset data/real_v1/dataset {wav} {out}"

Why: the articulation rules fed the aligned phones are what a model trained on this set is
taught; scoring them with the same metrics on the same recordings gives the ceiling a model
can reach (bilabial closure near 1), and checks the alignments (a shifted /p b m/ would not
close where the metric looks). The utterance is found by the WAV's file name (its id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def write_teacher(dataset: str | Path, wav: str | Path, out: str | Path) -> Path:
    from ..format import Dataset

    ds = Dataset(dataset)
    uid = Path(wav).stem
    entry = next((e for e in ds.entries() if e["id"] == uid), None)
    if entry is None:
        raise KeyError(f"{uid}: not in {dataset}")
    utt = ds.load(entry)
    out = Path(out)
    with open(out, "wb") as f:  # the exact path lip_metrics gave (np.savez would add ".npz")
        # articulate()'s frame f shows time (f + 0.5) / fps: say so with t0
        np.savez(f, weights=utt.motion.astype(np.float32), channels=np.array(ds.channels),
                 fps=np.float32(ds.fps), t0=np.float32(0.5 / ds.fps))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference_core.data.realspeech.teacher", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="the realspeech build's dataset/ folder")
    ap.add_argument("wav", help="the utterance's WAV (its stem is the utterance id)")
    ap.add_argument("out", help="the .npz to write (weights T x K, channels, fps)")
    args = ap.parse_args(argv)
    try:
        write_teacher(args.dataset, args.wav, args.out)
    except KeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
