"""Training: ``python -m inference_core train --data DIR --out MODEL.safetensors``.

The autoregressive diffusion objective: for a random step-aligned segment of
an utterance, the audio encoder runs once over the segment; for each target
step the condition predictor sees the past W frames and the diffusion head
learns to denoise the next C frames (x0-prediction) at several noise levels
per condition. Losses: motion, velocity (including the seam to the previous
frame), extra weight on mouth channels.

The past frames are what makes a stream drift, so training does not only
show the ground truth there:

* **self-generated context** (``--rollout-prob``): for part of the batch the
  model first generates ``--rollout-steps`` steps itself (no gradient, the
  inference sampler), and the targets after them are learned from that
  context, so the model learns to steer back to the audio from its own
  errors rather than copy them;
* **context corruption**: noise of random strength, a random gain and
  offset per channel (so the amplitude/style of the context is not trusted
  blindly — copying it lets the style random-walk over minutes), and
  sometimes the whole context dropped;
* **swapped context** (``--context-swap``): another segment's past frames, as
  after a change of speaker, so a static style seen in the context (a smile)
  is not held for the rest of a long stream.

A fine-tune (``--init``) that teaches the mouth new voices also moves the upper
face, and its blinks fade; ``--upper-distill W`` holds every head output outside
the mouth to the frozen starting model's on the same inputs (weight W), and with
``--upper-distill-steps N`` also along the sampler's own path (see :func:`path_hold`).

``--objective regression`` trains the same network as a deterministic
regressor (no noise input), the baseline the evaluation compares against.
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import random
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data.format import Dataset
from ..data.phonemes import CLASSES
from ..model.config import ModelConfig
from ..model.diffusion import ddim, next_chunk, objective_loss, scalar
from ..model.network import StreamingTalker
from . import distributed
from .card import save_trained
from .data import PHONE_INDEX, VTLP_RANGE, TrainingData, prepared_mel, warp_range
from .finetune import arch_overrides, init_from, load_phone_read, param_groups, parse_lr_mult, with_feature_norm
from .probe import PhoneProbe, phone_loss
from ..shared.channels import MOUTH_CHANNELS

#: phone classes whose frames ``--articulation-weight`` weighs more by default
ARTICULATION_CLASSES = ("bilabial", "open")


@dataclass
class LossOptions:
    """What the objective and its context treatments do (the ``train`` flags of the same names)."""
    objective: str = "diffusion"
    noise_levels: int = 4
    mouth_weight: float = 2.0
    velocity_weight: float = 2.0
    context_noise: float = 0.5
    context_drop: float = 0.1
    context_gain: float = 0.0
    context_swap: float = 0.0
    audio_drop: float = 0.1
    style_drop: float = 0.3
    rollout_prob: float = 0.0
    rollout_steps: int = 10
    rollout_ddim: int = 2
    rollout_guidance: float = 2.0
    rollout_temperature: float = 0.3
    rollout_temperature_upper: float | None = None
    sampler_times: list[float] = field(default_factory=list)
    first_step_weight: float = 0.0
    sampler_loss_weight: float = 0.0
    sampler_loss_steps: int = 2
    sampler_loss_temperature: float = 0.1
    phone_weight: float = 0.0
    articulation_weight: float = 1.0
    articulation_classes: tuple[str, ...] = ARTICULATION_CLASSES
    upper_distill: float = 0.0
    upper_distill_steps: int = 0
    upper_distill_temperature: float = 0.75
    raw_audio_drop: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "LossOptions":
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def target_windows(audio: torch.Tensor, x: torch.Tensor, x_ctx: torch.Tensor, ctx_steps: int, C: int, W: int,
                   frames: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One window per target step j of each segment: audio tokens [3j-W, 3j+C), the past W
    frames (from ``x_ctx``, maybe self-generated) and the next C target frames (from ``x``,
    or from ``frames`` (B, S*C, ...), any per-frame quantity lined up with the motion)."""
    n_tgt = audio.shape[1] // C - ctx_steps
    starts = [(ctx_steps + j) * C - W for j in range(n_tgt)]
    a_win = torch.stack([audio[:, s:s + W + C] for s in starts], 1).flatten(0, 1)
    past = torch.stack([x_ctx[:, s:s + W] for s in starts], 1).flatten(0, 1)
    y = x if frames is None else frames
    target = torch.stack([y[:, s + W:s + W + C] for s in starts], 1).flatten(0, 1)  # (N, C, K)
    return a_win, past, target


