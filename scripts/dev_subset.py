"""A dev subset of a lip_metrics folder: the first utterances of each speaker in a fixed order.

    python scripts/dev_subset.py data/real_v1/metrics/val_seen_text data/real_v1/metrics/dev_small --seconds 240
    python scripts/dev_subset.py data/real_v1/metrics/val_seen_text data/real_v1/metrics/dev_tiny --seconds 120

Recipe and sampler choices are compared on held-out speakers, but a whole split is too slow to score
for every candidate on this machine. Utterances are ordered by the SHA-1 of their file name (fixed,
independent of the folder listing) and taken per speaker until ``--seconds`` are reached; the
subset is a folder of symbolic links, so nothing is copied.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import wave
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--seconds", type=float, default=240.0, help="per speaker (the last utterance may pass it)")
    args = ap.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    by_speaker: dict[str, list[Path]] = collections.defaultdict(list)
    for meta in sorted(args.src.glob("*.json")):
        by_speaker[str(json.loads(meta.read_text()).get("speaker"))].append(meta)
    total = 0.0
    for speaker, metas in sorted(by_speaker.items()):
        metas.sort(key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())
        taken = 0.0
        for meta in metas:
            if taken > args.seconds:
                break
            audio = meta.with_suffix(".wav")
            with wave.open(str(audio)) as w:
                taken += w.getnframes() / w.getframerate()
            for p in (meta, audio):
                link = args.dst / p.name
                if not link.exists():
                    os.symlink(os.path.realpath(p), link)
        total += taken
        print(f"{speaker}: {taken / 60:.1f} min")
    print(f"total {total / 60:.1f} min in {args.dst}")


if __name__ == "__main__":
    main()
