"""Phoneme timeline + audio → ARKit-52 facial motion (pure numpy, deterministic given ``rng``).

How the mouth is built, and why:

1. **Soft articulators** (jaw, lip rounding, spreading, lip opening, tongue) are
   blended from per-phoneme targets with Cohen–Massaro style *dominance
   functions*: each phone dominates its own core and decays exponentially
   outside it — longer before (anticipation) than after (carry-over) — and
   weak-lipped consonants (/k g h t d/) borrow their lip shape from the
   neighbouring vowels. No box-car switching.
2. They are then smoothed by **critically damped second-order dynamics**
   (two cascaded first-order lags, exact discretisation) whose bandwidth
   depends on the articulator (the jaw is slower than the lips) and on the
   speaking rate; targets are read ahead by the filter's lag so motion does not
   trail the sound.
3. **Hard constraints** — bilabial closure (/p b m/) and labiodental contact
   (/f v/) — are separate gestures whose shape *reaches* 1 across each phone's
   core whatever the rate, so closures really close. In ARKit semantics
   ``mouthClose`` closes the lips *relative to* ``jawOpen`` (on a rigged head,
   ``jawOpen = x, mouthClose = x`` is sealed lips), so a closure sets
   ``mouthClose`` to the current jaw opening and cancels the lip-opening channels.
4. Opening scales with the loudness of each vowel relative to the utterance
   (a stress/emphasis proxy), and with a per-voice style.

Around the mouth: Poisson blinks with an asymmetric (fast close, slow open)
lid shape, saccadic gaze with fixations and drift, brow raises on pitch accents
(from an autocorrelation f0 track), sentence onsets and question endings,
smile-linked cheek/eye squint, and slow low-amplitude noise on the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..shared.channels import ARKIT_52
from .format import frames_for
from .phonemes import VOWELS

CH = {name: i for i, name in enumerate(ARKIT_52)}
GRID_HZ = 200.0  # internal time grid of the soft articulators

# Soft articulator parameters, in this order.
P_JAW, P_FUNNEL, P_PUCKER, P_SPREAD, P_LOWER, P_UPPER, P_TONGUE = range(7)
N_PARAMS = 7

#           jaw  funnel pucker spread lower  upper  tongue
_T: dict[str, tuple[float, ...]] = {
    "aa": (0.55, 0.05, 0.00, 0.05, 0.40, 0.25, 0.0),
    "ae": (0.45, 0.00, 0.00, 0.35, 0.40, 0.35, 0.0),
    "ah": (0.40, 0.05, 0.00, 0.10, 0.30, 0.20, 0.0),
    "ao": (0.45, 0.40, 0.15, 0.00, 0.25, 0.15, 0.0),
    "ax": (0.22, 0.02, 0.00, 0.05, 0.12, 0.08, 0.0),
    "eh": (0.32, 0.00, 0.00, 0.40, 0.28, 0.22, 0.0),
    "er": (0.20, 0.35, 0.25, 0.00, 0.10, 0.10, 0.0),
    "ih": (0.20, 0.00, 0.00, 0.45, 0.15, 0.15, 0.0),
    "iy": (0.12, 0.00, 0.00, 0.65, 0.12, 0.15, 0.0),
    "uh": (0.20, 0.35, 0.40, 0.00, 0.08, 0.05, 0.0),
    "uw": (0.12, 0.45, 0.75, 0.00, 0.05, 0.05, 0.0),
    "w": (0.08, 0.35, 0.85, 0.00, 0.02, 0.02, 0.0),
    "y": (0.10, 0.00, 0.00, 0.50, 0.08, 0.10, 0.0),
    "r": (0.14, 0.35, 0.35, 0.00, 0.05, 0.08, 0.0),
    "l": (0.20, 0.00, 0.00, 0.10, 0.12, 0.10, 0.06),
    "sh": (0.10, 0.55, 0.25, 0.00, 0.10, 0.25, 0.0),
    "zh": (0.10, 0.55, 0.25, 0.00, 0.10, 0.25, 0.0),
    "ch": (0.10, 0.50, 0.25, 0.00, 0.08, 0.20, 0.0),
    "jh": (0.10, 0.50, 0.25, 0.00, 0.08, 0.20, 0.0),
    "s": (0.06, 0.00, 0.00, 0.35, 0.05, 0.10, 0.0),
    "z": (0.06, 0.00, 0.00, 0.35, 0.05, 0.10, 0.0),
    "t": (0.12, 0.00, 0.00, 0.15, 0.08, 0.08, 0.0),
    "d": (0.12, 0.00, 0.00, 0.15, 0.08, 0.08, 0.0),
    "n": (0.12, 0.00, 0.00, 0.15, 0.06, 0.06, 0.0),
    "dx": (0.15, 0.00, 0.00, 0.10, 0.10, 0.08, 0.0),
    "th": (0.12, 0.00, 0.00, 0.10, 0.10, 0.05, 0.35),
    "dh": (0.12, 0.00, 0.00, 0.10, 0.10, 0.05, 0.30),
    "k": (0.18, 0.00, 0.00, 0.05, 0.10, 0.05, 0.0),
    "g": (0.18, 0.00, 0.00, 0.05, 0.10, 0.05, 0.0),
    "ng": (0.16, 0.00, 0.00, 0.05, 0.08, 0.05, 0.0),
    "hh": (0.25, 0.00, 0.00, 0.05, 0.15, 0.10, 0.0),
    "q": (0.10, 0.00, 0.00, 0.00, 0.02, 0.02, 0.0),
    "f": (0.06, 0.00, 0.00, 0.05, 0.00, 0.10, 0.0),
    "v": (0.06, 0.00, 0.00, 0.05, 0.00, 0.10, 0.0),
    "p": (0.05, 0.00, 0.00, 0.00, 0.00, 0.00, 0.0),
    "b": (0.05, 0.00, 0.00, 0.00, 0.00, 0.00, 0.0),
    "m": (0.05, 0.00, 0.00, 0.00, 0.00, 0.00, 0.0),
    "sil": (0.02, 0.00, 0.00, 0.00, 0.00, 0.00, 0.0),
}
# Diphthongs glide from the first target to the second across the phone.
_DIPH = {"ay": ("aa", "iy"), "aw": ("aa", "uw"), "ey": ("eh", "iy"), "ow": ("ao", "uw"), "oy": ("ao", "iy")}

#       dominance of: jaw, lips (funnel..upper), tongue
_DOM: dict[str, tuple[float, float, float]] = {
    "w": (0.5, 1.0, 0.3), "r": (0.4, 0.7, 0.3), "y": (0.4, 0.7, 0.3),
    "sh": (0.6, 0.9, 0.3), "zh": (0.6, 0.9, 0.3), "ch": (0.6, 0.9, 0.3), "jh": (0.6, 0.9, 0.3),
    "s": (0.8, 0.4, 0.3), "z": (0.8, 0.4, 0.3), "f": (1.2, 0.5, 0.2), "v": (1.2, 0.5, 0.2),
    "p": (1.6, 0.6, 0.2), "b": (1.6, 0.6, 0.2), "m": (1.6, 0.6, 0.2),
    "th": (0.6, 0.3, 1.0), "dh": (0.6, 0.3, 1.0),
    "t": (0.5, 0.2, 0.5), "d": (0.5, 0.2, 0.5), "n": (0.5, 0.2, 0.5), "dx": (0.4, 0.15, 0.5),
    "l": (0.5, 0.2, 0.8), "k": (0.4, 0.15, 0.3), "g": (0.4, 0.15, 0.3), "ng": (0.4, 0.15, 0.3),
    "hh": (0.15, 0.1, 0.1), "q": (0.15, 0.1, 0.1), "sil": (0.5, 0.5, 0.5),
}
_VOWEL_DOM = (1.0, 1.0, 0.4)
BILABIAL = {"p", "b", "m"}
LABIODENTAL = {"f", "v"}


@dataclass
class Style:
    """A speaker's facial speaking style; drawn once per voice so voices differ consistently."""

    strength: float = 1.0  # overall articulation gain
    jaw_gain: float = 1.0
    round_gain: float = 1.0
    spread_gain: float = 1.0
    smile_bias: float = 0.05
    frown_bias: float = 0.0
    brow_activity: float = 0.5  # 0 = still brows, 1 = very expressive
    blink_rate: float = 17.0  # blinks per minute
    press: float = 0.35  # lip press during bilabial closure
    rest_close: float = 0.8  # how firmly lips close in pauses
    speed: float = 1.0  # articulator bandwidth multiplier
    asym: float = 0.0  # left/right asymmetry
    cheek_puff: float = 0.0  # cheek puffing on /p b/
    eyelid: float = 0.05  # resting eyeBlink (lid droop)
    gaze_spread: float = 0.12

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Style":
        return cls(
            strength=float(rng.uniform(0.75, 1.25)), jaw_gain=float(rng.uniform(0.8, 1.25)),
            round_gain=float(rng.uniform(0.8, 1.2)), spread_gain=float(rng.uniform(0.8, 1.2)),
            smile_bias=float(rng.choice([0.0, 0.03, 0.08, 0.15, 0.25])),
            frown_bias=float(rng.choice([0.0, 0.0, 0.05, 0.1])),
            brow_activity=float(rng.uniform(0.15, 1.0)), blink_rate=float(rng.uniform(12, 24)),
            press=float(rng.uniform(0.2, 0.5)), rest_close=float(rng.uniform(0.6, 1.0)),
            speed=float(rng.uniform(0.85, 1.2)), asym=float(rng.uniform(-0.08, 0.08)),
            cheek_puff=float(rng.choice([0.0, 0.0, 0.05, 0.12])), eyelid=float(rng.uniform(0.0, 0.12)),
            gaze_spread=float(rng.uniform(0.06, 0.18)),
        )

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------- helpers

