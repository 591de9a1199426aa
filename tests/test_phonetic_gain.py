"""The phonetic gain: the opening channels multiplied by the jaw the heard phones ask for, over its running mean
(runtime/postfilter.py PhoneticGain, training/phonetic.py, scripts/fit_phonetic_gain.py, finalize-model)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures import make_toy_dataset, write_lipsync_folder
from inference_core.runtime.postfilter import PhoneticGain
from inference_core.runtime.session import StreamingSession
from inference_core.shared.channels import ARKIT_52
from inference_core.shared.model_card import ModelFileError, check_card
from inference_core.shared.options import SessionOptions
from inference_core.training.phonetic import OPENING, choose, phonetic_spec, phonetic_tensors

ROOT = Path(__file__).resolve().parents[1]
LIP_METRICS = ROOT.parent / "shared" / "tools" / "lip_metrics.py"
OPEN_IDX = [list(ARKIT_52).index(c) for c in OPENING]
OPEN_MASK = np.isin(np.arange(len(ARKIT_52)), OPEN_IDX)


def _certain_gain(beta: float = 1.0, floor: float = 0.5, ceiling: float = 2.0) -> PhoneticGain:
    """Three phone classes read with certainty from one-hot features; the rules' jaw 0.02 / 0.05 / 0.55."""
    return PhoneticGain(np.eye(3) * 60.0, np.zeros(3), np.array([0.02, 0.05, 0.55]), OPEN_IDX, beta, 30.0,
                        1.0, floor, ceiling)


def _features(classes: list[int]) -> np.ndarray:
    return np.eye(3)[classes]


def test_the_gain_follows_the_heard_jaw_over_its_running_mean():
    g = _certain_gain()
    motion = np.full((90, 52), 0.3, np.float32)
    out = g(motion, _features([2] * 60 + [1] * 30))
    np.testing.assert_allclose(out[:60], motion[:60], atol=1e-6)            # steady phones: no change
    np.testing.assert_allclose(out[-1, OPEN_IDX], 0.3 * 0.5, rtol=1e-6)      # closures after vowels: the floor
    assert 0.3 * 0.5 < out[60, OPEN_IDX[0]] < 0.3                             # the first closed frame: on its way
    np.testing.assert_array_equal(out[:, ~OPEN_MASK], motion[:, ~OPEN_MASK])  # nothing else moves
    back = _certain_gain()(motion, _features([1] * 60 + [2] * 30))
    assert back[60, OPEN_IDX[0]] == pytest.approx(0.3 * 2.0)                 # an open vowel after closures: ceiling
    jaw, close = ARKIT_52.index("jawOpen"), ARKIT_52.index("mouthClose")
    sealed = motion.copy()
    sealed[:, close] = sealed[:, jaw]
    s = _certain_gain()(sealed, _features([2] * 45 + [0] * 45))
    np.testing.assert_array_equal(s[:, jaw], s[:, close])                    # a seal stays a seal
    half = _certain_gain(beta=0.5)(motion, _features([1] * 60 + [2] * 30))
    assert half[60, OPEN_IDX[0]] == pytest.approx(0.3 * 2.0 ** 0.5)


def test_the_gain_is_causal_and_carries_its_state_between_calls():
    rng = np.random.default_rng(0)
    motion = rng.random((97, 52)).astype(np.float32)
    feats = rng.standard_normal((97, 3))
    whole = _certain_gain()(motion, feats)
    g = _certain_gain()
    pieces = [g(motion[i:i + k], feats[i:i + k]) for i, k in ((0, 5), (5, 40), (45, 52))]
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-6)
    np.testing.assert_array_equal(_certain_gain()(motion[:20], feats[:20]), whole[:20])  # later frames change nothing earlier


def test_the_relative_gain_leaves_a_jaw_that_already_follows_the_phones():
    jaw = ARKIT_52.index("jawOpen")
    classes = [2] * 20 + [1] * 10 + [0] * 15 + [2] * 25 + [1] * 20
    heard = np.array([0.02, 0.05, 0.55])[classes]
    motion = np.full((90, 52), 0.3, np.float32)
    motion[:, jaw] = 0.5 * (heard + PhoneticGain.EPS) - PhoneticGain.EPS   # the model opens as the read-out hears
    motion[:, ARKIT_52.index("mouthClose")] = motion[:, jaw]
    rel = PhoneticGain(np.eye(3) * 60.0, np.zeros(3), np.array([0.02, 0.05, 0.55]), OPEN_IDX, 1.0, 30.0,
                       relative_to=jaw)
    np.testing.assert_allclose(rel(motion, _features(classes)), motion, rtol=1e-5, atol=1e-6)
    still = np.full((90, 52), 0.3, np.float32)                            # a still jaw: as the absolute gain
    rel = PhoneticGain(np.eye(3) * 60.0, np.zeros(3), np.array([0.02, 0.05, 0.55]), OPEN_IDX, 1.0, 30.0,
                       relative_to=jaw)
    np.testing.assert_allclose(rel(still, _features(classes)), _certain_gain()(still, _features(classes)), rtol=1e-6)


