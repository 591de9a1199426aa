"""Audio augmentation: same length, really changed, deterministic, bounded."""

from __future__ import annotations

import numpy as np
import pytest

from inference_core.data.corpus import augment as A
from inference_core.data.corpus import tts


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return tts.speak_espeak("gmw/en-US+m3", "Move the blue boat before the evening.", 170, 50, 50).audio


@pytest.mark.parametrize("op", [A.reverb, A.equalize, A.band_limit, A.clip])
def test_each_op_keeps_length_and_changes_signal(speech, op):
    y = op(speech.astype(np.float64), np.random.default_rng(0))
    assert y.shape == speech.shape and np.isfinite(y).all()
    assert np.abs(y - speech).mean() > 1e-4


def test_noise_at_requested_snr(speech):
    rng = np.random.default_rng(0)
    for gen in (A.white_noise, A.pink_noise, A.brown_noise):
        noise = gen(rng, len(speech))
        y = A.add_noise(speech.astype(np.float64), noise, 10.0)
        snr = 20 * np.log10(np.sqrt(np.mean(speech.astype(np.float64) ** 2)) / np.sqrt(np.mean((y - speech) ** 2)))
        assert snr == pytest.approx(10.0, abs=0.1)


def test_augment_is_deterministic_bounded_and_reports_ops(speech):
    outs = []
    for seed in range(12):
        y1, ops1 = A.augment(speech, np.random.default_rng(seed), p=1.0, babble=None)
        y2, ops2 = A.augment(speech, np.random.default_rng(seed), p=1.0, babble=None)
        np.testing.assert_array_equal(y1, y2)
        assert ops1 == ops2
        assert y1.shape == speech.shape and y1.dtype == np.float32
        assert np.abs(y1).max() <= 1.0 and np.isfinite(y1).all()
        outs.append(ops1)
    applied = {op.split("@")[0] for ops in outs for op in ops}
    assert {"reverb", "eq", "gain"} <= applied and any(o.endswith("_noise") for o in applied)


def test_no_augmentation_when_p_is_zero(speech):
    y, ops = A.augment(speech, np.random.default_rng(0), p=0.0)
    assert ops == [] and np.array_equal(y, speech)


def test_babble_source_is_used(speech):
    calls = []

    def babble(n):
        calls.append(n)
        return np.random.default_rng(1).standard_normal(n)

    for seed in range(20):
        _, ops = A.augment(speech, np.random.default_rng(seed), p=1.0, babble=babble)
        if any(o.startswith("babble") for o in ops):
            break
    assert calls and calls[0] == len(speech)