def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def critically_damped(u: np.ndarray, omega: float, dt: float) -> np.ndarray:
    """Response of x'' + 2ωx' + ω²x = ω²u (unit gain, no overshoot), along axis 0.

    Exact for piecewise-constant input: the cascade of two first-order lags with
    time constant 1/ω. Starts at rest on the first input value.
    """
    from scipy.signal import lfilter

    a = math.exp(-omega * dt)
    b, den = [1 - a], [1, -a]
    y, _ = lfilter(b, den, u, axis=0, zi=a * u[:1])
    y, _ = lfilter(b, den, y, axis=0, zi=a * y[:1])
    return y


def _bump(t: np.ndarray, a: float, b: float, rise: float, fall: float) -> np.ndarray:
    """1 on [a, b], smoothstep ramps of length ``rise`` before and ``fall`` after."""
    up = _smoothstep((t - (a - rise)) / max(rise, 1e-4))
    down = _smoothstep(((b + fall) - t) / max(fall, 1e-4))
    return np.minimum(up, down)


def _ou(rng: np.random.Generator, n: int, dt: float, tau: float, sigma: float) -> np.ndarray:
    """Ornstein–Uhlenbeck noise: slow, bounded wandering (stationary std ``sigma``)."""
    a = math.exp(-dt / tau)
    w = rng.standard_normal(n) * sigma * math.sqrt(1 - a * a)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sigma
    for i in range(1, n):
        x[i] = a * x[i - 1] + w[i]
    return x


