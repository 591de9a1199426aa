"""Frame features for aligning one voice to another (numpy + scipy only, no torch).

Why mean-normalised log-mel energies and their deltas (MFCC-like, without the last DCT): the
DTW aligner matches espeak-ng's synthesis to a human recording, two very different voices and
channels. Subtracting each band's mean over the utterance removes most of the fixed channel and
vocal-tract colouring; a log floor relative to the loudest band keeps digital silence and a
recording's noise floor alike; deltas add the spectral *change*, which is where phone
boundaries are. Measured on 44 English prompts against pocketsphinx's boundaries: 20 ms median
difference with these features, 22-25 ms with cepstra (c1..c12, cepstral mean removed), and
far worse (~180 ms) once every dimension is also scaled to unit variance, which amplifies the
dimensions that differ most between a formant synthesiser and a person.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import rfft

HOP_S = 0.010
WIN_S = 0.025


def mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters on the HTK mel scale: (n_mels, n_fft // 2 + 1)."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    pts = 700.0 * (10 ** (np.linspace(mel(np.array(fmin)), mel(np.array(fmax)), n_mels + 2) / 2595.0) - 1)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down))


def frames(x: np.ndarray, sr: int, hop_s: float = HOP_S, win_s: float = WIN_S) -> np.ndarray:
    """Centred frames: frame ``k`` is centred on ``k * hop`` (zero padded at the ends)."""
    hop, win = int(round(hop_s * sr)), int(round(win_s * sr))
    n = max(1, int(np.ceil(len(x) / hop)))
    pad = np.concatenate([np.zeros(win // 2), x.astype(np.float64), np.zeros(win + hop)])
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return pad[idx]


def log_mel(x: np.ndarray, sr: int, n_mels: int = 32, fmax: float = 7600.0,
            floor_db: float = 60.0) -> np.ndarray:
    """(T, n_mels) log mel energies, floored ``floor_db`` below the utterance's loudest value."""
    fr = frames(np.append(x[:1], x[1:] - 0.97 * x[:-1]) if len(x) else x, sr)
    fr = fr * np.hamming(fr.shape[1])[None, :]
    n_fft = 1 << (fr.shape[1] - 1).bit_length()
    power = np.abs(rfft(fr, n_fft, axis=1)) ** 2
    mel = power @ mel_filters(sr, n_fft, n_mels, 60.0, min(fmax, sr / 2 - 100)).T
    top = float(mel.max()) if mel.size else 1.0
    return np.log(np.maximum(mel, max(top, 1e-20) * 10 ** (-floor_db / 10)))


def deltas(c: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ±``width`` frames (edges repeated)."""
    pad = np.pad(c, ((width, width), (0, 0)), mode="edge")
    num = sum(k * (pad[width + k: len(c) + width + k] - pad[width - k: len(c) + width - k])
              for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def align_features(x: np.ndarray, sr: int, n_mels: int = 24, fmax: float = 7600.0) -> np.ndarray:
    """(T, 2 * n_mels): log mel energies minus their utterance mean, and twice their deltas."""
    f = log_mel(x, sr, n_mels=n_mels, fmax=fmax)
    f = f - f.mean(0)
    return np.concatenate([f, 2.0 * deltas(f)], axis=1)


def frame_db(x: np.ndarray, sr: int) -> np.ndarray:
    """Per-frame RMS level in dB (same frames as :func:`align_features`)."""
    fr = frames(x, sr)
    return 10 * np.log10(np.var(fr, axis=1) + 1e-12)


def speech_span(x: np.ndarray, sr: int, below_db: float = 35.0, above_floor_db: float = 8.0
                ) -> tuple[float, float]:
    """(start s, end s) of the frames within ``below_db`` of the loudest frame and at least
    ``above_floor_db`` above the noise floor (the 10th percentile frame: telephone-band
    recordings have a floor within 35 dB of their peak)."""
    db = frame_db(x, sr)
    if db.size == 0:
        return 0.0, 0.0
    thr = min(max(db.max() - below_db, np.percentile(db, 10) + above_floor_db), db.max() - 3.0)
    on = np.flatnonzero(db > thr)
    return float(on[0] * HOP_S), float(min(len(x) / sr, (on[-1] + 1) * HOP_S))


def median_f0(clips: list[np.ndarray], sr: int) -> float:
    """Median f0 (Hz) over the voiced frames of several clips (0.0 if none is voiced)."""
    from ..articulation import f0_track

    voiced = [f[f > 0] for f in (f0_track(c.astype(np.float64), sr)[1] for c in clips)]
    allf = np.concatenate(voiced) if voiced else np.zeros(0)
    return float(np.median(allf)) if allf.size else 0.0


def sex_from_f0(f0: float) -> str:
    """Adult speech: male median f0 mostly 85-155 Hz, female 165-255 Hz; the split at 165 Hz."""
    return "F" if f0 >= 165.0 else "M"