def articulation_frames(phones: torch.Tensor, classes: tuple[str, ...] = ARTICULATION_CLASSES) -> torch.Tensor:
    """1.0 where a frame's phone is in one of ``classes`` (default: a lip closure /p b m/ or an
    open vowel), else 0.0.

    These are the poses the eye judges lip sync by, and the ones a mean-seeking loss gives
    up first: where the audio leaves the closure's timing uncertain, half-closed lips cost
    less than a closure a frame off. Extra weight on them buys sharper extremes (the rounded
    /u w o/ and spread /i e/ vowels are the same kind of extreme, for the lips' width)."""
    marked = [PHONE_INDEX[p] for p in sorted(frozenset().union(*(CLASSES[c] for c in classes)))]
    return torch.isin(phones, torch.tensor(marked, device=phones.device)).float()


def corrupt_context(model: StreamingTalker, past: torch.Tensor, opt: LossOptions) -> torch.Tensor:
    """The context the predictor sees: a random per-channel gain and offset, noise of random
    strength, and sometimes nothing at all (the rest pose), so it is not trusted blindly."""
    n, _, K = past.shape
    dev = past.device
    if opt.context_gain > 0:
        gain = 1 + opt.context_gain * (2 * torch.rand(n, 1, K, device=dev) - 1)
        offset = 0.5 * opt.context_gain * torch.randn(n, 1, K, device=dev)
        past = past * gain + offset
    sigma = torch.rand(n, 1, 1, device=dev) * opt.context_noise
    past = past + sigma * torch.randn_like(past)
    drop = (torch.rand(n, 1, 1, device=dev) < opt.context_drop).float()
    rest = model.normalise(torch.zeros(K, device=dev))
    return past * (1 - drop) + rest * drop