def phone_loudness_db(audio: np.ndarray, sr: int, phones: Sequence[tuple[str, float, float]]) -> np.ndarray:
    out = np.empty(len(phones))
    for i, (_, s, e) in enumerate(phones):
        seg = audio[int(s * sr): max(int(e * sr), int(s * sr) + 1)].astype(np.float64)
        out[i] = 20 * math.log10(math.sqrt(float(np.mean(seg ** 2))) + 1e-5) if seg.size else -100.0
    return out


def f0_track(audio: np.ndarray, sr: int, hop: float = 0.01, win: float = 0.04,
             fmin: float = 60.0, fmax: float = 450.0) -> tuple[np.ndarray, np.ndarray]:
    """Coarse f0 (Hz, 0 = unvoiced) every ``hop`` s by normalised autocorrelation. Returns (times, f0)."""
    n_win, n_hop = int(win * sr), int(hop * sr)
    if len(audio) < n_win:
        return np.zeros(0), np.zeros(0)
    n_frames = 1 + (len(audio) - n_win) // n_hop
    idx = np.arange(n_win)[None, :] + n_hop * np.arange(n_frames)[:, None]
    fr = audio[idx].astype(np.float64)
    fr = (fr - fr.mean(1, keepdims=True)) * np.hanning(n_win)
    nfft = 1 << (2 * n_win - 1).bit_length()
    spec = np.fft.rfft(fr, nfft)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft)[:, :n_win]
    energy = ac[:, :1] + 1e-12
    lo, hi = int(sr / fmax), min(int(sr / fmin), n_win - 1)
    seg = ac[:, lo:hi] / energy
    k = np.argmax(seg, axis=1)
    peak = seg[np.arange(n_frames), k]
    rms = np.sqrt(energy[:, 0] / n_win)
    voiced = (peak > 0.45) & (rms > 1e-3)
    f0 = np.where(voiced, sr / (k + lo), 0.0)
    times = (np.arange(n_frames) * n_hop + n_win / 2) / sr
    return times, f0


