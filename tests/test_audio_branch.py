"""A second audio conv stack beside the encoder (``audio_branch_dim``): a fine-tune can add it to a
trained model without changing what the model computes, and train grows it (that it streams in
ONNX with its own state, and that a file declaring one must hold it: test_phone_bottleneck.py, for
both grown parts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import make_toy_dataset
from inference_core.model.checkpoint import base_card, save_checkpoint
from inference_core.model.config import ModelConfig
from inference_core.model.network import StreamingTalker
from inference_core.shared.channels import ARKIT_52
from inference_core.training.finetune import BRANCH_PREFIX, init_from, param_groups

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"layers": 1, "head_blocks": 2, "head_dim": 64, "model_dim": 64, "audio_dim": 64}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "inference_core", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def _randomised(model: StreamingTalker, seed: int) -> StreamingTalker:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def test_a_grown_branch_starts_as_its_parent_and_only_it_gets_the_lr_factor(tmp_path):
    torch.manual_seed(0)
    parent = _randomised(StreamingTalker(ModelConfig(num_styles=1, **SMALL)), seed=1)
    path = tmp_path / "parent.safetensors"
    save_checkpoint(path, parent, base_card(parent.cfg, list(ARKIT_52), styles=["generic"]))
    grown = StreamingTalker(ModelConfig(num_styles=1, audio_branch_dim=32, **SMALL))
    assert init_from(grown, str(path), []) is None
    grown.eval()
    mel = torch.randn(2, 5 * grown.cfg.step_mels + grown.cfg.receptive_field_mel - 1, grown.cfg.n_mels)
    with torch.no_grad():
        torch.testing.assert_close(grown.audio(mel), parent.audio(mel), atol=0, rtol=0)
        assert grown.audio.branch_features(mel).abs().mean() > 0.1  # the branch computes; its projection is 0
        grown.audio.branch_out.weight.normal_(0, 0.1)
        assert (grown.audio(mel) - parent.audio(mel)).abs().max() > 1e-3  # a trained projection is heard
    branch = {n for n, _ in grown.named_parameters() if n.startswith(BRANCH_PREFIX)}
    plain = StreamingTalker(ModelConfig(num_styles=1, **SMALL)).state_dict()
    assert branch == set(grown.state_dict()) - set(plain)  # the prefix names exactly the new tensors
    groups = param_groups(grown, [torch.nn.Parameter(torch.zeros(3))], [(BRANCH_PREFIX, 10.0), ("audio", 2.0)])
    by_factor = {g["lr_mult"]: {id(p) for p in g["params"]} for g in groups}
    named = dict(grown.named_parameters())
    assert by_factor[10.0] == {id(named[n]) for n in branch}
    assert by_factor[2.0] == {id(p) for n, p in named.items() if n.startswith("audio") and n not in branch}
    assert len(by_factor[1.0]) == len(named) - len(branch) - len(by_factor[2.0]) + 1  # + the extra one
    # a branch is never removed or resized by a fine-tune
    save_checkpoint(tmp_path / "branched.safetensors", grown, base_card(grown.cfg, list(ARKIT_52), styles=["generic"]))
    for dim in (0, 16):
        other = StreamingTalker(ModelConfig(num_styles=1, audio_branch_dim=dim, **SMALL))
        assert "another architecture" in (init_from(other, str(tmp_path / "branched.safetensors"), []) or "")


def test_train_grows_a_branch_from_an_init_model_and_records_the_lr_factors(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=4, n_val=1, seconds=3.0)
    arch = {"layers": 1, "head_blocks": 2, "head_dim": 128}
    base = tmp_path / "base.safetensors"
    r = cli("train", "--data", data, "--out", base, "--iters", 2, "--batch", 4, "--quiet", "--arch", json.dumps(arch))
    assert r.returncode == 0, r.stderr
    grown = tmp_path / "grown.safetensors"
    r = cli("train", "--data", data, "--out", grown, "--iters", 2, "--batch", 4, "--quiet", "--init", base,
            "--arch", json.dumps(dict(arch, audio_branch_dim=32)), "--lr-mult", "audio.branch=10")
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", grown).stdout)
    assert card["architecture"]["audio_branch_dim"] == 32
    assert card["training"]["lr_mult"] == {"audio.branch": 10.0}
    # a fine-tune of the branched model keeps its branch without being told again
    again = tmp_path / "again.safetensors"
    r = cli("train", "--data", data, "--out", again, "--iters", 1, "--batch", 4, "--quiet", "--init", grown,
            "--arch", json.dumps(arch))
    assert r.returncode == 0, r.stderr
    assert json.loads(cli("info", again).stdout)["architecture"]["audio_branch_dim"] == 32
    r = cli("train", "--data", data, "--out", tmp_path / "x.safetensors", "--iters", 1, "--quiet",
            "--lr-mult", "audio.branch")
    assert r.returncode == 2 and "PREFIX=FACTOR" in r.stderr


def test_pretraining_teaches_the_branch_phones_and_leaves_the_model_computing_as_its_parent(tmp_path):
    """The script on toy speech with /p/ and /aa/ alternating: the read-out learns them, nothing
    but the branch moves, and its projection stays zero (so the output is the parent's)."""
    from inference_core.data.format import DatasetWriter, Utterance
    from inference_core.model.checkpoint import load_checkpoint

    data = tmp_path / "ds"
    w = DatasetWriter(data, 30, 16000, list(ARKIT_52), source="toy /p/ (a burst) and /aa/ (a tone)")
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    for i in range(4):
        starts = np.arange(0, 3.0, 0.25, dtype=np.float32)
        labels = np.array(["p" if k % 2 == 0 else "aa" for k in range(len(starts))])
        parts = [0.3 * np.sin(2 * np.pi * (180 + 20 * i) * t) * np.sin(np.pi * t / 0.25) if lab == "aa"
                 else 0.05 * rng.standard_normal(4000) for lab in labels]
        w.add(Utterance(f"r{i}", "reader", "train", np.concatenate(parts).astype(np.float32),
                        np.zeros((90, 52), np.float32),
                        {"phonemes": labels, "phonemes_start": starts, "phonemes_end": starts + 0.25}))
    w.close()
    parent = _randomised(StreamingTalker(ModelConfig(num_styles=1, **SMALL)), seed=5)
    init = tmp_path / "parent.safetensors"
    save_checkpoint(init, parent, base_card(parent.cfg, list(ARKIT_52), styles=["generic"]))
    out = tmp_path / "taught.safetensors"
    args = ["--init", init, "--branch-dim", 32, "--data", data, "--eval-split", "train", "--out", out,
            "--batch", 8, "--eval-every", 20, "--eval-batches", 2, "--lr", 3e-3, "--warmup", 5,
            "--feature-aug", 0.5, "--spec-mask", 0.5, "--dropout", 0.1]

    def pretrain(*more):
        return subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain_audio_branch.py"),
                               *map(str, args + list(more))], capture_output=True, text=True, timeout=600)

    r = pretrain("--iters", 40)
    assert r.returncode == 0, r.stderr
    history = json.loads((tmp_path / "taught.safetensors.pretrain.json").read_text())["history"]
    assert [h["iter"] for h in history] == [20, 40]
    assert history[-1]["train"]["phone_accuracy"] > 0.75  # two phones, half the frames each: chance is ~0.5
    taught, card, _ = load_checkpoint(out)
    assert card["branch_pretrain"]["iter"] == 40 and taught.cfg.audio_branch_dim == 32
    before, after = parent.state_dict(), taught.state_dict()
    for name, value in after.items():
        if name.startswith("audio.branch_out"):
            assert not value.any()
        elif not name.startswith("audio.branch"):
            torch.testing.assert_close(value, before[name], atol=0, rtol=0)
    mel = torch.randn(1, 4 * taught.cfg.step_mels + taught.cfg.receptive_field_mel - 1, taught.cfg.n_mels)
    with torch.no_grad():
        torch.testing.assert_close(taught.eval().audio(mel), parent.audio(mel), atol=0, rtol=0)
    # resumable: asking for more iterations continues from the state
    r = pretrain("--iters", 60, "--resume")
    assert r.returncode == 0, r.stderr
    history = json.loads((tmp_path / "taught.safetensors.pretrain.json").read_text())["history"]
    assert [h["iter"] for h in history] == [20, 40, 60]
    # the reference: a read-out of the parent's own features, scored the same way, writes no model
    probe = tmp_path / "probe.safetensors"
    args[args.index(out)] = probe
    r = pretrain("--iters", 20, "--probe-parent")
    assert r.returncode == 0, r.stderr
    assert not probe.exists()
    report = json.loads((tmp_path / "probe.safetensors.pretrain.json").read_text())
    assert report["args"]["probe_parent"] and 0 < report["history"][-1]["train"]["phone_accuracy"] <= 1
