"""Sentences of one language for a TTS corpus, from the real-speech set's transcripts.

    python scripts/realspeech_texts.py data/real_v1/dataset --lang es --out data/texts/es.txt
    python -m inference_core corpus --out data/tts_es --langs es --text data/texts/es.txt ...

Only the texts of prompt groups that are *not* held out (splits ``train`` and
``val_seen_text``) are taken, so synthetic speech never says a text of the ``val`` or
``tune`` splits, and no recording is used, only its words. One text per line, each once,
sorted (the corpus draws from them with its own seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEEN_TEXT_SPLITS = ("train", "val_seen_text")


def texts(dataset: str | Path, language: str, min_words: int = 2) -> list[str]:
    from inference_core.data.format import Dataset

    ds = Dataset(dataset)
    out = {e["text"].strip() for split in SEEN_TEXT_SPLITS for e in ds.entries(split)
           if e.get("language") == language and len(str(e.get("text", "")).split()) >= min_words}
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", help="the real-speech set's dataset/ folder")
    ap.add_argument("--lang", required=True, help="language code as the set records it (es, fr, cs, ...)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-words", type=int, default=2)
    args = ap.parse_args(argv)
    lines = texts(args.dataset, args.lang, args.min_words)
    if not lines:
        print(f"error: no {args.lang!r} texts outside the held-out groups in {args.dataset}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} {args.lang} texts -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