# ----------------------------------------------------------------------------- mouth

def _targets_at(label: str, frac: np.ndarray) -> np.ndarray:
    """Target vectors for a phone at relative positions ``frac`` in [0,1] (diphthongs glide)."""
    if label in _DIPH:
        a, b = (np.array(_T[x]) for x in _DIPH[label])
        w = _smoothstep((frac - 0.2) / 0.6)[:, None]
        return a[None] * (1 - w) + b[None] * w
    tgt = np.array(_T.get(label, _T["ax"]))
    return np.broadcast_to(tgt, (len(frac), N_PARAMS))


def jaw_target(label: str) -> float:
    """The rules' jaw opening for a phone (a diphthong's averaged over its glide): what the
    runtime's phonetic gain weighs by the phone posteriors it reads from the audio."""
    return float(_targets_at(label, np.linspace(0.0, 1.0, 21))[:, P_JAW].mean())


def soft_articulators(phones: Sequence[tuple[str, float, float]], gain: np.ndarray, t: np.ndarray,
                      style: Style, rate_factor: float) -> np.ndarray:
    """Dominance-blended targets (before dynamics) at times ``t`` → (len(t), N_PARAMS)."""
    num = np.zeros((len(t), N_PARAMS))
    den = np.zeros((len(t), N_PARAMS))
    tau_ant = 0.075 / rate_factor  # anticipation reaches further than carry-over
    tau_car = 0.05 / rate_factor
    for i, (lab, s, e) in enumerate(phones):
        d = e - s
        core_a, core_b = s + 0.2 * d, e - 0.2 * d
        if lab == "sil":  # a pause pulls towards rest only away from its edges
            core_a, core_b = s + min(0.12, 0.4 * d), e - min(0.12, 0.4 * d)
        lo, hi = np.searchsorted(t, [s - 6 * tau_ant, e + 6 * tau_car])
        if hi <= lo:
            continue
        tt = t[lo:hi]
        dist_before = np.clip(core_a - tt, 0, None)
        dist_after = np.clip(tt - core_b, 0, None)
        shape = np.exp(-dist_before / tau_ant - dist_after / tau_car)
        dj, dl, dt_ = _VOWEL_DOM if (lab in VOWELS) else _DOM.get(lab, (0.4, 0.3, 0.3))
        dom = np.empty((len(tt), N_PARAMS))
        dom[:, P_JAW] = dj
        dom[:, P_FUNNEL:P_TONGUE] = dl
        dom[:, P_TONGUE] = dt_
        dom *= shape[:, None]
        frac = np.clip((tt - s) / max(d, 1e-4), 0, 1)
        tgt = np.array(_targets_at(lab, frac), dtype=np.float64)
        tgt[:, [P_JAW, P_LOWER, P_UPPER]] *= gain[i]
        if lab in VOWELS:
            tgt[:, P_JAW] *= 1.15
        num[lo:hi] += dom * tgt
        den[lo:hi] += dom
    rest = np.array(_T["sil"])
    out = np.where(den > 1e-9, num / np.maximum(den, 1e-9), rest[None])
    out[:, P_JAW] *= style.jaw_gain * style.strength
    out[:, [P_FUNNEL, P_PUCKER]] *= style.round_gain * style.strength
    out[:, P_SPREAD] *= style.spread_gain * style.strength
    out[:, [P_LOWER, P_UPPER]] *= style.strength
    return out


