"""Audio augmentation so a model trained on clean TTS transfers to real microphones.

Each operation fires with its own probability, all randomness comes from the
caller's generator (deterministic with the corpus seed), the length of the
signal never changes, and the motion target is never touched: a noisy room does
not change how the lips moved.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.signal import fftconvolve, lfilter, resample_poly

SR = 16000


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f noise by shaping white noise in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


def brown_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rumble (1/f²): HVAC, traffic, wind-ish low-frequency noise."""
    x = lfilter([1.0], [1.0, -0.995], rng.standard_normal(n))
    return x - x.mean()


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = noise[: len(x)]
    if len(noise) < len(x):
        noise = np.resize(noise, len(x))
    scale = _rms(x) / (_rms(noise) * 10 ** (snr_db / 20))
    return x + noise * scale


def room_ir(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Synthetic room impulse response: direct path, sparse early reflections, exponential tail."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = lfilter([1.0], [1.0, -rng.uniform(0.3, 0.85)], tail)  # walls absorb highs
    ir = tail * rng.uniform(0.1, 0.5)
    for _ in range(int(rng.integers(3, 9))):
        k = int(rng.uniform(0.002, 0.03) * sr)
        if k < n:
            ir[k] += rng.uniform(-0.6, 0.6)
    ir[0] = 1.0
    return ir / np.sqrt(np.sum(ir ** 2))


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    wet = fftconvolve(x, room_ir(rng))[: len(x)]
    mix = rng.uniform(0.3, 1.0)
    return (1 - mix) * x + mix * wet * (_rms(x) / max(_rms(wet), 1e-9))


def _biquad(kind: str, f0: float, gain_db: float, q: float, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook peaking / shelving filters."""
    a_ = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / sr
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
    else:
        sa = 2 * math.sqrt(a_) * alpha
        if kind == "low":
            b = [a_ * ((a_ + 1) - (a_ - 1) * cw + sa), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw),
                 a_ * ((a_ + 1) - (a_ - 1) * cw - sa)]
            a = [(a_ + 1) + (a_ - 1) * cw + sa, -2 * ((a_ - 1) + (a_ + 1) * cw), (a_ + 1) + (a_ - 1) * cw - sa]
        else:
            b = [a_ * ((a_ + 1) + (a_ - 1) * cw + sa), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
                 a_ * ((a_ + 1) + (a_ - 1) * cw - sa)]
            a = [(a_ + 1) - (a_ - 1) * cw + sa, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sa]
    return np.array(b) / a[0], np.array(a) / a[0]


def equalize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1–3 random shelves/peaks: cheap mics, phone speakers, boomy rooms."""
    y = x
    for _ in range(int(rng.integers(1, 4))):
        kind = str(rng.choice(["low", "high", "peak"]))
        f0 = {"low": rng.uniform(80, 400), "high": rng.uniform(2000, 6000),
              "peak": math.exp(rng.uniform(math.log(200), math.log(5000)))}[kind]
        b, a = _biquad(kind, f0, rng.uniform(-12, 10), rng.uniform(0.5, 2.0) if kind == "peak" else 0.707)
        y = lfilter(b, a, y)
    return y


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resampling round trip via a lower or higher rate (telephone / 44.1 kHz chains)."""
    mid = int(rng.choice([8000, 11025, 22050, 44100]))
    g = math.gcd(SR, mid)
    y = resample_poly(resample_poly(x, mid // g, SR // g), SR // g, mid // g)
    y = y[: len(x)]
    return np.pad(y, (0, len(x) - len(y)))


def clip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild clipping: drive into a hard or soft limiter."""
    peak = float(np.max(np.abs(x))) + 1e-9
    thr = peak * rng.uniform(0.3, 0.8)
    if rng.random() < 0.5:
        return np.clip(x, -thr, thr)
    return thr * np.tanh(x / thr)


def augment(x: np.ndarray, rng: np.random.Generator, p: float = 0.5,
            babble: Callable[[int], np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """Randomly degrade ``x`` (16 kHz float32). Returns the new signal and the list of ops applied.

    ``p`` scales every operation's probability (0 = never augment). ``babble(n)``
    returns other speech to mix in as background talkers.
    """
    y = x.astype(np.float64)
    ops: list[str] = []
    if p <= 0 or y.size == 0:
        return x.astype(np.float32), ops
    if rng.random() < 0.5 * p:
        y = reverb(y, rng)
        ops.append("reverb")
    if rng.random() < 0.5 * p:
        y = equalize(y, rng)
        ops.append("eq")
    if rng.random() < 0.3 * p:
        y = band_limit(y, rng)
        ops.append("resample")
    if rng.random() < 0.6 * p:
        kind = str(rng.choice(["white", "pink", "brown", "babble"] if babble else ["white", "pink", "brown"]))
        n = len(y)
        noise = {"white": lambda: white_noise(rng, n), "pink": lambda: pink_noise(rng, n),
                 "brown": lambda: brown_noise(rng, n),
                 "babble": lambda: babble(n) if babble else white_noise(rng, n)}[kind]()
        snr = rng.uniform(5, 35) if kind != "babble" else rng.uniform(5, 25)
        y = add_noise(y, noise, snr)
        ops.append(f"{kind}_noise@{snr:.0f}dB")
    if rng.random() < 0.1 * p:
        y = clip(y, rng)
        ops.append("clip")
    # gain: quiet and loud recordings (after the effects; capped so the peak stays <= 1)
    if rng.random() < 0.7 * p:
        target = 10 ** (rng.uniform(-40, -12) / 20)  # RMS from whisper-quiet to hot
        y = y * (target / _rms(y))
        ops.append(f"gain@{20 * math.log10(target):.0f}dBFS")
    peak = float(np.max(np.abs(y)))
    if peak > 1.0:
        y = y / peak
    return y.astype(np.float32), ops
