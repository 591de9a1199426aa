"""The checkpoint a training run writes: the EMA weights and the card that says how they
were trained (data and their weights, who is held out, seeds, every loss and context
option), so a model file answers for itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.format import Dataset
from ..model.checkpoint import base_card, read_card, save_checkpoint
from ..model.config import ModelConfig
from ..model.network import StreamingTalker
from ..shared.model_card import training_stages


def _held_out(d: Dataset) -> dict[str, list[str]]:
    """Who a dataset holds out: whole speakers never trained on, and (real speech) the training
    speakers whose held-out prompt groups only tuned or validated."""
    train = set(d.speakers("train"))
    held = {s for split in ("val", "tune") for s in d.speakers(split)}
    out = {"held_out_speakers": sorted(held - train)}
    if held & train:
        out["train_speakers_with_held_out_prompts"] = sorted(held & train)
    return out


def voice_credits(sources: list[Dataset], earlier: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The credit owed to every recorded voice the weights learned from: this run's training
    utterances that carry an ``attribution`` (the real-speech sets write one per utterance),
    plus ``earlier`` (the parent's, since a fine-tune keeps what its parent learned). CC-BY-SA
    and GPL recordings ask to be credited wherever work derived from them goes, and the model
    file travels on its own (the extension zip, a render farm), so the card carries them."""
    out = {c["voice"]: c for c in earlier or []}
    for d in sources:
        for u in d.entries("train"):
            if u.get("attribution"):
                voice = str(u.get("voice") or u["speaker"])
                out.setdefault(voice, {"voice": voice, "licence": str(u.get("licence") or ""),
                                       "attribution": str(u["attribution"])})
    return [out[v] for v in sorted(out)]


def save_trained(args: argparse.Namespace, sources: list[Dataset], cfg: ModelConfig, ema: StreamingTalker,
                 speakers: list[str], log: list[dict[str, float]], iters: int, seconds: float) -> None:
    """Write ``args.out``: ``ema``'s weights with the card of this run (and its parent's, when fine-tuned)."""
    ds = sources[0]
    value_range = (0.0, 1.0) if ds.channel_space == "arkit" else None
    card = base_card(cfg, ds.channels, ds.channel_space, args.name or Path(args.out).stem,
                     ["generic"] + speakers, value_range)
    card["objective"] = args.objective
    hours = sum(u["seconds"] for d in sources for u in d.entries("train")) / 3600
    card["training"] = {
        "trained": True, "data": " + ".join(d.meta.get("source", str(d.root)) for d in sources),
        "dataset": " + ".join(Path(d.root).name for d in sources), "train_hours": round(hours, 3),
        "datasets": [{"dataset": Path(d.root).name, "weight": w,
                      "train_hours": round(sum(u["seconds"] for u in d.entries("train")) / 3600, 3),
                      "train_speakers": len(d.speakers("train")), **_held_out(d)}
                     for d, w in zip(sources, args.weights)],
        "train_utterances": sum(len(d.entries("train")) for d in sources), "train_speakers": len(speakers),
        "val_speakers": sorted({s for d in sources for s in d.speakers("val")}),
        "iterations": iters, "batch": args.batch, "seed": args.seed,
        "objective": args.objective, "seconds": round(seconds, 1), "loss_log_tail": log[-5:],
        "sampler_times": args.sampler_times,
        "first_step_weight": args.first_step_weight,
        "sampler_loss": ({"weight": args.sampler_loss_weight, "steps": args.sampler_loss_steps,
                          "temperature": args.sampler_loss_temperature}
                         if args.sampler_loss_weight > 0 else None),
        "upper_distill": args.upper_distill or None,
        "upper_distill_path": ({"steps": args.upper_distill_steps, "temperature": args.upper_distill_temperature}
                               if args.upper_distill and args.upper_distill_steps else None),
        "lr_mult": {prefix: f for prefix, f in args.lr_mult} or None,
        "phone_weight": args.phone_weight, "feature_aug": args.feature_aug,
        "phone_bottleneck": ({"raw_audio_drop": args.raw_audio_drop,
                              "read_out_from": Path(args.phone_read_init).name if args.phone_read_init else None}
                             if cfg.phone_bottleneck else None),
        "vtlp_range": list(args.vtlp_range),
        "level_aug": args.level_aug, "level_aug_db": args.level_aug_db,
        "articulation_weight": args.articulation_weight,
        "articulation_classes": list(args.articulation_classes),
        "context": {"noise": args.context_noise, "drop": args.context_drop, "gain": args.context_gain,
                    "swap": args.context_swap,
                    "self_generated_prob": args.rollout_prob, "self_generated_steps": args.rollout_steps,
                    "self_generated_temperature": args.rollout_temperature,
                    "self_generated_temperature_upper": args.rollout_temperature_upper},
    }
    prev = read_card(args.init) if args.init else {}
    card["training"]["voice_credits"] = voice_credits(sources, (prev.get("training") or {}).get("voice_credits"))
    if args.init:
        card["training"]["init"] = {"from": Path(args.init).name, "weights_sha256": prev.get("weights_sha256")}
        card["training"]["earlier_stages"] = training_stages(prev.get("training"))
        if prev.get("objective") == args.objective and prev.get("defaults"):
            # A fine-tune starts from its parent's tuned sampler settings (re-tune them with
            # scripts/tune_defaults.py): the base defaults would silently change how it is judged,
            # e.g. drop the parent's upper-face temperature and with it the blinks.
            card["defaults"] = dict(card["defaults"], **prev["defaults"])
    extra = None
    basis = ds.basis()
    if basis is not None:
        extra = {"motion.basis": basis[0], "motion.template": basis[1]}
    save_checkpoint(args.out, ema, card, extra)
