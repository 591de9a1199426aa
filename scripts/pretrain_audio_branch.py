"""Teach a new audio branch the phones before it joins the model (issue 13, real voices).

    python scripts/pretrain_audio_branch.py --init MODEL --branch-dim 256 \
        --data data/corpus_v1 data/real_v3/dataset --data-weight 1,4 --out runs/abp.safetensors

Grows an audio branch (``ModelConfig.audio_branch_dim``) on ``--init``'s weights and trains only
the branch, through a linear read-out of each frame's phone class from its features, with the
training's feature augmentation; everything else stays frozen and the branch's projection stays
zero, so the written model still computes exactly what ``--init`` does. ``train --init OUT`` then
lets the model use what the branch hears (``--lr-mult audio.branch=F``). Why: trained from zero
inside the motion loss a branch changed nothing, while taught phones first it moved r.

Every ``--eval-every`` iterations (and at the end) the read-out is scored on fixed batches of
``--eval-split`` (default ``tune``: the training speakers' held-out prompts); the figures go to
``OUT.pretrain.json``. ``--probe-parent`` trains the same read-out on ``--init``'s own features,
the reference a taught branch is measured against. Resumable (``--resume``: ``OUT.state``); a tqdm bar shows progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference_core.data.format import Dataset  # noqa: E402
from inference_core.model.checkpoint import read_card, save_checkpoint  # noqa: E402
from inference_core.model.config import config_from_card  # noqa: E402
from inference_core.model.network import StreamingTalker  # noqa: E402
from inference_core.training.data import (IGNORE, PHONE_INDEX, VTLP_RANGE, TrainingData,  # noqa: E402
                                          mask_spectrum, prepared_mel, warp_range)
from inference_core.training.finetune import BRANCH_PREFIX, init_from  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="the model to grow a branch on (.safetensors)")
    p.add_argument("--branch-dim", type=int, default=256)
    p.add_argument("--data", required=True, nargs="+")
    p.add_argument("--data-weight", default=None, metavar="W1,W2")
    p.add_argument("--out", required=True)
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=12, help="autoregressive steps per segment (C frames each)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--feature-aug", type=float, default=0.5, help="share of segments perturbed (train's option)")
    p.add_argument("--vtlp-range", type=warp_range, default=VTLP_RANGE, metavar="LO,HI")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on the branch's features before the read-out")
    p.add_argument("--spec-mask", type=float, default=0.0,
                   help="share of segments given SpecAugment band and span masks (after --feature-aug)")
    p.add_argument("--eval-data", nargs="+", default=None, help="dataset folder(s) scored (default: --data)")
    p.add_argument("--probe-parent", action="store_true",
                   help="the reference instead: train only a read-out of --init's own audio features "
                        "(frozen) and report it; no model is written")
    p.add_argument("--eval-split", default="tune", metavar="SPLIT[,SPLIT]",
                   help="dataset split(s) the read-out is scored on (default: tune)")
    p.add_argument("--eval-batches", type=int, default=30)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def _features(model: StreamingTalker, mel: torch.Tensor) -> torch.Tensor:
    """What the read-out reads: the branch's features, or the encoder's output without a branch."""
    return model.audio.branch_features(mel) if model.cfg.audio_branch_dim else model.audio(mel)


def _read_out_loss(model: StreamingTalker, read_out: torch.nn.Linear, mel: torch.Tensor, phones: torch.Tensor,
                   dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, (frames right, frames labelled)) of the read-out on a batch."""
    feats = torch.nn.functional.dropout(_features(model, mel), dropout, training=dropout > 0)
    logits = read_out(feats).flatten(0, 1)
    target = phones.flatten()
    ce = torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE)
    known = target != IGNORE
    right = (logits.argmax(-1)[known] == target[known]).sum()
    return ce, torch.stack([right, known.sum()])