def _with_phonetic(bundle, beta=1.0, seed=0):
    d = bundle.cfg.model_dim
    w = np.random.default_rng(seed).standard_normal((43, d)).astype(np.float32)
    card = {**bundle.card, "phonetic_gain": phonetic_spec(beta, 0.5, 2.0, 1.0)}
    return dataclasses.replace(bundle, card=card, extra={**bundle.extra, **phonetic_tensors(w, np.zeros(43))})


def _stream(bundle, audio, piece, **opts):
    s = StreamingSession(bundle, SessionOptions(seed=4, **{"phonetic": 1.0, **opts}))
    return np.concatenate([s.push(audio[i:i + piece]) for i in range(0, audio.size, piece)] + [s.flush()])


def test_a_session_applies_the_cards_gain_to_the_opening_channels_only(random_bundle_loaded):
    audio = (np.random.default_rng(3).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    plain = _stream(random_bundle_loaded, audio, audio.size)
    bundle = _with_phonetic(random_bundle_loaded)
    on = _stream(bundle, audio, audio.size)
    assert np.abs(on[:, OPEN_MASK] - plain[:, OPEN_MASK]).max() > 1e-3
    np.testing.assert_array_equal(on[:, ~OPEN_MASK], plain[:, ~OPEN_MASK])
    assert on.min() >= 0.0 and on.max() <= 1.0
    np.testing.assert_array_equal(_stream(bundle, audio, audio.size, phonetic=0.0), plain)  # off
    np.testing.assert_allclose(_stream(bundle, audio, 777), on, atol=1e-6)                   # streamed: the same
    half = _stream(bundle, audio, audio.size, phonetic=0.5)
    np.testing.assert_allclose(half, _stream(_with_phonetic(random_bundle_loaded, beta=0.5), audio, audio.size),
                               atol=1e-6)                                                  # strength scales beta


@pytest.mark.parametrize("change,msg", [
    ({"beta": 9.0}, "beta in 0..4"),
    ({"beta": "1"}, "beta in 0..4"),
    ({"channels": ["nose"]}, "does not have"),
    ({"classes": []}, "needs classes"),
    ({"floor": 1.5}, "floor <= 1"),
    ({"mean_seconds": 0}, "mean_seconds"),
    ({"mode": "loud"}, "absolute or relative"),
])
def test_a_card_with_a_bad_phonetic_gain_is_refused(random_bundle_loaded, change, msg):
    card = {**random_bundle_loaded.card, "phonetic_gain": {**phonetic_spec(1.0, 0.5, 2.0, 1.0), **change}}
    with pytest.raises(ModelFileError, match=msg):
        check_card(card, "m.safetensors")


def test_choose_takes_the_best_r_that_costs_nothing_else():
    base = {"bilabial_closure_rate": 0.88, "open_vowel_gap_ratio": 4.0, "gap_openness_corr_speech": 0.47,
            "rounding_ratio": 3.0, "open_vowel_closed_frac": 0.17}

    def row(beta, floor, r, shut, closure=0.9):
        return {"beta": beta, "floor": floor, "figures": {**base, "gap_openness_corr_speech": r,
                                                          "open_vowel_closed_frac": shut, "bilabial_closure_rate": closure}}

    grid = [row(0.5, 0.5, 0.50, 0.179), row(1.0, 0.5, 0.52, 0.19), row(0.5, 1.0, 0.50, 0.175),
            row(0.75, 0.5, 0.55, 0.17, closure=0.85)]
    assert (choose(base, grid, 0.01)["beta"], choose(base, grid, 0.01)["floor"]) == (0.5, 1.0)  # tie: higher floor
    assert choose(base, grid, 0.05)["beta"] == 1.0
    assert choose(base, grid[3:], 0.01) is None                                                # closure lost
    lve = {**base, "tts_lve_mm": 5.0}
    with_lve = [{**row, "figures": {**row["figures"], "tts_lve_mm": v}} for row, v in zip(grid, (5.05, 5.3, 5.2, 5.0))]
    assert choose(lve, with_lve, 0.05, lve_slack=0.02)["beta"] == 0.5                          # 1.0 costs the TTS voices


@pytest.mark.skipif(not LIP_METRICS.exists(), reason="lip_metrics.py is not beside the checkout")
def test_fit_script_to_finalize_to_a_file_both_runtimes_read(tmp_path, random_model):
    """scripts/fit_phonetic_gain.py -> finalize-model --phonetic-gain -> a file whose card and tensors the
    torch and ONNX runtimes load and apply alike; a file whose card and tensors disagree is refused."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from inference_core.model.checkpoint import read_card
    from inference_core.model.config import config_from_card
    from inference_core.model.onnx_export import export_onnx
    from inference_core.runtime.bundle import load_bundle

    folder = write_lipsync_folder(tmp_path / "tune", [("a", "Bob made a map of the bay.", "en-us+m3"),
                                                      ("b", "Who knew you would move?", "en-us+f2")])
    d = config_from_card(read_card(random_model)).model_dim
    torch.save({"probe": {"out.weight": torch.randn(43, d, generator=torch.Generator().manual_seed(1)),
                          "out.bias": torch.zeros(43)}}, tmp_path / "run.state")
    fit = tmp_path / "fit.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_phonetic_gain.py"), "--model", str(random_model),
                        "--read-out", str(tmp_path / "run.state"), "--lipsync", str(folder), "--backend", "torch",
                        "--beta", "0.5,1", "--floor", "0.5", "--open-shut-slack", "1", "--lip-metrics", str(LIP_METRICS),
                        "--mode", "relative", "--tts", str(make_toy_dataset(tmp_path / "tts", n_train=1, n_val=2,
                                                                               seconds=1.5)),
                        "--tts-split", "val", "--out", str(fit)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(fit.read_text())
    assert [(row["beta"], row["floor"]) for row in got["grid"]] == [(0.5, 0.5), (1.0, 0.5)]
    assert set(got["base"]) == set(got["grid"][0]["figures"]) and got["base"]["tts_lve_mm"] > 0
    assert got["mode"] == "relative" and "TTS tune lip vertex error within 2%" in got["rule"]
    if got["chosen"] is None:  # a random model may lose closure either way: force a choice to finalize
        got["chosen"] = {**phonetic_spec(1.0, 0.5, 2.0, 1.0, "relative"), "figures": got["grid"][1]["figures"]}
        fit.write_text(json.dumps(got))
    final = tmp_path / "final.safetensors"
    r = subprocess.run([sys.executable, "-m", "inference_core", "finalize-model", str(random_model), "--out", str(final),
                        "--phonetic-gain", str(fit)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    export_onnx(final)
    audio = (np.random.default_rng(5).standard_normal(16000) * 0.1).astype(np.float32)
    out = {}
    for backend in ("torch", "onnx-fp32"):
        bundle = load_bundle(final, backend=backend)
        assert bundle.card["phonetic_gain"]["beta"] == got["chosen"]["beta"]
        assert bundle.card["phonetic_gain"]["mode"] == "relative"
        assert bundle.extra["phonetic.jaw"][-1] == pytest.approx(0.02)       # silence, the last class
        out[backend] = (_stream(bundle, audio, 4000), _stream(bundle, audio, 4000, phonetic=0.0))
    on, off = out["torch"]
    assert np.abs(on[:, OPEN_MASK] - off[:, OPEN_MASK]).max() > 1e-4
    np.testing.assert_array_equal(on[:, ~OPEN_MASK], off[:, ~OPEN_MASK])
    assert np.abs(out["onnx-fp32"][0] - on).max() < 1e-3
    # refused: a fit that chose nothing; tensors without the card entry; the card entry without tensors
    nothing = tmp_path / "nothing.json"
    nothing.write_text(json.dumps({**got, "chosen": None}))
    r = subprocess.run([sys.executable, "-m", "inference_core", "finalize-model", str(random_model), "--out",
                        str(tmp_path / "x.safetensors"), "--phonetic-gain", str(nothing)], capture_output=True, text=True)
    assert r.returncode != 0 and "chose no phonetic gain" in r.stderr
    with safe_open(str(final), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(final))
    card = json.loads(meta["streamingtalker.card"])
    card.pop("phonetic_gain")
    card.pop("weights_sha256")
    save_file(tensors, str(tmp_path / "orphan.safetensors"), metadata={"streamingtalker.card": json.dumps(card)})
    with pytest.raises(ModelFileError, match="tensors it does not use phonetic"):
        load_bundle(tmp_path / "orphan.safetensors", backend="torch")
    bare = {k: v for k, v in tensors.items() if not k.startswith("phonetic.")}
    meta_card = json.loads(meta["streamingtalker.card"])
    meta_card.pop("weights_sha256")
    save_file(bare, str(tmp_path / "bare.safetensors"), metadata={"streamingtalker.card": json.dumps(meta_card)})
    with pytest.raises(ModelFileError, match="missing tensors phonetic"):
        load_bundle(tmp_path / "bare.safetensors", backend="torch")
