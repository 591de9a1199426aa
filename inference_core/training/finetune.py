"""Starting a fine-tune (``train --init``): which parent weights a model takes, the feature
normalisation it keeps, and per-parameter learning rates (``--lr-mult``).

A fine-tune may change what does not reshape the parent's tensors (the objective, the look-ahead,
the feature normalisation), grow the style table, and add an audio branch
(``audio_branch_dim``) to a parent without one: the branch's projection starts at zero, so
the grown model computes exactly what its parent does until training moves it. A phonetic
bottleneck (``phone_bottleneck``) may be grown the same way (its embedding starts at zero; its
read-out may start from a trained phone probe, ``--phone-read-init``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import torch

from ..model.config import ModelConfig
from ..model.network import StreamingTalker
from .data import TrainingData

#: Parameter-name prefix of the audio branch (``AudioEncoder.branch``, ``branch_norm``, ``branch_out``).
BRANCH_PREFIX = "audio.branch"
#: ... and of the phonetic bottleneck (``AudioEncoder.phone_read``, ``phone_embed``).
BOTTLENECK_PREFIX = "audio.phone_"
#: architecture fields a fine-tune inherits from its parent unless ``--arch`` names them
GROWN_FIELDS = ("audio_branch_dim", "phone_bottleneck")


def arch_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--arch``'s ModelConfig overrides; a fine-tune keeps its parent's audio branch and
    phonetic bottleneck unless ``--arch`` names them (the rest of the architecture must match the
    parent's anyway)."""
    overrides: dict[str, Any] = json.loads(args.arch) if args.arch else {}
    if args.init:
        from ..model.checkpoint import read_card
        from ..model.config import config_from_card

        parent = config_from_card(read_card(args.init))
        for key in GROWN_FIELDS:
            overrides.setdefault(key, getattr(parent, key))
    return overrides


def init_from(model: StreamingTalker, path: str, speakers: list[str]) -> str | None:
    """Load a checkpoint's weights into ``model``; None, or why it does not fit.

    The look-ahead may change (the conv stack has the same shapes; its output is read
    later), and the style table may grow: speakers the checkpoint knew keep their rows (matched by
    name), new ones start from its generic style, so a model can be fine-tuned on data
    with further speakers. A parent without an audio branch may gain one (it keeps its fresh,
    zero-projected weights), and so may a parent without a phonetic bottleneck; neither is ever
    removed or resized."""
    from ..model.checkpoint import load_checkpoint

    init, card, _ = load_checkpoint(path)
    cfg = model.cfg
    grows_branch = cfg.audio_branch_dim > 0 and init.cfg.audio_branch_dim == 0
    grows_bottleneck = cfg.phone_bottleneck > 0 and init.cfg.phone_bottleneck == 0
    # the objective, the style table, the look-ahead (which output frame the same conv
    # stack is read at), the feature normalisation and a new branch may change; nothing else may
    if dataclasses.replace(init.cfg, objective=cfg.objective, num_styles=cfg.num_styles,
                           lookahead_mel=cfg.lookahead_mel, feature_norm_frames=cfg.feature_norm_frames,
                           feature_norm_prior=cfg.feature_norm_prior,
                           audio_branch_dim=cfg.audio_branch_dim if grows_branch else init.cfg.audio_branch_dim,
                           phone_bottleneck=cfg.phone_bottleneck if grows_bottleneck else init.cfg.phone_bottleneck
                           ) != cfg:
        return f"{path} has another architecture than this dataset needs ({init.cfg} vs {cfg})"
    state = init.state_dict()
    key = "predictor.style.weight"
    old_rows, old_names = state[key], list(card.get("styles") or [])
    table = old_rows[0:1].repeat(cfg.num_styles, 1).clone()
    for i, name in enumerate(["generic"] + speakers):
        if name in old_names and old_names.index(name) < len(old_rows):
            table[i] = old_rows[old_names.index(name)]
    state[key] = table
    grown = tuple(p for p, grows in ((BRANCH_PREFIX, grows_branch), (BOTTLENECK_PREFIX, grows_bottleneck)) if grows)
    if grown:  # the new parts keep their fresh weights
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(grown)})
    model.load_state_dict(state)  # its normalisation stats too: same data space
    return None


def load_phone_read(model: StreamingTalker, path: str) -> None:
    """The bottleneck's read-out from a trained phone probe over the same features (a train or
    ``scripts/pretrain_audio_branch.py`` state); ValueError when the state holds none."""
    from .phonetic import read_out_tensors

    weight, bias = read_out_tensors(path)
    model.audio.phone_read.load_state_dict({"weight": torch.from_numpy(weight), "bias": torch.from_numpy(bias)})


def with_feature_norm(cfg: ModelConfig, args: argparse.Namespace, data: TrainingData) -> ModelConfig:
    """``cfg`` with the feature normalisation asked for: a fine-tune keeps its parent's (window and
    prior) unless ``--feature-norm`` says otherwise; a new window takes this data's speech mean."""
    frames, prior = args.feature_norm, None
    if args.init:
        from ..model.checkpoint import read_card
        from ..model.config import config_from_card

        parent = config_from_card(read_card(args.init))
        if parent.feature_norm_frames and frames in (None, parent.feature_norm_frames):
            frames, prior = parent.feature_norm_frames, parent.feature_norm_prior
    if not frames:
        return dataclasses.replace(cfg, feature_norm_frames=0, feature_norm_prior=())
    prior = prior or tuple(float(v) for v in data.speech_mean(frames))
    return dataclasses.replace(cfg, feature_norm_frames=int(frames), feature_norm_prior=prior)


def parse_lr_mult(text: str) -> tuple[str, float]:
    """``PREFIX=FACTOR`` (argparse type of ``--lr-mult``)."""
    prefix, sep, factor = text.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = -1.0
    if not sep or not prefix.strip() or not value > 0:
        raise argparse.ArgumentTypeError(f"expected PREFIX=FACTOR with a factor > 0 (got {text!r})")
    return prefix.strip(), value


def param_groups(model: StreamingTalker, extra: list[torch.nn.Parameter],
                 lr_mult: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """The optimiser's groups: each parameter's learning-rate factor is that of the first
    ``(prefix, factor)`` its name starts with, else 1 (``extra``: the phone probe's, factor 1).
    A group's ``lr_mult`` scales the scheduled rate every iteration."""
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        factor = next((f for prefix, f in lr_mult if name.startswith(prefix)), 1.0)
        groups.setdefault(factor, []).append(p)
    groups.setdefault(1.0, []).extend(extra)
    return [{"params": ps, "lr_mult": f} for f, ps in sorted(groups.items()) if ps]
