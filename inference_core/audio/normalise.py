"""Causal per-speaker normalisation of log-mel: each frame minus the running mean of recent speech.

Why: the encoder hears a new voice's spectral envelope (microphone, room, vocal tract,
level) as part of its phonetics. Subtracting the mean of the last ``frames`` speech frames
and adding back a fixed prior (the training data's speech mean) removes that envelope
causally, so a stream and an offline pass see the same features and a new session starts
exactly where the model was trained (no speech yet: the prior, features unchanged).

Frame ``k`` (raw log-mel ``f``, frame energy ``e`` = mean over bands):

* window: frames ``j`` in ``(k - frames, k]``; threshold ``thr_k = max(max_j e_j - GATE, FLOOR_E)``
* weight ``w_kj = clip((e_j - thr_k) / RAMP + 0.5, 0, 1)`` (digital silence weighs exactly 0)
* ``mu_k = (sum_j w_kj f_j + PRIOR_WEIGHT * prior) / (sum_j w_kj + PRIOR_WEIGHT)``
* output ``f_k - mu_k + prior``.

One numpy twin (streaming, torch-free) and one torch twin (training batches), tested equal.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

GATE = 1.0            # speech: within 1.0 (4 nats, ~17 dB) of the loudest frame in the window
FLOOR_E = -1.38       # and above the digital-silence floor (-1.88) by 0.5
RAMP = 0.25           # width of the weight's linear ramp around the threshold
PRIOR_WEIGHT = 30.0   # the prior counts as 30 speech frames (0.3 s) in every window


def _weights_np(e_win: np.ndarray) -> np.ndarray:
    """(T, N) energies of each frame's window, oldest first -> (T, N) weights."""
    thr = np.maximum(e_win.max(axis=1, keepdims=True) - GATE, FLOOR_E)
    return np.clip((e_win - thr) / RAMP + 0.5, 0.0, 1.0)


def normalise_np(history_and_new: np.ndarray, n_new: int, prior: np.ndarray, frames: int) -> np.ndarray:
    """Normalised last ``n_new`` rows of (frames - 1 + n_new, n_mels) raw log-mel (float32)."""
    f = np.asarray(history_and_new, np.float64)
    assert f.shape[0] == frames - 1 + n_new, (f.shape, frames, n_new)
    win = np.lib.stride_tricks.sliding_window_view(f, frames, axis=0)  # (n_new, n_mels, N)
    w = _weights_np(win.mean(axis=1))                                      # (n_new, N)
    p = np.asarray(prior, np.float64)
    mu = (np.einsum("tj,tmj->tm", w, win) + PRIOR_WEIGHT * p) / (w.sum(1, keepdims=True) + PRIOR_WEIGHT)
    return (f[frames - 1:] - mu + p).astype(np.float32)


class RunningNorm:
    """Streaming state of :func:`normalise_np`: keeps the last ``frames - 1`` raw frames.

    Frames before the stream are the silence floor (weight 0), as in training."""

    def __init__(self, prior: Sequence[float], frames: int, floor_frame: np.ndarray):
        self.prior = np.asarray(prior, np.float64)
        self.frames = int(frames)
        self._hist = np.repeat(np.asarray(floor_frame, np.float32)[None], self.frames - 1, 0)

    def __call__(self, new: np.ndarray) -> np.ndarray:
        if len(new) == 0:
            return np.asarray(new, np.float32)
        both = np.concatenate([self._hist, np.asarray(new, np.float32)])
        out = normalise_np(both, len(new), self.prior, self.frames)
        self._hist = both[len(both) - (self.frames - 1):]
        return out


def normalise_torch(mel, prior, frames: int):  # type: ignore[no-untyped-def]
    """Torch twin for training: (B, frames - 1 + T, n_mels) raw -> (B, T, n_mels) normalised."""
    import torch

    b, t_ext, n = mel.shape
    t = t_ext - frames + 1
    e = mel.mean(2)                                                   # (B, T_ext)
    e_win = e.unfold(1, frames, 1)                                    # (B, T, N)
    thr = torch.clamp_min(e_win.amax(2, keepdim=True) - GATE, FLOOR_E)
    w = ((e_win - thr) / RAMP + 0.5).clamp(0.0, 1.0)
    acc = mel.new_zeros(b, t, n)
    for j in range(frames):  # frames small ops beat a (B, T, N, n_mels) window tensor
        acc += w[:, :, j:j + 1] * mel[:, j:j + t]
    p = torch.as_tensor(prior, dtype=mel.dtype, device=mel.device)
    mu = (acc + PRIOR_WEIGHT * p) / (w.sum(2, keepdim=True) + PRIOR_WEIGHT)
    return mel[:, frames - 1:] - mu + p


def frame_speech_weights(energy: np.ndarray, frames: int) -> np.ndarray:
    """Each frame's weight in the window that ends at it (for the training data's speech mean)."""
    e = np.concatenate([np.full(frames - 1, -np.inf), np.asarray(energy, np.float64)])
    return _weights_np(np.lib.stride_tricks.sliding_window_view(e, frames))[:, -1]