def training_loss(model: StreamingTalker, mel: torch.Tensor, motion: torch.Tensor, style: torch.Tensor,
                  ctx_steps: int, objective: str, mouth_mask: torch.Tensor, opt: LossOptions,
                  phones: torch.Tensor | None = None, probe: PhoneProbe | None = None,
                  parent: StreamingTalker | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss on one batch of segments: encode the audio once, build a window per target
    step, treat the contexts, then the model's objective (:func:`~inference_core.model.diffusion.objective_loss`),
    plus the auxiliary phone loss when a probe and per-frame ``phones`` are given, and with a
    frozen ``parent`` (the fine-tune's starting point) and ``opt.upper_distill`` > 0, the squared
    distance of every head output outside the mouth from the parent's on the same inputs: the
    upper face (blinks) kept as the parent drew it while the mouth learns."""
    cfg = model.cfg
    C, W, K = cfg.chunk_frames, cfg.context_frames, cfg.num_channels
    dev = mel.device
    raw_keep = (torch.rand(mel.shape[0], device=dev) >= opt.raw_audio_drop).float() \
        if opt.raw_audio_drop > 0 and cfg.phone_bottleneck else None
    audio, logits = model.audio.encode(mel, raw_keep)  # (B, S*C, d), the bottleneck's (B, S*C, P)
    x = model.normalise(motion)                      # (B, S*C, K)
    x_ctx = x
    if opt.rollout_prob > 0 and opt.rollout_steps > 0:
        rows = torch.rand(x.shape[0], device=dev) < opt.rollout_prob
        if rows.any():
            x_ctx = x.clone()
            x_ctx[rows] = rollout(model, audio[rows].detach(), x[rows], style[rows], ctx_steps - opt.rollout_steps,
                                  opt.rollout_steps, opt, mouth_mask)
    a_win, past, target = target_windows(audio, x, x_ctx, ctx_steps, C, W)
    w = (1.0 + (opt.mouth_weight - 1.0) * mouth_mask).expand(target.shape)  # (N, C, K)
    if opt.articulation_weight != 1.0 and phones is not None:
        _, _, marked = target_windows(audio, x, x, ctx_steps, C, W, frames=articulation_frames(phones, opt.articulation_classes)[..., None])
        w = w * (1.0 + (opt.articulation_weight - 1.0) * marked * mouth_mask)
    n = past.shape[0]
    styles = style.repeat_interleave(n // style.shape[0])
    past = swap_contexts(past, opt.context_swap)
    past_in = corrupt_context(model, past, opt)
    # Style dropout → generic style 0 (what unseen voices use); audio dropout for CFG.
    styles = torch.where(torch.rand(n, device=dev) < opt.style_drop, torch.zeros_like(styles), styles)
    keep = (torch.rand(n, device=dev) >= opt.audio_drop).float() if objective == "diffusion" \
        else torch.ones(n, device=dev)
    cond = model.predictor(a_win, past_in, model.style_vector(styles), keep)   # (N, C, d)
    prev = past[:, -1:]  # the frame the model saw last (its own, if rolled out)
    parts: dict[str, float] = {}

    def motion_loss(pred: torch.Tensor, reps: int) -> torch.Tensor:
        pos, vel = _motion_loss(pred.reshape(-1, C, K), target.repeat(reps, 1, 1), prev.repeat(reps, 1, 1),
                                w.repeat(reps, 1, 1))
        parts.setdefault("pos", scalar(pos))
        parts.setdefault("vel", scalar(vel))
        return pos + opt.velocity_weight * vel

    head: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = model.head
    distill: list[torch.Tensor] = []
    path: torch.Tensor | None = None
    if parent is not None and opt.upper_distill > 0:
        with torch.no_grad():
            p_win, _, _ = target_windows(parent.audio(mel), x, x, ctx_steps, C, W)
            p_cond = parent.predictor(p_win, past_in, parent.style_vector(styles), keep)
        upper = (1.0 - mouth_mask).repeat(C)  # (C*K,): the head's flattened (C, K) layout

        def held_head(x_t: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            out = model.head(x_t, t, c)
            with torch.no_grad():
                ref = parent.head(x_t, t, p_cond.repeat(x_t.shape[0] // p_cond.shape[0], 1, 1))
            distill.append(((out - ref) ** 2 * upper).mean())
            return out

        head = held_head

        if opt.upper_distill_steps > 0:
            path = path_hold(model, parent, cond, p_cond, mouth_mask, opt)
    loss, obj_parts = objective_loss(
        head, cond, target.flatten(1), objective, motion_loss, noise_levels=opt.noise_levels,
        sampler_times=opt.sampler_times, first_step_weight=opt.first_step_weight,
        sampler_loss_weight=opt.sampler_loss_weight, sampler_loss_steps=opt.sampler_loss_steps,
        sampler_loss_temperature=opt.sampler_loss_temperature)
    obj_parts.pop("main", None)
    if distill:
        kept = torch.stack(distill).mean()
        loss = loss + opt.upper_distill * kept
        obj_parts["upper_distill"] = scalar(kept)
    if path is not None:
        loss = loss + opt.upper_distill * path
        obj_parts["upper_path"] = scalar(path)
    # the bottleneck's own read-out is the probe when the model has one
    heard_logits = logits if logits is not None else probe.out(audio) if probe is not None else None
    if heard_logits is not None and phones is not None and opt.phone_weight > 0:
        heard = phone_loss(heard_logits, phones)
        if (phones != -100).any():  # a batch of utterances without phone timings adds nothing
            loss = loss + opt.phone_weight * heard
            obj_parts["phone"] = scalar(heard)
    return loss, {"loss": scalar(loss), **parts, **obj_parts}


def swap_contexts(past: torch.Tensor, prob: float) -> torch.Tensor:
    """``past`` (N, W, K) with each window, with probability ``prob``, replaced by another
    window of the batch (another voice, other words).

    In a stream that changes speaker the context holds the previous speaker's motion;
    a model that only ever saw its own speaker's context keeps that speaker's static
    style (a smile, say) for ever, since nothing in the audio says otherwise."""
    n = past.shape[0]
    if n < 2 or prob <= 0:
        return past
    swap = torch.rand(n, device=past.device) < prob
    donor = (torch.arange(n, device=past.device) + torch.randint(1, n, (n,), device=past.device)) % n
    return torch.where(swap[:, None, None], past[donor], past)


def _motion_loss(pred: torch.Tensor, tgt: torch.Tensor, prev: torch.Tensor, w: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted position and velocity MSE of (N, C, K) motion; velocity includes the seam
    from ``prev`` (N, 1, K), the last context frame."""
    vel_p = torch.diff(torch.cat([prev, pred], 1), dim=1)
    vel_t = torch.diff(torch.cat([prev, tgt], 1), dim=1)
    return ((pred - tgt) ** 2 * w).mean(), ((vel_p - vel_t) ** 2 * w).mean()


def region_noise_scale(mouth_mask: torch.Tensor, mouth: float, upper: float, C: int) -> torch.Tensor:
    """Per-element noise scale (C*K,) of a chunk, as the session's ``noise_scale`` draws it: ``mouth``
    on the mouth channels, ``upper`` on the rest (the rollout's and the path hold's noise)."""
    return (mouth * mouth_mask + upper * (1.0 - mouth_mask)).repeat(C)


def path_hold(model: StreamingTalker, parent: StreamingTalker, cond: torch.Tensor, p_cond: torch.Tensor,
              mouth_mask: torch.Tensor, opt: LossOptions) -> torch.Tensor:
    """The upper face held to the parent along the sampler's own path: ``opt.upper_distill_steps``
    DDIM steps from noise scaled per region as the session's upper-face chain scales it (the mouth
    at ``rollout_temperature``, the rest at ``upper_distill_temperature``), moved by the parent's
    predictions; the mean squared distance of the model's predictions outside the mouth from the
    parent's at every point visited. The hold on noised ground truth alone left stop 31's Y2 with
    blinks 67 % complete on the dev speakers (its parent's 82 %): at inference the head only ever
    sees its own path, drawn hot for the eyes."""
    C, K = model.cfg.chunk_frames, model.cfg.num_channels
    n = cond.shape[0]
    upper = (1.0 - mouth_mask).repeat(C)  # (C*K,)
    scale = region_noise_scale(mouth_mask, opt.rollout_temperature, opt.upper_distill_temperature, C)
    terms: list[torch.Tensor] = []

    def denoise(x_t: torch.Tensor, t: float) -> torch.Tensor:
        times = torch.full((n,), t, device=x_t.device)
        with torch.no_grad():
            ref = parent.head(x_t, times, p_cond)
        terms.append(((model.head(x_t, times, cond) - ref) ** 2 * upper).mean())
        return ref

    ddim(denoise, torch.randn(n, C * K, device=cond.device) * scale, opt.upper_distill_steps)
    return torch.stack(terms).mean()


@torch.no_grad()
def rollout(model: StreamingTalker, audio: torch.Tensor, x: torch.Tensor, style: torch.Tensor,
            first_step: int, n_steps: int, opt: LossOptions, mouth_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Motion ``x`` (B, S*C, K, normalised) with steps ``first_step .. +n_steps`` replaced by
    the model's own samples, generated one step at a time with the streaming session's
    sampler (:func:`~inference_core.model.diffusion.next_chunk`) from the ground truth before them.

    The noise is scaled per region as the session scales it (``noise_scale``): the mouth at
    ``rollout_temperature``, the rest at ``rollout_temperature_upper``. (Measured on the dev
    speakers: no gain for the mouth at upper-face temperature 1.5, 0.69 closure with it or
    without; half of that cost is the head's joint denoising, which the session's two chains
    remove instead. The bundled recipe leaves it unset.)"""
    cfg = model.cfg
    C, W, K = cfg.chunk_frames, cfg.context_frames, cfg.num_channels
    out = x.clone()
    b = x.shape[0]
    style_vec = model.style_vector(style)
    upper = opt.rollout_temperature if opt.rollout_temperature_upper is None else opt.rollout_temperature_upper
    mouth = torch.ones(K, device=x.device) if mouth_mask is None else mouth_mask.to(x.device)
    scale = region_noise_scale(mouth, opt.rollout_temperature, upper, C)

    def head(x_t: torch.Tensor, t: float, cond: torch.Tensor) -> torch.Tensor:
        return model.head(x_t, torch.full((b,), t, device=x.device), cond)

    for step in range(first_step, first_step + n_steps):
        s = step * C
        a, past = audio[:, s - W:s + C], out[:, s - W:s]
        noise = torch.randn(b, C * K, device=x.device) * scale
        x0 = next_chunk(lambda keep: model.predictor(a, past, style_vec, torch.full((b,), keep, device=x.device)),
                        head, noise, opt.objective, opt.rollout_ddim, opt.rollout_guidance)
        out[:, s:s + C] = x0.reshape(b, C, K)
    return out


def _phone_classes(text: str) -> tuple[str, ...]:
    names = tuple(c for c in text.split(",") if c)
    unknown = [c for c in names if c not in CLASSES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown phone class {unknown or text!r}; known: {', '.join(CLASSES)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m inference_core train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+",
                   help="dataset folder(s) (inference_core.data.format); several are mixed by --data-weight")
    p.add_argument("--data-weight", default=None, metavar="W1,W2",
                   help="how often each --data folder is sampled, relative (default: equally)")
    p.add_argument("--upper-distill", type=float, default=0.0,
                   help="with --init: weight of the head's outputs outside the mouth staying the parent's")
    p.add_argument("--upper-distill-steps", type=int, default=0, metavar="N",
                   help="with --upper-distill: also hold the upper face along an N-step sampler path (0: off)")
    p.add_argument("--upper-distill-temperature", type=float, default=0.75, metavar="T",
                   help="the noise scale on the upper face of that path (the session's temperature_upper)")
    p.add_argument("--phone-weight", type=float, default=0.0,
                   help="auxiliary loss: the phone class read linearly from the audio features")
    p.add_argument("--articulation-classes", type=_phone_classes,
                   default=ARTICULATION_CLASSES, metavar="C1,C2",
                   help=f"phone classes --articulation-weight applies to (of {', '.join(CLASSES)}; "
                        f"default {','.join(ARTICULATION_CLASSES)})")
    p.add_argument("--articulation-weight", type=float, default=1.0,
                   help="loss weight on the mouth at lip closures (/p b m/) and open vowels, relative (1 = none)")
    p.add_argument("--raw-audio-drop", type=float, default=0.0, metavar="P",
                   help="with a phonetic bottleneck (--arch '{\"phone_bottleneck\": 43}'): the share of "
                        "segments whose raw audio features are dropped, leaving the bottleneck alone")
    p.add_argument("--phone-read-init", default=None, metavar="STATE",
                   help="start a grown bottleneck's read-out from a trained phone probe (a train or "
                        "pretrain_audio_branch.py state)")
    p.add_argument("--feature-aug", type=float, default=0.0,
                   help="share of segments whose log-mel is perturbed (VTLP, band limit, tilt, level)")
    p.add_argument("--vtlp-range", type=warp_range, default=VTLP_RANGE, metavar="LO,HI",
                   help="--feature-aug's vocal-tract-length warp factors (default %(default)s)")
    p.add_argument("--level-aug", type=float, default=0.0, metavar="P",
                   help="share of segments whose level is ridden by a slow random gain curve (meant to stop "
                        "the mouth following loudness; it did not, see docs/model.md; default 0: off)")
    p.add_argument("--level-aug-db", type=float, default=6.0, metavar="DB",
                   help="--level-aug's depth: each knot up to this many dB up or down (default %(default)s)")
    p.add_argument("--feature-norm", type=int, default=None, metavar="FRAMES",
                   help="causal per-speaker log-mel normalisation over this many mel frames (150 = 1.5 s; "
                        "0 = off); its prior is the training data's speech mean. Default: the --init "
                        "model's setting, else off")
    p.add_argument("--out", required=True, help="output checkpoint (.safetensors)")
    p.add_argument("--objective", choices=["diffusion", "regression"], default="diffusion")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32, help="segments per iteration")
    p.add_argument("--tgt-steps", type=int, default=8, help="target steps per segment")
    p.add_argument("--noise-levels", type=int, default=4, help="diffusion times per condition")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--context-noise", type=float, default=0.5)
    p.add_argument("--context-drop", type=float, default=0.1)
    p.add_argument("--context-swap", type=float, default=0.0,
                   help="share of windows whose context comes from another segment (speaker changes)")
    p.add_argument("--context-gain", type=float, default=0.0,
                   help="random per-channel gain 1±g and offset on the context (normalised units)")
    p.add_argument("--rollout-prob", type=float, default=0.0,
                   help="share of segments whose context the model generates itself first")
    p.add_argument("--rollout-steps", type=int, default=10, help="steps generated per rollout")
    p.add_argument("--rollout-ddim", type=int, default=2, help="DDIM steps in the rollout")
    p.add_argument("--rollout-guidance", type=float, default=2.0)
    p.add_argument("--rollout-temperature", type=float, default=0.3)
    p.add_argument("--rollout-temperature-upper", type=float, default=None,
                   help="rollout noise scale on the upper face (default: --rollout-temperature), as the "
                        "session's temperature_upper")
    p.add_argument("--sampler-steps", default="", metavar="N,M",
                   help="also train half the noise levels at the times an N- (or M-) step DDIM visits")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (fine-tuning; same architecture, or the "
                        "same with an audio branch added by --arch '{\"audio_branch_dim\": N}')")
    p.add_argument("--lr-mult", type=parse_lr_mult, action="append", default=[], metavar="PREFIX=FACTOR",
                   help="learning rate x FACTOR for parameters whose name starts with PREFIX (the first "
                        "matching one counts; repeatable), e.g. audio.branch=10")
    p.add_argument("--first-step-weight", type=float, default=0.0,
                   help="extra loss on the head's prediction at x_T = 0, t = T (the DDIM sampler's first "
                        "step at temperature 0), relative to the diffusion loss")
    p.add_argument("--sampler-loss-weight", type=float, default=0.0,
                   help="extra loss on the output of the whole DDIM sampler, unrolled with gradient "
                        "(--sampler-loss-steps steps from noise at --sampler-loss-temperature)")
    p.add_argument("--sampler-loss-steps", type=int, default=2)
    p.add_argument("--sampler-loss-temperature", type=float, default=0.1)
    p.add_argument("--audio-drop", type=float, default=0.1)
    p.add_argument("--style-drop", type=float, default=0.3)
    p.add_argument("--mouth-weight", type=float, default=2.0)
    p.add_argument("--velocity-weight", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from OUT.state if present")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50, help="iterations between loss-log entries")
    p.add_argument("--max-utts", type=int, default=None, help="use at most N utterances (smoke runs)")
    p.add_argument("--name", default=None, help="model name in the card")
    p.add_argument("--arch", default=None, help="JSON of ModelConfig overrides (e.g. smaller for tests)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from ..model.diffusion import ddim_times

    steps = [int(n) for n in args.sampler_steps.split(",") if n.strip()]
    args.sampler_times = sorted({round(t, 6) for n in steps for t in ddim_times(n)[:-1]})
    return args


def _frozen_copy(model: StreamingTalker) -> StreamingTalker:
    """A copy of ``model`` in eval mode that no gradient reaches (the EMA, the distillation parent)."""
    frozen = copy.deepcopy(model).eval()
    for p_ in frozen.parameters():
        p_.requires_grad_(False)
    return frozen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world, args.device = distributed.setup(args.device)  # under torchrun: this process's rank and device
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    sources = [Dataset(d) for d in args.data]
    ds = sources[0]
    for other in sources[1:]:
        if (other.channels, other.fps, other.sample_rate) != (ds.channels, ds.fps, ds.sample_rate):
            print(f"error: {other.root} has other channels or rates than {ds.root}", file=sys.stderr)
            return 2
    weights = [float(w) for w in args.data_weight.split(",")] if args.data_weight else [1.0] * len(sources)
    if len(weights) != len(sources):
        print("error: --data-weight needs one weight per --data folder", file=sys.stderr)
        return 2
    args.weights = weights
    if args.upper_distill > 0 and not args.init:
        print("error: --upper-distill holds the upper face to the starting model: it needs --init", file=sys.stderr)
        return 2
    if args.upper_distill_steps > 0 and args.upper_distill <= 0:
        print("error: --upper-distill-steps needs --upper-distill (its weight)", file=sys.stderr)
        return 2
    speakers = sorted({s for d in sources for s in d.speakers("train")})
    overrides = arch_overrides(args)
    cfg = ModelConfig(fps=int(round(ds.fps)), sample_rate=ds.sample_rate, num_channels=len(ds.channels),
                      objective=args.objective,
                      num_styles=len(speakers) + 1, **overrides)
    data = TrainingData(sources, cfg, "train", speakers, args.max_utts, weights)
    cfg = data.cfg = with_feature_norm(cfg, args, data)
    model = StreamingTalker(cfg)
    mean, std = data.motion_stats()
    if ds.channel_space != "arkit":
        mean = torch.zeros_like(mean)  # vertex-space coefficients: the rest pose is 0
    model.motion_mean.copy_(mean)
    model.motion_std.copy_(std)
    if args.init:
        problem = init_from(model, args.init, speakers)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    model.to(args.device)
    # the starting weights (--upper-distill needs --init), taken before a resumed state replaces them
    parent = _frozen_copy(model) if args.upper_distill > 0 else None
    if cfg.phone_bottleneck and cfg.phone_bottleneck != len(PHONE_INDEX):
        print(f"error: the phonetic bottleneck must read the {len(PHONE_INDEX)} phone classes "
              f"(got {cfg.phone_bottleneck})", file=sys.stderr)
        return 2
    for flag, given in (("--phone-read-init", args.phone_read_init), ("--raw-audio-drop", args.raw_audio_drop)):
        if given and not cfg.phone_bottleneck:
            print(f"error: {flag} needs a phonetic bottleneck", file=sys.stderr)
            return 2
    if args.phone_read_init:
        load_phone_read(model, args.phone_read_init)
    probe = PhoneProbe(cfg.model_dim, len(PHONE_INDEX)).to(args.device) \
        if args.phone_weight > 0 and not cfg.phone_bottleneck else None
    ema = _frozen_copy(model)
    probe_params = list(probe.parameters()) if probe is not None else []
    params = list(model.parameters()) + probe_params
    opt = torch.optim.AdamW(param_groups(model, probe_params, args.lr_mult), lr=args.lr, weight_decay=0.01)
    mouth_mask = torch.tensor([1.0 if c in MOUTH_CHANNELS else 0.0 for c in ds.channels])
    if ds.channel_space != "arkit":
        mouth_mask = torch.ones(len(ds.channels))
    state_path = Path(str(args.out) + ".state")
    start_it = 0
    if args.resume and state_path.exists():
        st = torch.load(state_path, weights_only=True, map_location=args.device)
        try:
            model.load_state_dict(st["model"])
            ema.load_state_dict(st["ema"])
            opt.load_state_dict(st["opt"])
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0]
            print(f"error: --resume: {state_path} is another run's state (another architecture or data: "
                  f"{first}); give another --out or delete it", file=sys.stderr)
            return 2
        if probe is not None and "probe" in st:
            probe.load_state_dict(st["probe"])
        start_it = int(st["iter"])
        rng = np.random.default_rng(args.seed + start_it)
    ctx_steps = math.ceil(cfg.context_frames / cfg.chunk_frames)
    roll_steps = args.rollout_steps if args.rollout_prob > 0 else 0
    loss_opt = LossOptions.from_args(args)
    log: list[dict[str, float]] = []
    t0 = time.time()
    from tqdm import tqdm

    bar = tqdm(range(start_it, args.iters), initial=start_it, total=args.iters,
               disable=args.quiet or not world.is_main, desc="train", dynamic_ncols=True)
    loss_of = distributed.loss_function(world, model, probe, functools.partial(training_loss, parent=parent))
    avg = None
    for it in bar:
        lr = args.lr * min(1.0, (it + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * it / args.iters))
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        mel, motion, style, phones = data.batch(rng, args.batch, ctx_steps + roll_steps, args.tgt_steps)
        mel = prepared_mel(mel, rng, cfg, args.feature_aug, args.vtlp_range, args.level_aug, args.level_aug_db)
        mel, motion, style, phones = distributed.shard(world, mel, motion, style, phones)  # this rank's rows
        model.train()
        loss, parts = loss_of(mel.to(args.device), motion.to(args.device), style.to(args.device),
                              ctx_steps + roll_steps, args.objective, mouth_mask.to(args.device), loss_opt,
                              phones.to(args.device))
        parts = distributed.mean_parts(world, parts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + it) / (10 + it))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        avg = parts["loss"] if avg is None else 0.98 * avg + 0.02 * parts["loss"]
        bar.set_postfix(loss=f"{avg:.4f}", lr=f"{lr:.1e}")
        if it % args.log_every == 0:
            log.append({"iter": it, "lr": lr, **parts})
        if world.is_main and ((it + 1) % args.save_every == 0 or it + 1 == args.iters):
            save_trained(args, sources, cfg, ema, speakers, log, it + 1, time.time() - t0)
            state = {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "iter": it + 1}
            if probe is not None:
                state["probe"] = probe.state_dict()
            torch.save(state, state_path)
    distributed.cleanup(world)
    if start_it >= args.iters and world.is_main:  # nothing left: rewrite the checkpoint (card) from the state
        prev: dict[str, Any] = {}
        if Path(args.out).exists():
            from ..model.checkpoint import ModelFileError, read_card

            try:
                prev = read_card(args.out).get("training") or {}
            except ModelFileError:
                prev = {}
        save_trained(args, sources, cfg, ema, speakers, list(prev.get("loss_log_tail") or []), args.iters,
                     float(prev.get("seconds") or 0.0))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
