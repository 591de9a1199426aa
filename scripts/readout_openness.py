"""Does the audio encoder already hear how open the mouth should be? A phone read-out's answer.

    python scripts/readout_openness.py --model runs/k2.safetensors --read-out runs/k2.safetensors.state \
        --lipsync data/real_v1/metrics/dev_tiny --threads 1 --out runs/readout_k2.json

lip_metrics' r correlates the lip gap on the ICT head with each phone's openness over every
utterance's speech span. Before blaming the encoder for a low r, ask its features: a linear phone
read-out of them (the one ``train --phone-weight`` trains beside the model and keeps in
``OUT.state`` as ``probe``, or ``scripts/pretrain_audio_branch.py --probe-parent``'s ``read_out``)
gives each frame a phone posterior, and the posterior-weighted openness (lip_metrics' own table) is
scored exactly as lip_metrics scores a lip gap: its own target, 100 Hz grid and speech span, r per
utterance pooled by duration. Also reported: the most likely phone's openness, and the share of
frames whose most likely phone is the aligned one. An expected openness that follows the target far
better than the model's lip gap says that r is lost between the features and the motion (the head),
not in what the encoder hears.

The features are the encoder's whole-utterance output with training's silence padding: the same
causal convolutions and 40 ms look-ahead the stream uses, read without the streaming session.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from json_report import emit  # noqa: E402

from gap_diagnosis import load_lip_metrics  # noqa: E402

from inference_core.data.phonemes import INVENTORY, frame_labels  # noqa: E402
from inference_core.training.lipsync import LIP_METRICS_DEFAULT, load_items  # noqa: E402

#: posteriors(audio 16 kHz, n_frames) -> (n_frames, len(INVENTORY)), frame f at (f + 0.5) / fps
Posteriors = Callable[[np.ndarray, int], np.ndarray]


def openness_table(lm: ModuleType) -> np.ndarray:
    """lip_metrics' openness for every phone of the read-out's inventory (silence closed)."""
    return np.array([lm.OPENNESS.get(p, 0.0 if p == "sil" else lm.CONSONANT_OPENNESS) for p in INVENTORY])


def score(lm: ModuleType, items: list[dict[str, Any]], posteriors: Posteriors, fps: float = 30.0) -> dict[str, Any]:
    """Expected and most-likely-phone openness against lip_metrics' target (r over the speech span,
    duration-weighted), and the read-out's frames right; the expected openness's r also per language
    (lip_metrics' groups: where the lip gap's r is lowest, is it the hearing or the head?)."""
    from inference_core.audio.io import load_file

    table = openness_table(lm)
    index = {p: i for i, p in enumerate(INVENTORY)}
    sums = {"expected": 0.0, "most_likely": 0.0}
    seconds = right = labelled = 0.0
    by_language: dict[str, list[float]] = {}  # language -> [r * seconds, seconds]
    for it in items:
        audio = np.asarray(load_file(str(it["wav"]), 16000), np.float32)
        dur = audio.size / 16000
        phones = [(str(lab), float(s), float(e)) for lab, s, e in it["meta"]["phones"]]
        speech = [(s, e) for lab, s, e in phones if lab != "sil"]
        if not speech:
            continue
        n = int(math.ceil(dur * fps))
        post = posteriors(audio, n)
        t = np.arange(int(math.floor(dur * lm.GRID_HZ)) + 1) / lm.GRID_HZ
        span = (t >= speech[0][0]) & (t < speech[-1][1])
        target = lm.openness_target(phones, t)
        centres = (np.arange(n) + 0.5) / fps
        for name, per_frame in (("expected", post @ table), ("most_likely", table[post.argmax(1)])):
            r = lm.pearson(np.interp(t, centres, per_frame)[span], target[span])
            sums[name] += r * dur
            if name == "expected":
                lang = by_language.setdefault(str(it["meta"].get("language", "?")), [0.0, 0.0])
                lang[0], lang[1] = lang[0] + r * dur, lang[1] + dur
        labels = frame_labels([p[0] for p in phones], [p[1] for p in phones], [p[2] for p in phones], n, fps)
        known = np.array([index.get(lab, -1) for lab in labels])
        right += float((post.argmax(1) == known)[known >= 0].sum())
        labelled += float((known >= 0).sum())
        seconds += dur
    return {"utterances": len(items), "seconds": round(seconds, 2),
            "expected_openness_r_speech": round(sums["expected"] / seconds, 4) if seconds else None,
            "most_likely_openness_r_speech": round(sums["most_likely"] / seconds, 4) if seconds else None,
            "frames_right": round(right / labelled, 4) if labelled else None,
            "expected_openness_r_by_language": {k: round(v[0] / v[1], 4) for k, v in sorted(by_language.items())}}


#: ``--read-out`` value naming the model's own bottleneck read-out
OWN_READ_OUT = "model"


def model_features(model_path: str, logits: bool = False) -> Callable[[np.ndarray, int], np.ndarray]:
    """features(audio 16 kHz, n_frames) -> the audio encoder's (n_frames, model_dim) output (torch),
    frame f at (f + 0.5) / fps, as the motion frames the model writes; with ``logits``, its phonetic
    bottleneck's phone logits (n_frames, classes) instead."""
    import torch

    from inference_core.audio.torch_features import TorchLogMel
    from inference_core.model.checkpoint import load_checkpoint
    from inference_core.training.data import encoder_lead_steps, mel_window, padded_log_mel, prepared_mel, silence_steps

    model, _, _ = load_checkpoint(model_path)
    model.eval()
    cfg = model.cfg
    mel_of = TorchLogMel(cfg.sample_rate, cfg.hop, cfg.win_length, cfg.n_fft, cfg.n_mels)
    before, _ = silence_steps(cfg)
    lead = encoder_lead_steps(cfg)
    rng = np.random.default_rng(0)  # prepared_mel with no augmentation draws nothing

    def run(audio: np.ndarray, n: int) -> np.ndarray:
        # as training reads an utterance (inference_core.training.data): silence around it, one window
        window = mel_window(padded_log_mel(audio, cfg, mel_of), cfg, lead, before + math.ceil(n / cfg.chunk_frames))
        with torch.no_grad():
            feats, heard = model.audio.encode(prepared_mel(window[None], rng, cfg, 0.0))
        if logits and heard is None:
            raise ValueError(f"{model_path} has no phonetic bottleneck to read")
        feats = (heard if logits else feats)[0].numpy()
        first = (before - lead) * cfg.chunk_frames  # frame 0 of the utterance
        return feats[first:first + n]

    return run


