"""Is decoded audio usable to drive an animation? (numpy only, no bpy)."""

from __future__ import annotations

import numpy as np

#: Peak amplitude below which audio counts as silent (about −80 dBFS).
SILENCE_PEAK = 1e-4


class AudioError(ValueError):
    """The audio cannot drive an animation; the message is for the user."""


def validate_pcm(pcm: np.ndarray, sample_rate: int, label: str) -> np.ndarray:
    """Check decoded samples: not empty, finite, not silent, at least 0.1 s."""
    pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
    if pcm.size == 0:
        raise AudioError(f"{label} contains no audio samples.")
    if not np.all(np.isfinite(pcm)):
        raise AudioError(f"{label} contains invalid (NaN/inf) samples.")
    if float(np.max(np.abs(pcm))) < SILENCE_PEAK:
        raise AudioError(f"{label} is silent: there is no speech to animate.")
    if pcm.size < sample_rate // 10:
        raise AudioError(f"{label} is shorter than 0.1 s.")
    return pcm
