"""Fit a model's articulation gains (inference_core/runtime/postfilter.py) and write them as JSON
for ``finalize-model --articulation``.

Why: at its low mouth temperature the model returns close to the average of the motions the audio
allows, and on voices it is unsure of that average barely moves the lips. The gains give back the
range: per mouth channel, the articulation rules' targets' standard deviation over time over the
model's, averaged over utterances (``fit_gains``).

Rule, fixed before any held-out run: the model at its card's defaults with articulation 0 and the
teacher (the articulation rules on the recordings' own phone timings) on the real-speech ``tune``
split, i.e. speakers the model was trained on reading prompts it was not trained on (the split
kept for choosing sampler settings); gains clipped to 0.5..2.5; running mean over 1 s.

    .venv/bin/python scripts/fit_articulation.py --model runs/final9.safetensors \\
        --lipsync data/real_v1/metrics/tune --out runs/articulation_fit.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from json_report import emit  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lipsync", required=True, help="real speech in lip_metrics format (the tune split)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from tqdm import tqdm

    from inference_core.audio.io import load_file
    from inference_core.runtime.postfilter import GAIN_RANGE, MEAN_SECONDS, fit_gains
    from inference_core.shared.model_card import read_card_header
    from inference_core.shared.options import SessionOptions
    from inference_core.training import lipsync

    items = lipsync.load_items(args.lipsync)
    if not items:
        print(f"error: no NAME.wav + NAME.json pairs in {args.lipsync}", file=sys.stderr)
        return 2
    card = read_card_header(args.model)
    settings = SessionOptions.resolve(card, {"articulation": 0.0}).to_dict()
    model = lipsync.model_weights(args.model, args.backend, args.threads, articulation=0.0)
    teacher = lipsync.teacher_weights()
    ours, targets = [], []
    for it in tqdm(items, desc="fit", unit="utt"):
        audio = load_file(it["wav"], 16000)
        ours.append(model(audio, it["meta"])[0])
        targets.append(teacher(audio, it["meta"])[0])
    out = {"gains": fit_gains(ours, targets, list(card["channels"])), "mean_seconds": MEAN_SECONDS,
           "rule": ("per mouth channel: mean over utterances of the teacher's std over time / the same for the "
                    f"model (card defaults, articulation 0), clipped to {GAIN_RANGE[0]:g}..{GAIN_RANGE[1]:g}; "
                    f"running mean {MEAN_SECONDS:g} s"),
           "data": args.lipsync, "utterances": len(items),
           "speakers": sorted({str(it["meta"].get("speaker")) for it in items}),
           "settings": {k: v for k, v in settings.items() if k != "seed"}, "model": Path(args.model).name}
    emit(out, args.out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
