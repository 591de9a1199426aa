"""Which frames of a take show it best (no bpy): one per stretch of time, where the mouth is busiest."""

from __future__ import annotations

from typing import Sequence

import numpy as np

MOUTH_PREFIXES = ("jaw", "mouth", "viseme", "fcl_mth")


def expressive_frames(values: np.ndarray, keys: Sequence[str], count: int) -> list[int]:
    """``count`` frame indices into ``values`` (frames × keys), in order, one per equal stretch of
    the take: the frame whose mouth keys are furthest from rest there (open vowels, closures,
    rounded lips), so a contact sheet shows the range of shapes rather than random in-betweens."""
    values = np.asarray(values, np.float64)
    n = len(values)
    if n == 0 or count <= 0:
        return []
    mouth = [j for j, k in enumerate(keys) if k.lower().startswith(MOUTH_PREFIXES)] or list(range(len(keys)))
    score = np.abs(values[:, mouth]).sum(1)
    edges = np.linspace(0, n, min(count, n) + 1).round().astype(int)
    return [int(a + np.argmax(score[a:b])) for a, b in zip(edges[:-1], edges[1:]) if b > a]
