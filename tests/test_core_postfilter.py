"""Articulation gains (runtime/postfilter.py): the filter, the fitting rule, the card's entry, the session."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures import write_lipsync_folder
from inference_core.runtime.postfilter import GAIN_RANGE, ArticulationFilter, fit_gains
from inference_core.runtime.session import SessionError, SessionOptions, StreamingSession
from inference_core.shared.channels import ARKIT_52, MOUTH_CHANNELS
from inference_core.shared.model_card import ModelFileError, check_card

MOUTH = np.array([c in MOUTH_CHANNELS for c in ARKIT_52])


def test_filter_scales_motion_about_its_running_mean():
    t = np.arange(900) / 30.0
    x = (0.4 + 0.1 * np.sin(2 * np.pi * 3.0 * t))[:, None] * np.ones((1, 2))  # 3 Hz: syllable rate
    f = ArticulationFilter(np.array([2.0, 1.0]), fps=30.0, mean_seconds=1.0)
    y = f(x)
    late = slice(300, None)  # once the running mean has settled
    assert y[late, 0].std() / x[late, 0].std() == pytest.approx(2.0, rel=0.03)
    assert y[late, 0].mean() == pytest.approx(0.4, abs=0.01)  # the level stays where it was
    np.testing.assert_allclose(y[:, 1], x[:, 1])  # gain 1: untouched
    np.testing.assert_allclose(ArticulationFilter(np.array([2.0, 2.0]), 30.0)(np.full((50, 2), 0.3)), 0.3)


def test_filter_is_causal_and_carries_its_state_between_calls():
    x = np.random.default_rng(0).random((100, 3)).astype(np.float32)
    whole = ArticulationFilter(np.array([1.5, 0.7, 2.0]), 30.0)(x)
    f = ArticulationFilter(np.array([1.5, 0.7, 2.0]), 30.0)
    pieces = np.concatenate([f(x[:1]), f(x[1:40]), f(x[40:])])
    np.testing.assert_array_equal(whole, pieces)
    assert whole.dtype == np.float32
    g = ArticulationFilter(np.array([1.5, 0.7, 2.0]), 30.0)
    np.testing.assert_array_equal(g(x[:40]), whole[:40])  # the future never changes the past


def test_fit_gains_is_the_ratio_of_motion_ranges_on_mouth_channels_only():
    rng = np.random.default_rng(1)
    target = [rng.random((80, 52)) for _ in range(4)]
    model = [0.5 + 0.5 * (t - 0.5) for t in target]  # half the range everywhere
    model[1] = np.concatenate([model[1], model[1][:10]])  # a longer model take is cut to the target
    for m in model[1:]:
        m[:, ARKIT_52.index("mouthPucker")] = 0.5 + 0.1 * (m[:, ARKIT_52.index("mouthPucker")] - 0.5)
    gains = fit_gains(model, target, list(ARKIT_52))
    assert set(gains) == set(MOUTH_CHANNELS)  # eyes, brows: not this filter's business
    assert gains["jawOpen"] == pytest.approx(2.0, rel=1e-3)
    assert gains["mouthPucker"] == GAIN_RANGE[1]  # clipped
    with pytest.raises(ValueError, match="no utterance"):
        fit_gains([np.zeros((1, 52))], [np.zeros((1, 52))], list(ARKIT_52))


def test_fit_gains_leaves_a_still_channel_alone():
    target = [np.random.default_rng(2).random((60, 52))]
    model = [np.full((60, 52), 0.2)]
    assert set(fit_gains(model, target, list(ARKIT_52)).values()) == {1.0}


def _card_with(random_bundle_loaded, spec):
    return {**random_bundle_loaded.card, "articulation": spec}


@pytest.mark.parametrize("spec,msg", [
    ({"gains": {"jawOpen": -1.0}}, "numbers in 0..10"),
    ({"gains": {"jawOpen": "2"}}, "numbers in 0..10"),
    ({"gains": {"jawOpen": True}}, "numbers in 0..10"),
    ({"gains": {"nose": 1.0}}, "does not have"),
    ({"gains": [1.0]}, "an object with gains"),
    ({"gains": {"jawOpen": 1.5}, "mean_seconds": 0}, "mean_seconds"),
    ("loud", "an object with gains"),
])
def test_a_card_with_bad_gains_is_refused(random_bundle_loaded, spec, msg):
    with pytest.raises(ModelFileError, match=msg):
        check_card(_card_with(random_bundle_loaded, spec), "m.safetensors")


def _with_gains(bundle, gains):
    return dataclasses.replace(bundle, card=_card_with(bundle, {"gains": gains, "mean_seconds": 1.0}))


def _run(bundle, audio, sizes, **opts):
    s = StreamingSession(bundle, SessionOptions(seed=4, **opts))
    out, i = [], 0
    for k in range(10**6):
        if i >= audio.size:
            break
        out.append(s.push(audio[i:i + sizes[k % len(sizes)]]))
        i += sizes[k % len(sizes)]
    return np.concatenate(out + [s.flush()])


def test_session_applies_the_cards_gains_to_the_mouth_only(random_bundle_loaded):
    audio = (np.random.default_rng(3).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    plain = _run(random_bundle_loaded, audio, [audio.size])
    bundle = _with_gains(random_bundle_loaded, {c: 2.0 for c in MOUTH_CHANNELS})
    wide = _run(bundle, audio, [audio.size])
    assert np.abs(wide[:, MOUTH] - plain[:, MOUTH]).max() > 1e-3
    np.testing.assert_array_equal(wide[:, ~MOUTH], plain[:, ~MOUTH])  # eyes and brows untouched
    assert wide.min() >= 0.0 and wide.max() <= 1.0  # still within the channels' range
    np.testing.assert_array_equal(_run(bundle, audio, [audio.size], articulation=0.0), plain)  # 0: off
    half = _run(bundle, audio, [audio.size], articulation=0.5)  # gains 1.5
    expected = np.clip(ArticulationFilter(np.where(MOUTH, 1.5, 1.0), 30.0)(plain), 0, 1)
    np.testing.assert_allclose(half, expected, atol=1e-6)
    # streamed in odd pieces: the same frames
    np.testing.assert_array_equal(_run(bundle, audio, [1, 333, 4410]), wide)
    with pytest.raises(SessionError, match="articulation must be between 0 and 2"):
        SessionOptions.from_dict({"articulation": 3})


ROOT = Path(__file__).resolve().parents[1]


def test_fit_script_to_finalize_to_a_session_that_uses_the_gains(tmp_path, random_model):
    """scripts/fit_articulation.py on phone-aligned speech -> finalize-model --articulation -> the
    gains in the card, and a session of the finalized model that applies them (articulation 1) or not (0)."""
    from inference_core.runtime.bundle import load_bundle

    folder = write_lipsync_folder(tmp_path / "tune", [("a", "Bob made a map of the bay.", "en-us+m3"),
                                                      ("b", "Who knew you would move?", "en-us+f2")])
    fit = tmp_path / "fit.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_articulation.py"), "--model", str(random_model),
                        "--lipsync", str(folder), "--backend", "torch", "--out", str(fit)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(fit.read_text())
    assert set(got["gains"]) == set(MOUTH_CHANNELS) and got["utterances"] == 2
    assert all(GAIN_RANGE[0] <= g <= GAIN_RANGE[1] for g in got["gains"].values())
    assert got["settings"]["articulation"] == 0.0  # fitted on the model's own output
    assert len(set(got["gains"].values())) > 1  # a random model is not muted evenly
    final = tmp_path / "final.safetensors"
    r = subprocess.run([sys.executable, "-m", "inference_core", "finalize-model", str(random_model), "--out", str(final),
                        "--articulation", str(fit)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    bundle = load_bundle(final, backend="torch")
    assert bundle.card["articulation"]["gains"] == got["gains"]
    audio = (np.random.default_rng(5).standard_normal(16000) * 0.1).astype(np.float32)
    on, off = _run(bundle, audio, [audio.size]), _run(bundle, audio, [audio.size], articulation=0.0)
    assert np.abs(on[:, MOUTH] - off[:, MOUTH]).max() > 1e-4
    np.testing.assert_array_equal(on[:, ~MOUTH], off[:, ~MOUTH])
