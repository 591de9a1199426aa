"""Articulation: the mouth's range of motion that averaging takes away, given back (numpy only).

At its low mouth temperature the sampler returns close to the *average* of the motions the audio
allows. Where the audio leaves a phone in doubt (a voice the model never heard), that average is a
timid mouth: on real speakers the model's lip-rounding channels swing about half as far over time
as the articulation rules' targets do, the jaw two thirds as far. Statistical speech synthesis
meets the same over-smoothing of mean predictions with *global-variance compensation*; this is a
causal form of it. Each mouth channel's deviation from its own running mean (a one-pole average
over ``mean_seconds``) is scaled by a gain fitted once per model (:func:`fit_gains`: the targets'
standard deviation over time over the model's, on speakers it was trained on, prompts it was
not) and kept in the model card under ``articulation`` (checked by ``shared.model_card``).
``SessionOptions.articulation`` scales each gain's distance from 1: 0 leaves the model's output as
it is, 1 applies the fitted gains.

Display-only, like intensity and smoothing: the model's motion context keeps its own output. The
filter is causal and carries its state from step to step, so streamed and whole-file output stay
identical.

:class:`PhoneticGain` is the second half of the same idea, for how open the mouth is. The audio
encoder's features say the phone being spoken far better than the head passes on (on unheard
voices a linear phone read-out of them implies an openness that follows lip_metrics' target at r
0.58, the model's lip gap at 0.46: docs/model.md, stop 34), so the opening channels are multiplied
by how much more (or less) open the articulation rules' jaw is for the phones the read-out hears
now than over the last second. A multiplication keeps a seal a seal (``mouthClose`` moves with the
jaw) and a still mouth still.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from ..shared.channels import MOUTH_CHANNELS
from ..shared.model_card import ARTICULATION_KEY as CARD_KEY
from ..shared.model_card import ARTICULATION_SECONDS as MEAN_SECONDS
from ..shared.model_card import PHONETIC_KEY

#: :func:`fit_gains` keeps every gain in this range (a channel the model barely moves must not
#: turn its noise into motion); a card may hold any gain within ``ARTICULATION_GAIN_LIMITS``
GAIN_RANGE = (0.5, 2.5)
#: a channel whose model output moves less than this (std over time) keeps gain 1
_STILL = 1e-4


class ArticulationFilter:
    """``mean + gain * (x - mean)`` per channel and frame, ``mean`` a causal running average."""

    def __init__(self, gains: np.ndarray, fps: float, mean_seconds: float = MEAN_SECONDS):
        self.gains = np.asarray(gains, np.float64)
        self.decay = math.exp(-1.0 / (fps * mean_seconds))
        self._mean: np.ndarray | None = None

    @classmethod
    def from_card(cls, card: Mapping[str, Any], fps: float, strength: float) -> "ArticulationFilter | None":
        """The card's fitted filter at ``strength`` (None when it would change nothing: no gains in
        the card, or strength 0)."""
        spec = card.get(CARD_KEY)
        if not spec or strength == 0.0:
            return None
        channels = list(card.get("channels") or [])
        gains = np.ones(len(channels))
        for name, gain in (spec.get("gains") or {}).items():
            gains[channels.index(name)] = gain
        gains = 1.0 + strength * (gains - 1.0)
        if np.all(gains == 1.0):
            return None
        return cls(gains, fps, float(spec.get("mean_seconds", MEAN_SECONDS)))

    def __call__(self, motion: np.ndarray) -> np.ndarray:
        """The next frames (n, K), in order; the running mean carries over to the next call."""
        means = running_mean(motion, self.decay, motion[0].astype(np.float64) if self._mean is None else self._mean)
        self._mean = means[-1]
        return (means + self.gains * (motion - means)).astype(motion.dtype)


class PhoneticGain:
    """The opening channels times ``clip(ratio, floor, ceiling) ** beta`` per frame.

    ``absolute``: ratio = (e + EPS) / (m + EPS), ``e`` the phone read-out's posterior-weighted jaw
    target (``softmax(features @ W.T + b) @ jaw``), ``m`` its causal running mean over
    ``mean_seconds``: the read-out's opening added on top of the model's own. ``relative``: that,
    over the model's own ``jawOpen`` against its running mean, so where the model already opens as
    the read-out hears (a voice it knows) nothing changes, and beta 1 gives the jaw the read-out's
    shape at the model's own mean opening."""

    #: keeps the ratio finite in silence (the rules' jaw there is 0.02)
    EPS = 0.02

    def __init__(self, weight: np.ndarray, bias: np.ndarray, jaw: np.ndarray, channels: list[int], beta: float,
                 fps: float, mean_seconds: float = MEAN_SECONDS, floor: float = 0.5, ceiling: float = 2.0,
                 relative_to: int | None = None):
        self.weight, self.bias = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
        self.jaw = np.asarray(jaw, np.float64)
        self.channels, self.beta, self.floor, self.ceiling = list(channels), float(beta), float(floor), float(ceiling)
        #: the model's own jaw channel the relative mode compares against (None: absolute)
        self.relative_to = relative_to
        self.decay = math.exp(-1.0 / (fps * mean_seconds))
        self._mean: np.ndarray | None = None

    @classmethod
    def from_card(cls, card: Mapping[str, Any], extra: Mapping[str, np.ndarray], fps: float,
                  strength: float) -> "PhoneticGain | None":
        """The card's phonetic gain at ``strength`` (the session's ``phonetic`` option: it scales beta),
        or None when it would change nothing (no gain in the card, or strength 0)."""
        spec = card.get(PHONETIC_KEY)
        if not spec or strength == 0.0 or spec["beta"] == 0:
            return None
        names = list(card.get("channels") or [])
        return cls(extra["phonetic.read_out.weight"], extra["phonetic.read_out.bias"], extra["phonetic.jaw"],
                   [names.index(c) for c in spec["channels"]], strength * float(spec["beta"]), fps,
                   float(spec.get("mean_seconds", MEAN_SECONDS)), float(spec.get("floor", 0.5)),
                   float(spec.get("ceiling", 2.0)),
                   names.index("jawOpen") if spec.get("mode", "absolute") == "relative" else None)

    def expected_jaw(self, features: np.ndarray) -> np.ndarray:
        """(n,) the read-out's posterior-weighted jaw target for features (n, d)."""
        return phone_posteriors(features, self.weight, self.bias) @ self.jaw

    def __call__(self, motion: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The next frames (n, K) and their audio features (n, d), in order; the running mean
        carries over to the next call."""
        e = self.expected_jaw(features)[:, None]
        if self.relative_to is not None:  # the read-out's and the model's jaw, each with its running mean
            e = np.concatenate([e, motion[:, self.relative_to, None].astype(np.float64)], 1)
        means = running_mean(e, self.decay, e[0] if self._mean is None else self._mean)
        self._mean = means[-1]
        ratio = (e + self.EPS) / (means + self.EPS)
        if self.relative_to is not None:
            ratio = ratio[:, :1] / ratio[:, 1:]
        gain = np.clip(ratio, self.floor, self.ceiling) ** self.beta
        out = motion.copy()
        out[:, self.channels] = motion[:, self.channels] * gain.astype(motion.dtype)
        return out


def phone_posteriors(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(n, classes) softmax of a linear phone read-out (``weight`` (classes, d), ``bias``) of
    audio features (n, d), in float64."""
    logits = np.asarray(features, np.float64) @ np.asarray(weight, np.float64).T + np.asarray(bias, np.float64)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def running_mean(rows: np.ndarray, decay: float, start: np.ndarray) -> np.ndarray:
    """Causal one-pole average of ``rows`` (n, K) continuing from ``start`` (the previous call's last
    average, or the first row at a stream's start): ``decay * previous + (1 - decay) * row``, in
    ``start``'s precision or ``rows``', whichever is wider. The running mean here, and the session's
    output smoothing."""
    out = np.empty(rows.shape, np.result_type(start, rows))
    mean = start
    for i, row in enumerate(rows):
        mean = decay * mean + (1.0 - decay) * row
        out[i] = mean
    return out


def fit_gains(model: Iterable[np.ndarray], target: Iterable[np.ndarray], channels: list[str]) -> dict[str, float]:
    """Per mouth channel: the targets' standard deviation over time, averaged over utterances,
    over the model's, clipped to :data:`GAIN_RANGE`. ``model`` and ``target`` are paired
    utterances of (frames, channels) weights (the longer of a pair is cut to the shorter)."""
    sm, st = [], []
    for m, t in zip(model, target, strict=True):
        n = min(len(m), len(t))
        if n < 2:
            continue
        sm.append(np.asarray(m[:n], np.float64).std(0))
        st.append(np.asarray(t[:n], np.float64).std(0))
    if not sm:
        raise ValueError("no utterance of two frames or more to fit the articulation gains on")
    model_std, target_std = np.mean(sm, 0), np.mean(st, 0)
    gains = {}
    for k, name in enumerate(channels):
        if name in MOUTH_CHANNELS:
            ratio = target_std[k] / model_std[k] if model_std[k] > _STILL else 1.0
            gains[name] = round(float(np.clip(ratio, *GAIN_RANGE)), 4)
    return gains