def evaluate(model: StreamingTalker, read_out: torch.nn.Linear,
             batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    ce_sum, counts = 0.0, torch.zeros(2)
    with torch.no_grad():
        for mel, phones in batches:
            ce, c = _read_out_loss(model, read_out, mel, phones, 0.0)
            ce_sum += float(ce) * float(c[1])
            counts += c
    return {"phone_accuracy": round(float(counts[0] / counts[1]), 4),
            "cross_entropy": round(ce_sum / float(counts[1]), 4), "frames": int(counts[1])}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    card = read_card(args.init)
    parent_cfg = config_from_card(card)
    if parent_cfg.audio_branch_dim:
        print(f"error: {args.init} already has an audio branch", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(parent_cfg, audio_branch_dim=0 if args.probe_parent else args.branch_dim)
    model = StreamingTalker(cfg)
    speakers = list(card.get("styles") or ["generic"])[1:]
    problem = init_from(model, args.init, speakers)  # the parent's weights, the branch fresh beside them
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(BRANCH_PREFIX) and not name.startswith("audio.branch_out"))
    read_out = torch.nn.Linear(cfg.audio_branch_dim or cfg.model_dim, len(PHONE_INDEX))
    trained = [p for p in model.parameters() if p.requires_grad] + list(read_out.parameters())
    opt = torch.optim.AdamW(trained, lr=args.lr, weight_decay=args.weight_decay)

    sources = [Dataset(d) for d in args.data]
    weights = [float(w) for w in args.data_weight.split(",")] if args.data_weight else None
    data = TrainingData(sources, cfg, "train", speakers, weights=weights)
    eval_rng = np.random.default_rng(1234)
    eval_batches: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    scored = [Dataset(d) for d in args.eval_data] if args.eval_data else sources
    for split in args.eval_split.split(","):
        held = TrainingData(scored, cfg, split, speakers)
        eval_batches[split] = []
        for _ in range(args.eval_batches):
            mel, _, _, phones = held.batch(eval_rng, args.batch, 0, args.steps)
            eval_batches[split].append((prepared_mel(mel, eval_rng, cfg, 0.0), phones))

    state_path, report_path = Path(args.out + ".state"), Path(args.out + ".pretrain.json")
    start, history = 0, []
    if args.resume and state_path.exists():
        st = torch.load(state_path, weights_only=True)
        model.load_state_dict(st["model"])
        read_out.load_state_dict(st["read_out"])
        opt.load_state_dict(st["opt"])
        start, history = int(st["iter"]), json.loads(report_path.read_text())["history"]
    rng = np.random.default_rng(args.seed + start)
    report: dict[str, object] = {"init": Path(args.init).name, "args": vars(args), "history": history}
    from tqdm import tqdm

    t0 = time.time()
    model.eval()  # no dropout or batch statistics anywhere but the read-out's own dropout
    for it in tqdm(range(start, args.iters), initial=start, total=args.iters, desc="pretrain", dynamic_ncols=True):
        lr = args.lr * min(1.0, (it + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * it / args.iters))
        for g in opt.param_groups:
            g["lr"] = lr
        mel, _, _, phones = data.batch(rng, args.batch, 0, args.steps)
        mel = prepared_mel(mel, rng, cfg, args.feature_aug, args.vtlp_range)
        if args.spec_mask > 0:
            mel = mask_spectrum(mel, rng, args.spec_mask)
        loss, _ = _read_out_loss(model, read_out, mel, phones, args.dropout)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if (it + 1) % args.eval_every == 0 or it + 1 == args.iters:
            history.append({"iter": it + 1, "train_ce": round(float(loss), 4),
                            **{split: evaluate(model, read_out, b) for split, b in eval_batches.items()}})
            report["history"] = history
            report["seconds"] = round(time.time() - t0, 1)
            report_path.write_text(json.dumps(report, indent=1))
            out_card = dict(card)
            out_card["branch_pretrain"] = {"from": Path(args.init).name, "data": [str(d) for d in args.data],
                                           "seed": args.seed, **history[-1]}
            if not args.probe_parent:
                save_checkpoint(args.out, model, out_card)
            torch.save({"model": model.state_dict(), "read_out": read_out.state_dict(), "opt": opt.state_dict(),
                        "iter": it + 1}, state_path)
    print(json.dumps(history[-1] if history else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
