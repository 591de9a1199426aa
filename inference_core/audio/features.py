"""Causal log-mel features, computed identically offline and in a stream.

Mel frame ``k`` covers the window of samples ``[(k+1)*hop - win, (k+1)*hop)``,
that is, it ends where hop ``k`` ends: a frame is available as soon as its
last sample has arrived (no centring, hence no hidden look-ahead). Samples
before the stream start are zeros, so frames with a negative index are a
constant "silence floor" vector that the streaming session can preload.

Two implementations of the same features: :class:`LogMel` in numpy (the
streaming session, torch-free so it runs in Blender's own Python) and
:class:`inference_core.audio.torch_features.TorchLogMel` (batched, for
training). They agree within 1e-4 (tested); the filterbank and the window are
computed once, here, for both.
"""

from __future__ import annotations

import math

import numpy as np

from ..model.config import ModelConfig

#: The shipped model's mel geometry, the defaults of :class:`LogMel`; the one place these
#: numbers are written is :class:`ModelConfig` (a session passes its card's values).
_GEOMETRY = ModelConfig()
SAMPLE_RATE = _GEOMETRY.sample_rate
HOP = _GEOMETRY.hop  # 10 ms
WIN = _GEOMETRY.win_length  # 25 ms
N_FFT = _GEOMETRY.n_fft
N_MELS = _GEOMETRY.n_mels
LOG_FLOOR = 1e-5
# Fixed affine normalisation of log-mel values (keeps features near unit range
# without data-dependent statistics, so streaming needs no running stats).
_LOG_SHIFT = 4.0
_LOG_SCALE = 4.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = 40.0, fmax: float | None = None) -> np.ndarray:
    """Triangular HTK-style mel filters, area-normalised: (n_mels, n_fft//2+1)."""
    fmax = fmax or sample_rate / 2
    mels = np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2)
    hz = _mel_to_hz(mels)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, freqs.size), dtype=np.float64)
    for i in range(n_mels):
        lo, centre, hi = hz[i], hz[i + 1], hz[i + 2]
        up = (freqs - lo) / max(centre - lo, 1e-9)
        down = (hi - freqs) / max(hi - centre, 1e-9)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
        fb[i] *= 2.0 / max(hi - lo, 1e-9)
    return fb.astype(np.float32)


def hann_window(win: int) -> np.ndarray:
    """Periodic Hann window (as ``torch.hann_window(win, periodic=True)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)


def normalise_log_mel(mel_power: np.ndarray) -> np.ndarray:
    return ((np.log(np.maximum(mel_power, LOG_FLOOR)) + _LOG_SHIFT) / _LOG_SCALE).astype(np.float32)


class LogMel:
    """Causal log-mel of a sample stream (numpy)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop: int = HOP, win: int = WIN,
                 n_fft: int = N_FFT, n_mels: int = N_MELS):
        self.sample_rate, self.hop, self.win, self.n_fft, self.n_mels = sample_rate, hop, win, n_fft, n_mels
        self.window = hann_window(win).astype(np.float64)
        fb = mel_filterbank(sample_rate, n_fft, n_mels).astype(np.float64)
        self.fb_t = fb.T.copy()  # (bins, n_mels)
        # Each triangle covers a few bins (500 of the 80 x 257 entries are not zero): summed as
        # bands, the filterbank is 8 KB instead of a 164 KB dense matrix read on every step.
        spans = [np.flatnonzero(row) for row in fb]
        self._bands: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if all(len(sp) and sp[-1] - sp[0] + 1 == len(sp) for sp in spans):  # contiguous, none empty
            self._bands = (np.concatenate(spans), np.concatenate([row[sp] for row, sp in zip(fb, spans)]),
                           np.cumsum([0] + [len(sp) for sp in spans[:-1]]))
        self._window_index: dict[int, np.ndarray] = {}

    def frames_from_windows(self, windows: np.ndarray) -> np.ndarray:
        """(n, win) sample windows -> (n, n_mels) normalised log-mel."""
        spec = np.fft.rfft(windows * self.window, n=self.n_fft)
        power = spec.real ** 2 + spec.imag ** 2
        if self._bands is None:
            return normalise_log_mel(power @ self.fb_t)
        bins, weights, starts = self._bands
        return normalise_log_mel(np.add.reduceat(power[:, bins] * weights, starts, axis=1))

    def __call__(self, samples: np.ndarray, first_frame: int, n_frames: int,
                 samples_offset: int = 0) -> np.ndarray:
        """Log-mel frames ``first_frame .. first_frame+n_frames-1`` of a stream.

        ``samples`` holds stream samples starting at absolute index
        ``samples_offset``. Samples outside the buffer read as zeros: before
        the stream start that is the truth; past the end it is the flush
        padding. Returns (n_frames, n_mels) float32.
        """
        start = (first_frame + 1) * self.hop - self.win - samples_offset
        end = (first_frame + n_frames) * self.hop - samples_offset
        seg = samples[max(start, 0):max(end, 0)].astype(np.float64)
        left = max(0, -start)
        right = (end - start) - left - seg.size
        if left or right:
            seg = np.concatenate([np.zeros(left), seg, np.zeros(right)])
        index = self._window_index.get(n_frames)
        if index is None:  # each window's sample indices; kept for the few counts a stream asks for
            index = np.arange(n_frames)[:, None] * self.hop + np.arange(self.win)
            if len(self._window_index) < 8:
                self._window_index[n_frames] = index
        return self.frames_from_windows(seg[index])

    def floor_frame(self) -> np.ndarray:
        """Feature vector of all-zero input (the state before a stream starts)."""
        return self.frames_from_windows(np.zeros((1, self.win)))[0]


def rms_db(samples: np.ndarray) -> float:
    """Level in dBFS (−inf for digital silence); used to warn about silent input."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf
