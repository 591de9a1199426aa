"""Continuous-time cosine diffusion schedule and a few-step DDIM sampler.

The model predicts the clean sample x0 (not the noise): with few sampling
steps x0-prediction is stable, and motion/velocity losses apply to it directly.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

_S = 0.008
T_MAX = 0.995  # keeps sqrt(1 - alpha_bar) away from 1/0 at the ends


def alpha_bar(t: torch.Tensor) -> torch.Tensor:
    f = torch.cos((t + _S) / (1 + _S) * math.pi / 2) ** 2
    f0 = math.cos(_S / (1 + _S) * math.pi / 2) ** 2
    return (f / f0).clamp(1e-6, 1.0)


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Noisy sample at time t (B,) for clean x0 (B, D)."""
    ab = alpha_bar(t).unsqueeze(-1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def ddim_times(steps: int) -> list[float]:
    """Descending time grid T_MAX → 0 with ``steps`` intervals."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    return [T_MAX * (1 - i / steps) for i in range(steps + 1)]


def ddim_sample(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                steps: int) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from ``noise`` using x0-predictor ``denoise(x_t, t)``."""
    x = noise
    times = ddim_times(steps)
    b = x.shape[0]
    x0 = x
    for t_now, t_next in zip(times[:-1], times[1:]):
        t = torch.full((b,), t_now)
        x0 = denoise(x, t)
        if t_next <= 0:
            return x0
        ab = alpha_bar(t).unsqueeze(-1)
        ab_next = alpha_bar(torch.full((b,), t_next)).unsqueeze(-1)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
    return x0
