"""A phonetic bottleneck in the encoder (``phone_bottleneck``): the encoder's phone read-out, its
softmax projected back onto the features. A fine-tune can grow it on a trained model without
changing what the model computes (the projection starts at zero), its read-out can start from a
trained phone probe and is trained by the phone loss, it streams in ONNX as in torch, and a file
that declares one must hold it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import make_toy_dataset, onnx_and_torch_streams, without_tensors
from inference_core.training.data import PHONE_INDEX
from inference_core.model.checkpoint import base_card, save_checkpoint
from inference_core.model.config import ModelConfig
from inference_core.model.network import StreamingTalker
from inference_core.shared.channels import ARKIT_52
from inference_core.training.finetune import BOTTLENECK_PREFIX, init_from, load_phone_read
from test_audio_branch import SMALL, _randomised
from test_core_train_data import _phoned_dataset

ROOT = Path(__file__).resolve().parents[1]
P = len(PHONE_INDEX)


def _saved(model: StreamingTalker, path: Path) -> Path:
    save_checkpoint(path, model, base_card(model.cfg, list(ARKIT_52), styles=["generic"]))
    return path


def test_a_grown_bottleneck_starts_as_its_parent_and_its_read_out_can_start_from_a_probe(tmp_path):
    torch.manual_seed(0)
    parent = _randomised(StreamingTalker(ModelConfig(num_styles=1, **SMALL)), seed=1)
    grown = StreamingTalker(ModelConfig(num_styles=1, phone_bottleneck=P, **SMALL))
    assert init_from(grown, str(_saved(parent, tmp_path / "parent.safetensors")), []) is None
    grown.eval()
    mel = torch.randn(2, 5 * grown.cfg.step_mels + grown.cfg.receptive_field_mel - 1, grown.cfg.n_mels)
    probe = {"out.weight": torch.randn(P, SMALL["model_dim"]), "out.bias": torch.randn(P)}
    torch.save({"probe": probe}, tmp_path / "probe.state")
    load_phone_read(grown, str(tmp_path / "probe.state"))
    torch.testing.assert_close(grown.audio.phone_read.weight.detach(), probe["out.weight"], atol=0, rtol=0)
    with torch.no_grad():
        feat, logits = grown.audio.encode(mel)
        raw = parent.audio(mel)
        torch.testing.assert_close(feat, raw, atol=0, rtol=0)  # the projection is zero: the parent's features
        torch.testing.assert_close(logits, raw @ probe["out.weight"].T + probe["out.bias"])
        grown.audio.phone_embed.weight.normal_(0, 0.1)
        heard = grown.audio.phone_embed(torch.softmax(logits, -1))
        torch.testing.assert_close(grown.audio(mel), raw + heard)
        alone, _ = grown.audio.encode(mel, raw_keep=torch.zeros(2))  # training's raw-feature drop
        torch.testing.assert_close(alone, heard)
    plain = StreamingTalker(ModelConfig(num_styles=1, **SMALL)).state_dict()
    assert {n for n in grown.state_dict() if n.startswith(BOTTLENECK_PREFIX)} == set(grown.state_dict()) - set(plain)
    # a bottleneck is never removed or resized by a fine-tune; a state without a probe is refused
    _saved(grown, tmp_path / "grown.safetensors")
    for classes in (0, 11):
        other = StreamingTalker(ModelConfig(num_styles=1, phone_bottleneck=classes, **SMALL))
        assert "another architecture" in (init_from(other, str(tmp_path / "grown.safetensors"), []) or "")
    torch.save({"model": {}}, tmp_path / "bare.state")
    with pytest.raises(ValueError, match="no phone read-out"):
        load_phone_read(grown, str(tmp_path / "bare.state"))


def test_the_phone_loss_trains_the_bottlenecks_own_read_out_and_the_raw_drop_leaves_it_alone(tmp_path):
    from inference_core.training.data import Dataset, TrainingData
    from inference_core.training.train import LossOptions, training_loss

    cfg = ModelConfig(num_styles=2, layers=1, head_blocks=1, head_dim=64, model_dim=64, audio_dim=64,
                      phone_bottleneck=P)
    data = TrainingData([Dataset(_phoned_dataset(tmp_path / "real", "human"))], cfg, "train", ["human"])
    mel, motion, style, phones = data.batch(np.random.default_rng(0), 4, 10, 3)
    mask = torch.zeros(52)

    def grads(opt: LossOptions) -> tuple[StreamingTalker, dict[str, float]]:
        torch.manual_seed(0)
        model = _randomised(StreamingTalker(cfg), seed=1).train()  # a fresh head ignores its condition
        with torch.no_grad():
            model.audio.phone_embed.weight.zero_()  # as grown
        loss, parts = training_loss(model, mel, motion, style, 10, "diffusion", mask, opt, phones, None)
        loss.backward()
        return model, parts

    model, parts = grads(LossOptions(phone_weight=0.5))
    assert parts["phone"] > 0  # no separate probe: the model's own read-out is scored
    assert model.audio.phone_read.weight.grad.abs().sum() > 0 and model.audio.phone_embed.weight.grad.abs().sum() > 0
    assert model.audio.out.weight.grad.abs().sum() > 0
    # every segment on the bottleneck alone (its projection still zero), no phone loss: the raw
    # features reach nothing, so nothing moves them
    dropped, parts = grads(LossOptions(raw_audio_drop=1.0))
    assert "phone" not in parts and dropped.audio.out.weight.grad.abs().sum() == 0


@pytest.mark.parametrize("grown, marker", [({"phone_bottleneck": P}, ".phone_"), ({"audio_branch_dim": 32}, ".branch")],
                         ids=["phone-bottleneck", "audio-branch"])
def test_a_grown_part_streams_in_onnx_as_in_torch_and_a_file_must_hold_it(tmp_path, grown, marker):
    from inference_core.runtime.bundle import load_bundle, random_bundle
    from inference_core.shared.model_card import ModelFileError

    b = random_bundle(seed=2, num_styles=1, **grown)
    _randomised(b.backend.model, seed=3)
    path = _saved(b.backend.model, tmp_path / "grown.safetensors")
    out = onnx_and_torch_streams(path)
    assert out["torch"].shape == (60, 52)
    assert np.abs(out["onnx-fp32"] - out["torch"]).max() < 1e-3
    # a card that declares the part whose tensors are not in the file is refused before anything runs
    with pytest.raises(ModelFileError, match=f"missing tensors audio{marker}"):
        load_bundle(str(without_tensors(path, marker, tmp_path / "stripped.safetensors")), backend="torch")


def test_train_grows_a_bottleneck_from_a_probe_and_refuses_what_cannot_work(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=4, n_val=1, seconds=3.0)
    arch = {"layers": 1, "head_blocks": 2, "head_dim": 128}

    def train(*extra):
        return subprocess.run([sys.executable, "-m", "inference_core", "train", "--data", str(data), "--iters", "1",
                               "--batch", "4", "--quiet", *map(str, extra)], capture_output=True, text=True,
                              cwd=ROOT, timeout=600)

    base = tmp_path / "base.safetensors"
    assert train("--out", base, "--arch", json.dumps(arch)).returncode == 0
    read_out = {"weight": torch.randn(P, 128), "bias": torch.zeros(P)}
    torch.save({"read_out": read_out}, tmp_path / "p0.state")
    grown = tmp_path / "grown.safetensors"
    r = train("--out", grown, "--init", base, "--arch", json.dumps(dict(arch, phone_bottleneck=P)),
              "--phone-read-init", tmp_path / "p0.state", "--raw-audio-drop", "0.3", "--lr", "0")
    assert r.returncode == 0, r.stderr
    from inference_core.model.checkpoint import load_checkpoint

    model, card, _ = load_checkpoint(grown)
    assert card["architecture"]["phone_bottleneck"] == P
    assert card["training"]["phone_bottleneck"] == {"raw_audio_drop": 0.3, "read_out_from": "p0.state"}
    torch.testing.assert_close(model.audio.phone_read.weight.detach(), read_out["weight"], atol=0, rtol=0)
    r = train("--out", tmp_path / "x.safetensors", "--init", base, "--arch", json.dumps(arch),
              "--phone-read-init", tmp_path / "p0.state")
    assert r.returncode == 2 and "--phone-read-init needs a phonetic bottleneck" in r.stderr
    r = train("--out", tmp_path / "z.safetensors", "--arch", json.dumps(arch), "--raw-audio-drop", "0.3")
    assert r.returncode == 2 and "--raw-audio-drop needs a phonetic bottleneck" in r.stderr
    r = train("--out", tmp_path / "y.safetensors", "--arch", json.dumps(dict(arch, phone_bottleneck=7)))
    assert r.returncode == 2 and f"the {P} phone classes" in r.stderr
