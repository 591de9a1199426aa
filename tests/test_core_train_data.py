"""Training batches: mixing datasets by weight, per-frame phone classes, log-mel augmentation,
the phone probe, and fine-tuning onto data with new speakers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import FPS, SR, make_toy_dataset, syllable_audio
from inference_core.data.format import Dataset, DatasetWriter, Utterance
from inference_core.model.config import ModelConfig
from inference_core.shared.channels import ARKIT_52
from inference_core.training.data import IGNORE, PHONE_INDEX, TrainingData, augment_features

ROOT = Path(__file__).resolve().parents[1]


def _phoned_dataset(root: Path, speaker: str, n: int = 3) -> Path:
    """Toy utterances with phone timings: /p/ then /aa/ alternating every 0.25 s."""
    w = DatasetWriter(root, FPS, SR, list(ARKIT_52), source="toy with phones (tests)")
    for i in range(n):
        audio, motion = syllable_audio(3.0, seed=100 + i)
        starts = np.arange(0, 3.0, 0.25, dtype=np.float32)
        labels = np.array(["p" if k % 2 == 0 else "aa" for k in range(len(starts))])
        w.add(Utterance(f"{speaker}{i}", speaker, "train", audio, motion,
                        {"phonemes": labels, "phonemes_start": starts, "phonemes_end": starts + 0.25}))
    w.close()
    return root


def test_datasets_mix_by_weight_and_carry_phone_classes(tmp_path):
    toy = Dataset(make_toy_dataset(tmp_path / "toy", n_train=4, n_val=1, seconds=3.0))
    real = Dataset(_phoned_dataset(tmp_path / "real", "human"))
    cfg = ModelConfig(num_styles=5)
    speakers = sorted(set(toy.speakers("train")) | set(real.speakers("train")))
    data = TrainingData([toy, real], cfg, "train", speakers, weights=[1.0, 3.0])
    rng = np.random.default_rng(0)
    mel, motion, style, phones = data.batch(rng, 400, 10, 4)
    human = style == speakers.index("human") + 1
    assert 0.68 < human.float().mean() < 0.82                # 3 : 1, whatever the hours
    assert (phones[~human] == IGNORE).all()                   # no timings: ignored by the loss
    known = phones[human]
    labels = {int(v) for v in known.unique()}
    assert labels <= {PHONE_INDEX["p"], PHONE_INDEX["aa"], PHONE_INDEX["sil"], IGNORE} and len(labels) >= 2
    assert mel.shape[:2] == (400, 14 * cfg.step_mels + cfg.receptive_field_mel - 1)


def test_feature_augmentation_warps_limits_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    mel = torch.linspace(-1, 1, 80).expand(6, 20, 80).clone()  # energy rising with frequency
    same = augment_features(mel, rng, 0.0)
    assert torch.equal(same, mel)
    out = augment_features(mel, np.random.default_rng(1), 1.0)
    assert out.shape == mel.shape and not torch.equal(out, mel)
    floor = (np.log(1e-5) + 4.0) / 4.0
    assert float(out.min()) >= floor - 1e-6
    # a band-limited element has its top bands at the floor; a warped one still rises
    limited = [(o[:, -1] <= floor + 1e-6).all().item() for o in out]
    assert any(limited) and not all(limited)
    rising = out[[i for i, lim in enumerate(limited) if not lim][0]].mean(0)
    assert rising[60] > rising[20]


def test_vtlp_range_moves_formants_the_way_it_says():
    """alpha < 1 (a longer vocal tract) moves a spectral peak down, alpha > 1 up."""
    mel = torch.full((1, 4, 80), -1.0)
    mel[:, :, 40] = 3.0
    peaks = {}
    for alpha in (0.75, 1.3):
        rng = np.random.default_rng(3)
        out = augment_features(mel, rng, 1.0, vtlp=(alpha, alpha))
        peaks[alpha] = int(out[0].mean(0).argmax())
    assert peaks[0.75] < 40 - 3 and peaks[1.3] > 40 + 3


def test_vtlp_range_is_checked_on_the_command_line():
    import argparse

    from inference_core.training.data import warp_range

    assert warp_range("0.8,1.25") == (0.8, 1.25)
    for bad in ("1.1,1.2", "0.8", "0.3,1.2", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            warp_range(bad)


def test_phone_probe_trains_the_encoder(tmp_path):
    from inference_core.model.network import StreamingTalker
    from inference_core.training.probe import PhoneProbe
    from inference_core.training.train import LossOptions, training_loss

    real = Dataset(_phoned_dataset(tmp_path / "real", "human"))
    cfg = ModelConfig(num_styles=2, layers=1, head_blocks=1, head_dim=64, model_dim=64, audio_dim=64)
    data = TrainingData([real], cfg, "train", ["human"])
    mel, motion, style, phones = data.batch(np.random.default_rng(0), 4, 10, 3)
    model = StreamingTalker(cfg)
    probe = PhoneProbe(cfg.model_dim, len(PHONE_INDEX))
    mask = torch.zeros(52)
    torch.manual_seed(0)
    plain, parts0 = training_loss(model, mel, motion, style, 10, "diffusion", mask, LossOptions())
    torch.manual_seed(0)
    both, parts1 = training_loss(model, mel, motion, style, 10, "diffusion", mask, LossOptions(phone_weight=0.5),
                                 phones, probe)
    assert "phone" not in parts0 and parts1["phone"] > 0
    torch.testing.assert_close(both.detach(), plain.detach() + 0.5 * parts1["phone"], rtol=1e-5, atol=1e-6)
    both.backward()
    assert probe.out.weight.grad is not None and model.audio.convs[0].weight.grad.abs().sum() > 0


def test_fine_tune_onto_new_speakers_keeps_the_known_styles(tmp_path):
    toy = make_toy_dataset(tmp_path / "toy", n_train=3, n_val=1, seconds=3.0)
    real = _phoned_dataset(tmp_path / "real", "human", n=2)
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 64})
    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"

    def train(*extra):
        r = subprocess.run([sys.executable, "-m", "inference_core", "train", "--iters", "2", "--batch", "4",
                            "--quiet", "--arch", arch, *map(str, extra)], capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
        assert r.returncode == 0, r.stderr

    train("--data", toy, "--out", base)
    train("--data", toy, real, "--data-weight", "1,2", "--init", base, "--out", tuned, "--phone-weight", "0.3",
          "--feature-aug", "0.5", "--level-aug", "0.5", "--level-aug-db", "8", "--lr", "0")
    from inference_core.model.checkpoint import load_checkpoint

    m0, c0, _ = load_checkpoint(base)
    m1, c1, _ = load_checkpoint(tuned)
    assert c1["styles"] == ["generic", "human", "spk0", "spk1", "spk2"]
    w0, w1 = m0.predictor.style.weight, m1.predictor.style.weight
    for name in ("generic", "spk0", "spk2"):
        assert torch.equal(w1[c1["styles"].index(name)], w0[c0["styles"].index(name)])  # lr 0: kept as they were
    assert torch.equal(w1[1], w0[0])                                                   # new: the generic style
    tr = c1["training"]
    assert [d["weight"] for d in tr["datasets"]] == [1.0, 2.0] and tr["phone_weight"] == 0.3
    assert (tr["level_aug"], tr["level_aug_db"]) == (0.5, 8.0)
    assert tr["datasets"][0]["held_out_speakers"] == ["spk9"]


def test_spectrum_masks_hide_bands_and_spans_with_the_elements_own_mean():
    from inference_core.training.data import mask_spectrum

    mel = torch.randn(64, 60, 80)
    out = mask_spectrum(mel, np.random.default_rng(0), 1.0, bands=8, frames=10, masks=2)
    assert torch.equal(mask_spectrum(mel, np.random.default_rng(0), 0.0), mel)   # prob 0: untouched
    changed = out != mel
    assert changed.any(dim=(1, 2)).float().mean() > 0.9                         # nearly every element masked
    for i in range(64):
        hidden = changed[i]
        if hidden.any():
            assert torch.allclose(out[i][hidden], mel[i].mean().expand(int(hidden.sum())))
        cols, rows = hidden.all(dim=0).sum(), hidden.all(dim=1).sum()           # whole bands, whole spans
        assert cols <= 16 and rows <= 20
        assert hidden.sum() <= cols * 60 + rows * 80                             # nothing else is touched


def test_level_riding_moves_every_band_together_slowly_and_leaves_silence_alone():
    from inference_core.audio.features import LOG_FLOOR, _LOG_SCALE, _LOG_SHIFT
    from inference_core.training.data import modulate_level

    floor = (math.log(LOG_FLOOR) + _LOG_SHIFT) / _LOG_SCALE
    db = math.log(10) / 10 / _LOG_SCALE
    mel = torch.rand(16, 120, 80) * 2 + (floor + 1.0)                           # well above the floor
    mel[:, :10] = floor                                                          # a digital-silence lead-in
    assert torch.equal(modulate_level(mel, np.random.default_rng(0), 0.0), mel)  # prob 0: untouched
    out = modulate_level(mel, np.random.default_rng(0), 1.0, depth_db=6.0, spacing=(10, 40))
    assert torch.equal(out[:, :10], mel[:, :10])                                 # silence stays silence
    gain = (out - mel)[:, 10:]
    assert torch.allclose(gain, gain[:, :, :1].expand_as(gain), atol=1e-5)      # one gain for all bands
    curve = gain[:, :, 0] / db
    assert curve.abs().max() <= 6.0 + 1e-3 and curve.abs().max() > 3.0          # within the depth, and used
    assert (curve[:, 1:] - curve[:, :-1]).abs().max() <= 12.0 / 10 + 1e-3        # slow: knots >= 10 frames apart
    assert curve.std(dim=1).min() > 0.1                                          # it rides, not a fixed offset
