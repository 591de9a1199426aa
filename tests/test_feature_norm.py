"""Causal per-speaker log-mel normalisation: one definition, streamed, offline and in training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import make_toy_dataset, syllable_audio
from inference_core.audio.features import LogMel
from inference_core.audio.normalise import (FLOOR_E, RunningNorm, frame_speech_weights, normalise_np,
                                            normalise_torch)
from inference_core.data.format import Dataset
from inference_core.model.config import ModelConfig
from inference_core.runtime.bundle import load_bundle
from inference_core.runtime.session import StreamingSession
from inference_core.shared.options import SessionOptions
from inference_core.training.data import TrainingData

ROOT = Path(__file__).resolve().parents[1]
N = 50
MEL = LogMel()


def _speech(seconds: float, gain: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0, 1, int(seconds * 10)), 1600)  # syllable-rate loudness
    return (rng.standard_normal(envelope.size) * envelope * gain).astype(np.float32)


def _prior(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(-0.4, 0.3, 80)


def test_streamed_offline_and_torch_agree_and_silence_passes_unchanged():
    feats = MEL(_speech(3.0, 0.2), 0, 300)
    floor = MEL.floor_frame()
    padded = np.concatenate([np.repeat(floor[None], N - 1, 0), feats])
    offline = normalise_np(padded, len(feats), _prior(), N)
    norm, parts, i = RunningNorm(_prior(), N, floor), [], 0
    for n in (1, 9, 40, 0, 120, 130):
        parts.append(norm(feats[i:i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), offline)
    batched = normalise_torch(torch.from_numpy(np.stack([padded, padded])), _prior(), N)
    np.testing.assert_allclose(batched[1].numpy(), offline, atol=1e-5)
    # before any speech the features are the model's usual ones: the floor maps to itself
    np.testing.assert_array_equal(RunningNorm(_prior(), N, floor)(np.repeat(floor[None], 7, 0)),
                                  np.repeat(floor[None], 7, 0))
    assert floor.mean() < FLOOR_E


def test_a_voice_through_another_channel_ends_up_with_the_same_features():
    """What it is for: a level and spectral tilt (microphone, room, vocal tract) are mostly
    removed; the prior's weight (30 frames) keeps a share of them, by design, in a 1.5 s window."""
    frames = 150
    audio = _speech(4.0, 0.2, seed=3)
    feats = MEL(audio, 0, 400)
    tilt = np.linspace(-0.3, 0.3, 80) + 0.25          # brighter and ~9 dB louder
    floor = MEL.floor_frame()
    pad = np.repeat(floor[None], frames - 1, 0)
    a = normalise_np(np.concatenate([pad, feats]), 400, _prior(), frames)
    b = normalise_np(np.concatenate([pad, feats + tilt]), 400, _prior(), frames)
    late = slice(200, 400)                             # after 2 s of the voice
    raw_gap = np.abs(tilt).mean()
    assert np.abs(a[late] - b[late]).mean() < 0.35 * raw_gap


def test_speech_weights_ignore_silence_and_follow_the_loudest_frame():
    e = np.array([-1.88] * 5 + [-0.1, -0.6, -1.3, -1.88, -1.3, -1.3, -1.3, -1.3])
    w = frame_speech_weights(e, 5)
    assert (w[:5] == 0).all() and w[8] == 0                  # digital silence never counts
    assert w[5] == 1 and w[6] == 1 and w[7] == 0             # 1.2 under the window's peak: out
    assert w[9] == 0 and w[-1] > 0.5                         # in once the loud frame left the window


def test_session_normalises_when_the_card_says_so():
    """The bundled model (a random one ignores its audio at initialisation), told to normalise."""
    import dataclasses

    off = load_bundle(backend="onnx")
    on = dataclasses.replace(off, cfg=dataclasses.replace(off.cfg, feature_norm_frames=N,
                                                          feature_norm_prior=tuple(_prior())))
    audio = _speech(2.0, 0.3)
    opts = SessionOptions(seed=0, temperature=0.1)

    def run(bundle, sizes):
        s, out, i = StreamingSession(bundle, opts), [], 0
        for n in sizes:
            out.append(s.push(audio[i:i + n]))
            i += n
        return np.concatenate(out + [s.flush()])

    a, b = run(on, [audio.size]), run(on, [333, 4000, 160, audio.size])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - run(off, [audio.size])).max() > 1e-2
    with pytest.raises(ValueError, match="feature_norm_prior"):
        ModelConfig(feature_norm_frames=N, feature_norm_prior=(0.0,) * 3)


def test_training_batches_carry_the_normaliser_history(tmp_path):
    toy = Dataset(make_toy_dataset(tmp_path / "toy", n_train=3, n_val=1, seconds=3.0))
    base = ModelConfig(num_styles=4)
    cfg = ModelConfig(num_styles=4, feature_norm_frames=N, feature_norm_prior=tuple(_prior()))
    plain = TrainingData([toy], base, "train", toy.speakers("train"))
    data = TrainingData([toy], cfg, "train", toy.speakers("train"))
    m0, *_ = plain.batch(np.random.default_rng(0), 6, 10, 4)
    m1, *_ = data.batch(np.random.default_rng(0), 6, 10, 4)
    assert m1.shape[1] == m0.shape[1] + N - 1
    torch.testing.assert_close(m1[:, N - 1:], m0)                    # same segments, history in front
    assert normalise_torch(m1, cfg.feature_norm_prior, N).shape == m0.shape
    prior = data.speech_mean(N)
    assert prior.shape == (80,) and np.isfinite(prior).all() and prior.mean() > FLOOR_E


def test_train_cli_sets_the_prior_and_a_fine_tune_keeps_it(tmp_path):
    toy = make_toy_dataset(tmp_path / "toy", n_train=3, n_val=1, seconds=3.0)
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 64})
    base, normed, tuned = (tmp_path / f"{n}.safetensors" for n in ("base", "normed", "tuned"))

    def train(*extra):
        r = subprocess.run([sys.executable, "-m", "inference_core", "train", "--iters", "2", "--batch", "4",
                            "--quiet", "--arch", arch, "--data", str(toy), *map(str, extra)],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert r.returncode == 0, r.stderr

    from inference_core.model.checkpoint import read_card

    train("--out", base)
    train("--init", base, "--feature-norm", N, "--out", normed)
    train("--init", normed, "--out", tuned)
    a0, a1, a2 = (read_card(p)["architecture"] for p in (base, normed, tuned))
    assert a0.get("feature_norm_frames", 0) == 0
    assert a1["feature_norm_frames"] == N and len(a1["feature_norm_prior"]) == 80
    assert a2["feature_norm_prior"] == a1["feature_norm_prior"]     # inherited, not recomputed