def _gesture(phones: Sequence[tuple[str, float, float]], members: set[str], t: np.ndarray,
             rise: float, fall: float, head: float, tail: float) -> np.ndarray:
    """Max over phones in ``members`` of a bump that is 1 across each phone's core."""
    g = np.zeros(len(t))
    for lab, s, e in phones:
        if lab in members:
            d = e - s
            a, b = s + head * d, e - tail * d
            lo, hi = np.searchsorted(t, [a - rise, b + fall])
            if hi > lo:
                g[lo:hi] = np.maximum(g[lo:hi], _bump(t[lo:hi], a, b, rise, fall))
    return g


# ----------------------------------------------------------------------------- upper face

def _blinks(rng: np.random.Generator, n: int, fps: float, rate_per_min: float,
            onsets: Sequence[float]) -> np.ndarray:
    """Eyelid closure (0..1) per frame: Poisson blinks + blinks favoured at speech onsets."""
    dur = n / fps
    times: list[float] = []
    t = float(rng.exponential(60.0 / rate_per_min)) * 0.5
    while t < dur:
        times.append(t)
        t += max(0.5, float(rng.exponential(60.0 / rate_per_min)))
    for o in onsets:  # people tend to blink as they start a phrase
        if rng.random() < 0.25 and all(abs(o - x) > 0.8 for x in times):
            times.append(max(0.0, o - 0.1))
    if times and rng.random() < 0.1:  # occasional double blink
        times.append(times[-1] + 0.35)
    tf = (np.arange(n) + 0.5) / fps
    lid = np.zeros(n)
    for t0 in times:
        close = rng.uniform(0.045, 0.075)
        hold = rng.uniform(0.01, 0.04)
        opening = rng.uniform(0.09, 0.16)
        amp = rng.uniform(0.85, 1.0)
        x = tf - t0
        shape = np.where(x < 0, 0.0,
                         np.where(x < close, _smoothstep(x / close),
                                  np.where(x < close + hold, 1.0,
                                           1 - _smoothstep((x - close - hold) / opening))))
        lid = np.maximum(lid, amp * shape)
    return lid