def model_posteriors(model_path: str, read_out_path: str) -> Posteriors:
    """The read-out's phone posteriors on the model's audio features, as the runtime's phonetic
    gain computes them; ``read_out_path`` "model": the model's own phonetic bottleneck's."""
    from inference_core.runtime.postfilter import phone_posteriors
    from inference_core.training.phonetic import read_out_tensors

    if read_out_path == OWN_READ_OUT:
        logits = model_features(model_path, logits=True)

        def own(audio: np.ndarray, n: int) -> np.ndarray:
            z = logits(audio, n)
            return phone_posteriors(z, np.eye(z.shape[1]), np.zeros(z.shape[1]))

        return own
    weight, bias = read_out_tensors(read_out_path)
    features = model_features(model_path)
    return lambda audio, n: phone_posteriors(features(audio, n), weight, bias)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--read-out", required=True,
                    help="a training state with the phone probe (train's OUT.state) or pretrain_audio_branch's "
                         f"state; '{OWN_READ_OUT}': the model's own phonetic bottleneck (phone_bottleneck)")
    ap.add_argument("--lipsync", required=True, help="a lip_metrics folder (NAME.wav + NAME.json)")
    ap.add_argument("--lip-metrics", default=str(LIP_METRICS_DEFAULT))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    lm = load_lip_metrics(args.lip_metrics)
    report = {"model": args.model, "read_out": args.read_out, "data": args.lipsync,
              **score(lm, load_items(args.lipsync), model_posteriors(args.model, args.read_out))}
    emit(report, args.out)


if __name__ == "__main__":
    main()
