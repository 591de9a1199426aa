"""The diffusion process: noise schedule, the few-step sampler and the training objective.

Readable in one sitting, and written once for both array libraries: the
sampler only adds and scales arrays, so the same code runs on numpy arrays
(the torch-free ONNX runtime), on torch tensors at inference (the torch
runtime) and on torch tensors with gradient (training's self-generated
context and unrolled-sampler loss). Nothing here imports torch at module
level.

* **Schedule**: continuous time ``t`` in [0, ``T_MAX``], cosine
  ``alpha_bar(t)`` (Nichol & Dhariwal 2021).
* **Parameterisation**: the head predicts the clean sample x0 (not the
  noise). With two or three sampling steps x0-prediction is stable, and the
  motion and velocity losses apply to its output directly.
* **Sampler**: deterministic DDIM (eta = 0) with classifier-free guidance on
  audio. The *regression* objective is the same network used as a
  deterministic baseline: one pass from x_t = 0 at t = ``T_MAX``.
* **Objective** (:func:`denoising_inputs`, :func:`objective_loss`): the head
  learns x0 from x_t at random noise levels, optionally with extra weight on
  the sampler's first step and on the whole unrolled sampler.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

#: Offset of the cosine schedule: keeps alpha_bar's slope finite at t = 0, so the
#: smallest noise levels are not vanishingly small steps (Nichol & Dhariwal's value).
S = 0.008
#: Largest time used: sqrt(1 - alpha_bar) stays away from 0 and 1/sqrt(alpha_bar) from infinity.
T_MAX = 0.995

X = TypeVar("X")  # a numpy array or a torch tensor
#: denoise(x_t, t) -> predicted x0, t a Python float shared by the batch
Denoiser = Callable[[Any, float], Any]


def _cos(x: Any) -> Any:
    return x.cos() if hasattr(x, "cos") else np.cos(x)


def _clip(x: Any, lo: float, hi: float) -> Any:
    return x.clamp(lo, hi) if hasattr(x, "clamp") else np.clip(x, lo, hi)


def scalar(t: Any) -> float:
    """A loss value for the log (nan on torch's meta device, whose tensors hold no values)."""
    return float("nan") if getattr(getattr(t, "device", None), "type", "") == "meta" else float(t.item())


def alpha_bar(t: Any) -> Any:
    """Signal fraction at time ``t`` (a float, numpy array or torch tensor of times)."""
    f = _cos((t + S) / (1 + S) * (math.pi / 2)) ** 2
    f0 = math.cos(S / (1 + S) * math.pi / 2) ** 2
    return _clip(f / f0, 1e-6, 1.0)


def q_sample(x0: Any, t: Any, noise: Any) -> Any:
    """The noisy sample at times ``t`` (B,) for clean ``x0`` (B, D)."""
    ab = alpha_bar(t)[:, None]
    return ab ** 0.5 * x0 + (1 - ab) ** 0.5 * noise


def ddim_times(steps: int) -> list[float]:
    """Descending time grid ``T_MAX`` → 0 with ``steps`` intervals."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return [T_MAX * (1 - i / steps) for i in range(steps + 1)]


@functools.lru_cache(maxsize=64)
def _alpha_bar_at(t: float) -> float:
    """alpha_bar at one of the sampler's grid times (a handful of values, computed once each)."""
    return float(alpha_bar(t))


def head_times(objective: str, steps: int | Sequence[int]) -> list[float]:
    """The times at which :func:`sample` calls the head, in order (so a runtime can prepare
    the head for all of them at once); with one step count per row, the union of their grids."""
    if objective == "regression":
        return [T_MAX]
    if isinstance(steps, int):
        return ddim_times(steps)[:-1]
    return sorted(frozenset().union(*row_head_times(steps)), reverse=True)


def row_head_times(steps: Sequence[int]) -> tuple[frozenset[float], ...]:
    """Per row (one step count each), the times at which :func:`ddim` reads that row's
    prediction: its own grid. At the other times of the union a denoiser may skip the row."""
    return tuple(frozenset(ddim_times(s)[:-1]) for s in steps)


def _step_to(x: X, x0: X, t_now: float, t_next: float) -> X:
    """The deterministic DDIM move from ``x`` at ``t_now`` to ``t_next`` given the predicted x0."""
    ab, ab_next = _alpha_bar_at(t_now), _alpha_bar_at(t_next)
    eps = (x - ab ** 0.5 * x0) / (1 - ab) ** 0.5
    return ab_next ** 0.5 * x0 + (1 - ab_next) ** 0.5 * eps


def _rows_where(mask: np.ndarray, a: Any, b: Any) -> Any:
    """Row-wise choice: rows of ``a`` where ``mask`` (B,) is true, else rows of ``b``."""
    if isinstance(a, np.ndarray):
        return np.where(mask[:, None], a, b)
    import torch

    return torch.where(torch.as_tensor(mask, device=a.device)[:, None], a, b)


def ddim(denoise: Denoiser, x: X, steps: int | Sequence[int]) -> X:
    """Deterministic DDIM (eta = 0) from ``x`` = x_T with the x0-predictor ``denoise``.

    ``steps`` is one count for every row, or one per row: then the head runs on all rows at
    each time of the union of the rows' grids, and a row moves only at its own times (each
    row's result is its own DDIM run; a few more rows per head call cost next to nothing,
    another call does not). A row's prediction is read only at its own times: at the others a
    denoiser may return anything for it (the int8 ONNX head skips it there)."""
    if isinstance(steps, int):
        times = ddim_times(steps)
        x0 = x
        for t_now, t_next in zip(times[:-1], times[1:]):
            x0 = denoise(x, t_now)
            if t_next <= 0:
                return x0
            x = _step_to(x, x0, t_now, t_next)
        return x0
    rows_in: Any = x
    if len(steps) != rows_in.shape[0]:
        raise ValueError(f"{len(steps)} step counts for {rows_in.shape[0]} rows")
    following = [dict(zip(g[:-1], g[1:])) for g in (ddim_times(s) for s in steps)]
    out = x
    for t_now in head_times("diffusion", steps):
        x0 = denoise(x, t_now)
        for t_next in {f[t_now] for f in following if t_now in f}:
            rows = np.array([f.get(t_now) == t_next for f in following])
            if t_next <= 0:
                out = _rows_where(rows, x0, out)
            else:
                x = _rows_where(rows, _step_to(x, x0, t_now, t_next), x)
    return out


def guided(head: Callable[[Any, float, Any], Any], cond: Any, cond_null: Any, guidance: float) -> Denoiser:
    """Classifier-free guidance: ``null + g * (cond - null)``; g = 1 is the plain conditional
    (and needs no null-audio pass)."""
    if guidance == 1.0:
        return lambda x, t: head(x, t, cond)

    def denoise(x: Any, t: float) -> Any:
        x0_null = head(x, t, cond_null)
        return x0_null + guidance * (head(x, t, cond) - x0_null)

    return denoise


def guided_pair(head: Callable[[Any, float, Any], Any], conds: Any, guidance: float) -> Denoiser:
    """Classifier-free guidance as :func:`guided`, the conditional and null-audio rows in one
    batch: ``conds`` holds the conditions with audio then with null audio (2B rows), so each head
    call reads its weights once for both (the step is memory-bound)."""
    def denoise(x: Any, t: float) -> Any:
        n = x.shape[0]
        both = head(np.concatenate([x, x]) if isinstance(x, np.ndarray) else x.repeat(2, 1), t, conds)
        x0_null = both[n:]
        return x0_null + guidance * (both[:n] - x0_null)

    return denoise


def sample(head: Callable[[Any, float, Any], Any], cond: Any, cond_null: Any, noise: Any,
           objective: str, steps: int | Sequence[int], guidance: float) -> Any:
    """The next chunk's motion (normalised, (B, C*K)) from the condition(s).

    ``noise`` is x_T (already scaled by the temperature); a regressor ignores it
    and predicts from x_t = 0 in one pass."""
    if objective == "regression":
        return head(noise * 0, T_MAX, cond)
    return ddim(guided(head, cond, cond_null, guidance), noise, steps)


def next_chunk(condition: Callable[[Any], Any], head: Callable[[Any, float, Any], Any], noise: Any,
               objective: str, steps: int | Sequence[int], guidance: float, paired: bool = False) -> Any:
    """One autoregressive step: ``condition(keep)`` gives the condition with the audio
    (keep = 1) or with null audio (keep = 0, only needed for guidance), then :func:`sample`.
    The streaming session and training's self-generated context both step through here.

    ``paired``: a guided step asks ``condition((1.0, 0.0))`` for both conditions as one batch
    (2B rows: with audio, then null audio) and runs the head on both rows at once
    (:func:`guided_pair`); the same result to float rounding, about half the memory traffic."""
    if paired and objective == "diffusion" and guidance != 1.0:
        return ddim(guided_pair(head, condition((1.0, 0.0)), guidance), noise, steps)
    cond = condition(1.0)
    cond_null = condition(0.0) if objective == "diffusion" and guidance != 1.0 else None
    return sample(head, cond, cond_null, noise, objective, steps, guidance)


# -- the training objective ------------------------------------------------------------------
def denoising_inputs(x0: Any, objective: str, noise_levels: int, sampler_times: Sequence[float] = ()
                     ) -> tuple[Any, Any, Any]:
    """(x_t, t, x0 repeated) for the denoising loss on torch tensors ``x0`` (N, D).

    Diffusion: ``noise_levels`` uniform times per sample, half of them (if
    ``sampler_times``) moved to the few times the DDIM sampler actually visits,
    jittered by ±0.01. Regression: the sampler's only input, x_t = 0 at T_MAX."""
    import torch

    if objective == "regression":
        return torch.zeros_like(x0), torch.full((x0.shape[0],), T_MAX, device=x0.device), x0
    x0_r = x0.repeat(noise_levels, 1)
    n = x0_r.shape[0]
    dev = x0.device
    t = torch.rand(n, device=dev) * T_MAX
    if sampler_times:
        on_grid = torch.rand(n, device=dev) < 0.5
        pick = torch.tensor(list(sampler_times), device=dev)[torch.randint(len(sampler_times), (n,), device=dev)]
        jitter = (torch.rand(n, device=dev) - 0.5) * 0.02
        t = torch.where(on_grid, (pick + jitter).clamp(0.0, T_MAX), t)
    return q_sample(x0_r, t, torch.randn_like(x0_r)), t, x0_r


def objective_loss(head: Callable[[Any, Any, Any], Any], cond: Any, x0: Any, objective: str,
                   motion_loss: Callable[[Any, int], Any], *, noise_levels: int = 4,
                   sampler_times: Sequence[float] = (), first_step_weight: float = 0.0,
                   sampler_loss_weight: float = 0.0, sampler_loss_steps: int = 2,
                   sampler_loss_temperature: float = 0.1) -> tuple[Any, dict[str, float]]:
    """The loss of the head on clean targets ``x0`` (N, D) given conditions ``cond`` (N, ...).

    ``head(x_t, t_tensor, cond)``; ``motion_loss(pred, reps)`` scores a prediction of
    ``x0`` repeated ``reps`` times (position + velocity, mouth-weighted: the training
    loop's business). Extra terms for a diffusion head:

    * ``first_step_weight``: the sampler's first step at temperature 0 (x_T = 0, t = T),
      where every sample starts; uniform noise levels give it little training.
    * ``sampler_loss_weight``: the whole few-step sampler as shipped, unrolled with
      gradient through every step, so later steps learn to correct the head's own
      first guess (at inference they never see noised ground truth).
    """
    import torch

    x_t, t, _ = denoising_inputs(x0, objective, noise_levels, sampler_times)
    reps = x_t.shape[0] // x0.shape[0]
    loss = motion_loss(head(x_t, t, cond.repeat(reps, *([1] * (cond.dim() - 1)))), reps)
    parts = {"main": scalar(loss)}
    if objective != "diffusion":
        return loss, parts

    def tensor_head(x: Any, t_now: float, c: Any) -> Any:
        return head(x, torch.full((x.shape[0],), t_now, device=x.device), c)

    def sampler_term(steps: int, temperature: float) -> Any:
        start = torch.randn_like(x0) * temperature if temperature > 0 else torch.zeros_like(x0)
        return motion_loss(sample(tensor_head, cond, None, start, objective, steps, 1.0), 1)

    if first_step_weight > 0:
        first = sampler_term(1, 0.0)
        loss = loss + first_step_weight * first
        parts["first"] = scalar(first)
    if sampler_loss_weight > 0:
        unrolled = sampler_term(sampler_loss_steps, sampler_loss_temperature)
        loss = loss + sampler_loss_weight * unrolled
        parts["sampler"] = scalar(unrolled)
    return loss, parts