def _gaze(rng: np.random.Generator, n: int, fps: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixations with fast saccades between them, plus slow drift: (gx, gy) per frame."""
    tf = (np.arange(n) + 0.5) / fps
    gx = np.zeros(n)
    gy = np.zeros(n)
    t = 0.0
    first = True
    while t < tf[-1] + 1:
        nx = float(np.clip(rng.normal(0, spread), -0.4, 0.4))
        ny = float(np.clip(rng.normal(0, spread * 0.6), -0.3, 0.3))
        if first:  # the opening fixation
            gx[:], gy[:] = nx, ny
            first = False
        else:  # a saccade: ~40 ms move to the new fixation
            w = _smoothstep((tf - t) / 0.04)
            gx = gx * (1 - w) + nx * w
            gy = gy * (1 - w) + ny * w
        t += max(0.25, float(rng.exponential(0.9)))
    drift_x = _ou(rng, n, 1 / fps, 0.5, 0.012)
    drift_y = _ou(rng, n, 1 / fps, 0.5, 0.01)
    return gx + drift_x, gy + drift_y


def _brows(rng: np.random.Generator, n: int, fps: float, style: Style,
           phones: Sequence[tuple[str, float, float]], loud: np.ndarray, audio: np.ndarray, sr: int,
           onsets: Sequence[float], questions: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Brow raise and brow lowering per frame, from pitch accents, onsets and questions."""
    tf = (np.arange(n) + 0.5) / fps
    raise_ = np.zeros(n)
    lower = np.zeros(n)
    times, f0 = f0_track(audio, sr)
    vowel_f0 = []
    for i, (lab, s, e) in enumerate(phones):
        if lab in VOWELS and e - s > 0.05 and times.size:
            sel = (times >= s) & (times < e) & (f0 > 0)
            if sel.any():
                vowel_f0.append((i, s, e, float(np.median(f0[sel]))))
    if vowel_f0:
        med = float(np.median([v[3] for v in vowel_f0]))
        med_loud = float(np.median([loud[v[0]] for v in vowel_f0]))
        for k, (i, s, e, f) in enumerate(vowel_f0):
            prev_f = vowel_f0[k - 1][3] if k > 0 else 0.0
            next_f = vowel_f0[k + 1][3] if k + 1 < len(vowel_f0) else 0.0
            accent = f > med * 1.06 and f >= prev_f and f >= next_f
            if accent and rng.random() < 0.35 + 0.6 * style.brow_activity:
                amp = style.brow_activity * float(np.clip((f / med - 1) * 4, 0.15, 0.6))
                raise_ = np.maximum(raise_, amp * _bump(tf, s, e, 0.12, 0.35))
            elif loud[i] > med_loud + 4 and rng.random() < 0.15 * style.brow_activity:
                lower = np.maximum(lower, 0.25 * style.brow_activity * _bump(tf, s, e, 0.1, 0.3))
    for o in onsets:
        if rng.random() < 0.5 * style.brow_activity:
            raise_ = np.maximum(raise_, rng.uniform(0.1, 0.35) * style.brow_activity
                                * _bump(tf, o, o + 0.25, 0.15, 0.4))
    for s, e in questions:
        a = 0.1 + 0.35 * style.brow_activity
        raise_ = np.maximum(raise_, a * _bump(tf, max(s, e - 0.6), e, 0.25, 0.5))
    return raise_, lower


# ----------------------------------------------------------------------------- main entry

def articulate(phones: Sequence[tuple[str, float, float]], audio: np.ndarray, sr: int, fps: float,
               style: Style, rng: np.random.Generator,
               questions: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """ARPAbet timeline (label, start s, end s) + its clean audio → (T, 52) float32 in [0, 1].

    ``T == round(len(audio) / sr * fps)``; frame f shows time ``(f + 0.5) / fps``.
    ``questions``: (start, end) spans of questions, for end-of-question brow raises.
    """
    n = frames_for(len(audio), sr, fps)
    out = np.zeros((n, len(ARKIT_52)), np.float32)
    if n == 0:
        return out
    phones = [(str(lab), float(s), float(e)) for lab, s, e in phones if e > s]
    dur = len(audio) / sr
    tf = (np.arange(n) + 0.5) / fps

    # loudness → per-vowel opening gain (stress/emphasis proxy)
    loud = phone_loudness_db(audio, sr, phones) if phones else np.zeros(0)
    vowel_loud = [loud[i] for i, p in enumerate(phones) if p[0] in VOWELS]
    ref = float(np.median(vowel_loud)) if vowel_loud else 0.0
    gain = np.array([float(np.clip(1 + 0.035 * (loud[i] - ref), 0.55, 1.35)) if p[0] in VOWELS else 1.0
                     for i, p in enumerate(phones)])
    speech = [p for p in phones if p[0] != "sil"]
    pps = len(speech) / max(sum(e - s for _, s, e in speech), 1e-3) if speech else 12.0
    rate_factor = float(np.clip((pps / 12.0) ** 0.5, 0.8, 1.35)) * style.speed

    # soft articulators on a fine grid, then critically damped dynamics, read ahead by the lag
    dt = 1.0 / GRID_HZ
    omega = {P_JAW: 2 * math.pi * 5.5, P_TONGUE: 2 * math.pi * 6.0}
    omega_lips = 2 * math.pi * 6.5
    lead = 1.6 / (omega_lips * rate_factor)
    tg = np.arange(-0.3, dur + 0.3, dt)
    raw = soft_articulators(phones, gain, tg + lead, style, rate_factor)
    soft = np.empty_like(raw)
    for p in range(N_PARAMS):
        w = omega.get(p, omega_lips) * rate_factor
        shift = 1.6 / w - lead  # extra read-ahead for slower articulators (the jaw)
        src = raw[:, p]
        if abs(shift) > 1e-6:
            src = np.interp(tg + shift, tg, src)
        soft[:, p] = critically_damped(src, w, dt)
    soft_f = np.stack([np.interp(tf, tg, soft[:, p]) for p in range(N_PARAMS)], 1)
    soft_f = np.clip(soft_f, 0, 1)

    # hard gestures: bilabial closure, labiodental contact, lips resting in long pauses
    close = _gesture(phones, BILABIAL, tf, rise=0.05 / rate_factor, fall=0.045 / rate_factor,
                     head=0.05, tail=0.12)
    stop = _gesture(phones, {"p", "b"}, tf, rise=0.05 / rate_factor, fall=0.04 / rate_factor,
                    head=0.05, tail=0.12)
    labio = _gesture(phones, LABIODENTAL, tf, rise=0.05 / rate_factor, fall=0.04 / rate_factor,
                     head=0.1, tail=0.15)
    rest = np.zeros(n)
    for lab, s, e in phones:
        if lab == "sil" and e - s > 0.25:
            rest = np.maximum(rest, _bump(tf, s + 0.12, e - 0.1, 0.15, 0.1))
    rest = rest * style.rest_close * (1 - close)

    jaw = soft_f[:, P_JAW]
    open_scale = 1 - np.maximum(close, 0.85 * labio)
    lower = soft_f[:, P_LOWER] * open_scale * (1 - 0.7 * rest)
    upper = soft_f[:, P_UPPER] * (1 - close) + 0.25 * labio * style.strength
    funnel = soft_f[:, P_FUNNEL] * (1 - close) * (1 - 0.7 * labio)
    pucker = soft_f[:, P_PUCKER] * (1 - 0.6 * close)
    spread = soft_f[:, P_SPREAD]

    smile = np.clip(style.smile_bias + _ou(rng, n, 1 / fps, 1.5, 0.03), 0, 0.6)
    frown = np.clip(style.frown_bias + _ou(rng, n, 1 / fps, 2.0, 0.02), 0, 0.3)
    al, ar = 1 + style.asym, 1 - style.asym

    def both(left: str, right: str, v: np.ndarray) -> None:
        out[:, CH[left]] = v * al
        out[:, CH[right]] = v * ar

    out[:, CH["jawOpen"]] = jaw
    # ARKit mouthClose seals the lips relative to the jaw: close ≈ jaw → lips touch. 0.85 of the
    # jaw (with the press below) is what seals best on a real rig (ICT FaceKit: gap ≤ ~1 mm
    # for jawOpen ≤ 0.3); more makes the lips interpenetrate.
    out[:, CH["mouthClose"]] = 0.85 * jaw * np.clip(close + 0.45 * labio + rest, 0, 1)
    out[:, CH["mouthFunnel"]] = funnel
    out[:, CH["mouthPucker"]] = pucker
    both("mouthStretchLeft", "mouthStretchRight", 0.55 * spread)
    both("mouthSmileLeft", "mouthSmileRight", 0.25 * spread + smile)
    both("mouthDimpleLeft", "mouthDimpleRight", 0.1 * spread + 0.2 * smile)
    both("mouthLowerDownLeft", "mouthLowerDownRight", lower)
    both("mouthUpperUpLeft", "mouthUpperUpRight", upper)
    both("mouthPressLeft", "mouthPressRight", style.press * close + 0.1 * rest)
    both("mouthFrownLeft", "mouthFrownRight", frown)
    out[:, CH["mouthRollLower"]] = 0.5 * labio * style.strength + 0.08 * stop
    out[:, CH["mouthRollUpper"]] = 0.08 * stop + 0.05 * labio
    out[:, CH["mouthShrugLower"]] = 0.08 * close + 0.1 * pucker
    out[:, CH["mouthShrugUpper"]] = 0.04 * close + 0.05 * soft_f[:, P_FUNNEL]
    out[:, CH["cheekPuff"]] = style.cheek_puff * stop
    out[:, CH["tongueOut"]] = soft_f[:, P_TONGUE]
    side = _ou(rng, n, 1 / fps, 1.0, 0.02)
    out[:, CH["mouthLeft"]] = np.clip(side, 0, None)
    out[:, CH["mouthRight"]] = np.clip(-side, 0, None)
    jside = _ou(rng, n, 1 / fps, 1.2, 0.012)
    out[:, CH["jawLeft"]] = np.clip(jside, 0, None)
    out[:, CH["jawRight"]] = np.clip(-jside, 0, None)
    out[:, CH["jawForward"]] = np.clip(0.03 + _ou(rng, n, 1 / fps, 1.5, 0.01), 0, None) * (0.5 + spread)

    # upper face
    onsets = [e for lab, s, e in phones if lab == "sil" and e - s > 0.3 and e < dur - 0.2]
    if phones and phones[0][0] != "sil":
        onsets.insert(0, 0.0)
    lid = _blinks(rng, n, fps, style.blink_rate, onsets)
    squint = 0.3 * smile
    brow_up, brow_down = _brows(rng, n, fps, style, phones, loud, audio, sr, onsets, questions)
    gx, gy = _gaze(rng, n, fps, style.gaze_spread)
    for side_name, sgn, asym in (("Left", 1.0, al), ("Right", -1.0, ar)):
        out[:, CH[f"eyeBlink{side_name}"]] = np.clip(style.eyelid + lid * (1 - style.eyelid), 0, 1) * (
            1.0 if side_name == "Left" else rng.uniform(0.95, 1.0))
        out[:, CH[f"eyeSquint{side_name}"]] = squint * asym + 0.15 * brow_down
        out[:, CH[f"eyeWide{side_name}"]] = 0.3 * brow_up
        out[:, CH[f"eyeLookUp{side_name}"]] = np.clip(gy, 0, None)
        out[:, CH[f"eyeLookDown{side_name}"]] = np.clip(-gy, 0, None) + 0.15 * lid
        # gx > 0: both eyes turn to the character's left (left eye out, right eye in)
        out[:, CH[f"eyeLookOut{side_name}"]] = np.clip(sgn * gx, 0, None)
        out[:, CH[f"eyeLookIn{side_name}"]] = np.clip(-sgn * gx, 0, None)
        out[:, CH[f"browOuterUp{side_name}"]] = 0.6 * brow_up * asym
        out[:, CH[f"browDown{side_name}"]] = brow_down
        out[:, CH[f"cheekSquint{side_name}"]] = 0.4 * smile * asym + 0.05 * upper
        out[:, CH[f"noseSneer{side_name}"]] = 0.06 * labio + 0.08 * upper + 0.1 * brow_down
    out[:, CH["browInnerUp"]] = 0.8 * brow_up + np.clip(_ou(rng, n, 1 / fps, 2.0, 0.02), 0, None)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def style_for(voice_id: str, seed: int) -> Style:
    """The speaking style of a voice: fixed by (seed, voice id), independent of run order."""
    import zlib

    return Style.sample(np.random.default_rng([seed, zlib.crc32(voice_id.encode())]))
