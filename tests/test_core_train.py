"""Training pieces that fight long-stream drift: self-generated context and context corruption."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fixtures import make_toy_dataset
from inference_core.model.config import ModelConfig
from inference_core.model.network import StreamingTalker
from inference_core.training.train import LossOptions, rollout, swap_contexts, training_loss

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"layers": 1, "head_blocks": 2, "head_dim": 64, "model_dim": 64, "audio_dim": 64}


def _args(**kw):
    base = dict(objective="diffusion", rollout_prob=0.0, rollout_steps=4, rollout_ddim=2,
                rollout_guidance=2.0, rollout_temperature=0.3, context_noise=0.5, context_drop=0.1,
                context_gain=0.0, context_swap=0.0, audio_drop=0.1, style_drop=0.3, noise_levels=2, mouth_weight=2.0,
                velocity_weight=2.0, sampler_times=[], first_step_weight=0.0,
                sampler_loss_weight=0.0, sampler_loss_steps=2, sampler_loss_temperature=0.1)
    base.update(kw)
    return LossOptions(**base)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return StreamingTalker(ModelConfig(num_styles=3, **SMALL))


def _segment(model, steps: int, batch: int = 3):
    cfg = model.cfg
    mel = torch.randn(batch, steps * cfg.step_mels + cfg.receptive_field_mel - 1, cfg.n_mels)
    motion = torch.rand(batch, steps * cfg.chunk_frames, cfg.num_channels)
    return mel, motion, torch.tensor([0, 1, 2][:batch])


def test_rollout_replaces_exactly_the_rolled_out_steps(model):
    cfg = model.cfg
    mel, motion, style = _segment(model, 16)
    with torch.no_grad():
        audio = model.audio(mel)
        x = model.normalise(motion)
    out = rollout(model, audio, x, style, first_step=10, n_steps=4, opt=_args())
    C = cfg.chunk_frames
    assert torch.equal(out[:, :10 * C], x[:, :10 * C])            # context before: untouched
    assert torch.equal(out[:, 14 * C:], x[:, 14 * C:])            # targets after: untouched
    assert (out[:, 10 * C:14 * C] - x[:, 10 * C:14 * C]).abs().mean() > 0.1  # the model's own frames
    assert torch.isfinite(out).all()


def test_rollout_of_a_regressor_is_deterministic(model):
    mel, motion, style = _segment(model, 14)
    with torch.no_grad():
        audio, x = model.audio(mel), model.normalise(motion)
    args = _args(objective="regression")
    torch.manual_seed(1)
    a = rollout(model, audio, x, style, 10, 4, args)
    torch.manual_seed(2)
    b = rollout(model, audio, x, style, 10, 4, args)
    assert torch.equal(a, b)
    torch.manual_seed(1)
    c = rollout(model, audio, x, style, 10, 4, _args())
    torch.manual_seed(2)
    d = rollout(model, audio, x, style, 10, 4, _args())
    assert not torch.equal(c, d)  # the diffusion rollout samples


def test_rollout_draws_the_upper_face_at_its_own_temperature(model, monkeypatch):
    """The rollout scales its noise per region as the shipped session does, so training sees
    contexts with a hot upper face and a cool mouth."""
    import inference_core.training.train as train_mod
    cfg = model.cfg
    C, K = cfg.chunk_frames, cfg.num_channels
    mel, motion, style = _segment(model, 14)
    with torch.no_grad():
        audio, x = model.audio(mel), model.normalise(motion)
    seen = []

    def fake_next_chunk(condition, head, noise, objective, steps, guidance):
        seen.append(noise.clone())
        return torch.zeros_like(noise)
    monkeypatch.setattr(train_mod, "next_chunk", fake_next_chunk)
    mouth = torch.zeros(K)
    mouth[: K // 2] = 1.0
    rollout(model, audio, x, style, 10, 4, _args(rollout_temperature=0.1, rollout_temperature_upper=1.5), mouth)
    noise = torch.cat(seen).reshape(-1, C, K)
    assert noise[..., : K // 2].std() == pytest.approx(0.1, rel=0.2)
    assert noise[..., K // 2:].std() == pytest.approx(1.5, rel=0.2)
    seen.clear()
    rollout(model, audio, x, style, 10, 4, _args(rollout_temperature=0.1))  # no upper: one region
    assert torch.cat(seen).std() == pytest.approx(0.1, rel=0.2)


@pytest.mark.parametrize("kw", [{}, {"rollout_prob": 1.0}, {"context_gain": 0.3}, {"context_swap": 0.5}, {"sampler_times": [0.995, 0.4975]},
                                {"rollout_prob": 1.0, "objective": "regression"}, {"first_step_weight": 1.0},
                                {"sampler_loss_weight": 1.0}])
def test_training_loss_backpropagates_with_each_context_treatment(model, kw):
    args = _args(**kw)
    ctx = 10 + (args.rollout_steps if args.rollout_prob else 0)
    mel, motion, style = _segment(model, ctx + 3)
    mask = torch.zeros(model.cfg.num_channels)
    model.zero_grad()
    loss, parts = training_loss(model, mel, motion, style, ctx, args.objective, mask, args)
    loss.backward()
    assert torch.isfinite(loss) and parts["loss"] > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_articulation_weight_adds_loss_only_at_closures_and_open_vowels(model):
    """Frames whose phone is /p b m/ or an open vowel weigh more on the mouth channels; a batch
    without such frames (or with weight 1) gives exactly the plain loss."""
    from inference_core.training.data import PHONE_INDEX
    from inference_core.training.train import articulation_frames

    ph = torch.tensor([[PHONE_INDEX[p] for p in ("m", "aa", "s", "iy", "b", "sil")] + [-100]])
    assert articulation_frames(ph).tolist() == [[1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]]
    assert articulation_frames(ph, ("bilabial", "open", "spread")).tolist() == [[1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    mel, motion, style = _segment(model, 13)
    mask = torch.ones(model.cfg.num_channels)
    n_frames = motion.shape[1]
    other = torch.full((3, n_frames), PHONE_INDEX["s"])
    marked = other.clone()
    marked[:, -9:] = PHONE_INDEX["p"]  # the target frames of the last three steps

    def loss(phones, weight):
        torch.manual_seed(5)
        return training_loss(model, mel, motion, style, 10, "regression", mask,
                             _args(articulation_weight=weight), phones)[0].detach()

    plain = loss(other, 1.0)
    assert torch.equal(loss(other, 4.0), plain) and torch.equal(loss(marked, 1.0), plain)
    assert loss(marked, 4.0) > 1.5 * plain


def test_context_swap_gives_windows_another_windows_context():
    """Swapped windows take a context from another window of the batch (never their own);
    the rest keep theirs; probability 0 swaps nothing."""
    past = torch.arange(64, dtype=torch.float32)[:, None, None].expand(64, 4, 3).clone()
    assert torch.equal(swap_contexts(past, 0.0), past)
    torch.manual_seed(0)
    out = swap_contexts(past, 0.5)
    src = out[:, 0, 0].long()
    swapped = src != torch.arange(64)
    assert 16 < int(swapped.sum()) < 48                      # about half
    assert torch.equal(out, past[src])                       # whole windows, from the batch
    torch.manual_seed(0)
    assert bool((swap_contexts(past, 1.0)[:, 0, 0].long() != torch.arange(64)).all())


def test_first_step_loss_trains_the_prediction_the_sampler_starts_from(model):
    """The extra term scores the head at x_T = 0, t = T, the DDIM sampler's first step at
    temperature 0; a regressor (which is only that) and weight 0 have no such term."""
    mel, motion, style = _segment(model, 13)
    mask = torch.zeros(model.cfg.num_channels)
    torch.manual_seed(5)
    plain, p_parts = training_loss(model, mel, motion, style, 10, "diffusion", mask, _args())
    torch.manual_seed(5)
    both, b_parts = training_loss(model, mel, motion, style, 10, "diffusion", mask, _args(first_step_weight=0.5))
    assert "first" not in p_parts and b_parts["first"] > 0
    torch.testing.assert_close(both.detach(), plain.detach() + 0.5 * b_parts["first"], rtol=1e-5, atol=1e-6)
    torch.manual_seed(5)
    _, r_parts = training_loss(model, mel, motion, style, 10, "regression", mask, _args(first_step_weight=0.5))
    assert "first" not in r_parts


def test_sampler_loss_scores_the_unrolled_ddim_sampler(model):
    """The term scores what the shipped sampler outputs; one step at temperature 0 is exactly
    the first-step term, and a regressor has no sampler to score."""
    mel, motion, style = _segment(model, 13)
    mask = torch.zeros(model.cfg.num_channels)
    torch.manual_seed(5)
    plain, p_parts = training_loss(model, mel, motion, style, 10, "diffusion", mask, _args())
    torch.manual_seed(5)
    both, b_parts = training_loss(model, mel, motion, style, 10, "diffusion", mask,
                                  _args(sampler_loss_weight=0.5))
    assert "sampler" not in p_parts and b_parts["sampler"] > 0
    torch.testing.assert_close(both.detach(), plain.detach() + 0.5 * b_parts["sampler"], rtol=1e-5, atol=1e-6)
    torch.manual_seed(5)
    _, one = training_loss(model, mel, motion, style, 10, "diffusion", mask,
                           _args(first_step_weight=1.0, sampler_loss_weight=1.0, sampler_loss_steps=1,
                                 sampler_loss_temperature=0.0))
    assert one["sampler"] == pytest.approx(one["first"], rel=1e-5)
    torch.manual_seed(5)
    _, two = training_loss(model, mel, motion, style, 10, "diffusion", mask,
                           _args(first_step_weight=1.0, sampler_loss_weight=1.0, sampler_loss_temperature=0.0))
    assert two["sampler"] != pytest.approx(two["first"], rel=1e-3)  # the second step changes the output
    torch.manual_seed(5)
    _, r_parts = training_loss(model, mel, motion, style, 10, "regression", mask, _args(sampler_loss_weight=1.0))
    assert "sampler" not in r_parts


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inference_core", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_fine_tune_with_self_generated_context_records_the_recipe(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=4, n_val=1, seconds=3.0)
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 128})
    base = tmp_path / "base.safetensors"
    r = cli("train", "--data", data, "--out", base, "--iters", 3, "--batch", 4, "--quiet", "--arch", arch)
    assert r.returncode == 0, r.stderr
    r = cli("finalize-model", base, "--out", base, "--defaults", '{"temperature_upper": 1.25}')
    assert r.returncode == 0, r.stderr
    tuned = tmp_path / "tuned.safetensors"
    r = cli("train", "--data", data, "--out", tuned, "--iters", 3, "--batch", 4, "--quiet", "--arch", arch,
            "--init", base, "--rollout-prob", 1.0, "--rollout-steps", 3, "--context-gain", 0.3,
            "--context-swap", 0.25, "--first-step-weight", 0.5, "--sampler-loss-weight", 0.5,
            "--upper-distill", 2.0, "--upper-distill-steps", 2)
    assert r.returncode == 0, r.stderr
    full = json.loads(cli("info", tuned).stdout)
    assert full["defaults"]["temperature_upper"] == 1.25  # the parent's tuned sampler settings carry over
    card = full["training"]
    assert card["context"]["self_generated_prob"] == 1.0 and card["context"]["gain"] == 0.3
    assert card["context"]["swap"] == 0.25
    assert card["first_step_weight"] == 0.5
    assert card["sampler_loss"] == {"weight": 0.5, "steps": 2, "temperature": 0.1}
    assert card["upper_distill"] == 2.0
    assert card["upper_distill_path"] == {"steps": 2, "temperature": 0.75}
    assert card["init"]["from"] == "base.safetensors" and card["iterations"] == 3
    # the parent's run is one flat stage, not a nested copy of its whole section
    assert [st["iterations"] for st in card["earlier_stages"]] == [3] and "init" not in card["earlier_stages"][0]
    # a resumed run still holds the upper face to the --init weights, not to its own resumed ones
    held = tmp_path / "held.safetensors"
    common = ("--data", data, "--out", held, "--batch", 4, "--quiet", "--arch", arch, "--init", base,
              "--upper-distill", 2.0, "--save-every", 1, "--log-every", 1)
    assert cli("train", *common, "--iters", 2).returncode == 0
    r = cli("train", *common, "--iters", 3, "--resume")
    assert r.returncode == 0, r.stderr
    first_resumed = json.loads(cli("info", held).stdout)["training"]["loss_log_tail"][0]
    # held to itself it would be float noise (~1e-17); two small steps from the parent give ~1e-8
    assert first_resumed["iter"] == 2 and first_resumed["upper_distill"] > 1e-12
    # resuming into another architecture's state is a clear error, not a traceback
    other = json.dumps({"layers": 2, "head_blocks": 2, "head_dim": 128})
    r = cli("train", "--data", data, "--out", held, "--batch", 4, "--quiet", "--arch", other, "--iters", 4, "--resume")
    assert r.returncode == 2 and "another run's state" in r.stderr and "Traceback" not in r.stderr
    twice = tmp_path / "twice.safetensors"
    r = cli("train", "--data", data, "--out", twice, "--iters", 2, "--batch", 4, "--quiet", "--arch", arch,
            "--init", tuned)
    assert r.returncode == 0, r.stderr
    stages = json.loads(cli("info", twice).stdout)["training"]["earlier_stages"]
    assert [st["iterations"] for st in stages] == [3, 3] and stages[1]["from"] == "base.safetensors"
    assert stages[1]["context"]["swap"] == 0.25 and "from" not in stages[0]
    # holding the upper face needs a starting model to hold it to
    r = cli("train", "--data", data, "--out", tmp_path / "y.safetensors", "--iters", 2, "--quiet",
            "--upper-distill", 1.0)
    assert r.returncode == 2 and "needs --init" in r.stderr
    r = cli("train", "--data", data, "--out", tmp_path / "y.safetensors", "--iters", 2, "--quiet",
            "--init", base, "--upper-distill-steps", 4)
    assert r.returncode == 2 and "needs --upper-distill" in r.stderr
    # a checkpoint of another architecture cannot be the starting point
    r = cli("train", "--data", data, "--out", tmp_path / "x.safetensors", "--iters", 2, "--batch", 4,
            "--quiet", "--init", base)
    assert r.returncode == 2 and "another architecture" in r.stderr


def test_path_hold_follows_the_sampler_and_only_the_upper_face_pays(model):
    """``--upper-distill-steps``: the hold along the sampler's own path is nothing while the model is
    its parent, grows once the head drifts, is nothing when every channel is mouth, and visits one
    point per DDIM step (the head called that many times with gradient)."""
    import copy

    from inference_core.training.train import path_hold

    K, C = model.cfg.num_channels, model.cfg.chunk_frames
    child = copy.deepcopy(model)
    parent = copy.deepcopy(model).eval()
    opt = _args(upper_distill=1.0, upper_distill_steps=4, upper_distill_temperature=0.75)
    cond = torch.randn(6, C, model.cfg.model_dim)
    upper = torch.zeros(K)
    torch.manual_seed(1)
    assert float(path_hold(child, parent, cond, cond, upper, opt).detach()) == 0.0
    with torch.no_grad():
        for q in child.head.parameters():
            q.add_(0.05 * torch.randn_like(q))
    calls = []
    child.head.register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(1)
    held = path_hold(child, parent, cond, cond, upper, opt)
    assert float(held.detach()) > 0 and held.requires_grad and len(calls) == 4
    torch.manual_seed(1)
    assert float(path_hold(child, parent, cond, cond, torch.ones(K), opt).detach()) == 0.0
    # in the training loss it is its own term at the hold's weight
    mel, motion, style = _segment(model, 13, batch=2)
    torch.manual_seed(5)
    _, parts = training_loss(child, mel, motion, style, 10, "diffusion", upper, opt, parent=parent)
    assert parts["upper_path"] > 0 and "upper_distill" in parts
    torch.manual_seed(5)
    _, off = training_loss(child, mel, motion, style, 10, "diffusion", upper, _args(upper_distill=1.0), parent=parent)
    assert "upper_path" not in off


def test_nested_training_sections_of_older_cards_read_as_flat_stages():
    """Older cards nested each parent's whole training section in ``init``; the stages read
    the same from both layouts, and flattening keeps this run's own fields."""
    from inference_core.shared.model_card import flat_training, training_stages

    def section(iters: int, parent: dict | None, name: str | None) -> dict:
        t = {"trained": True, "data": "synthetic corpus", "val_speakers": ["a", "b"], "iterations": iters,
             "objective": "diffusion" if parent else "regression", "context": {"swap": 0.0}}
        if parent is not None:
            t["init"] = {"from": name, "weights_sha256": f"sha-{name}", "training": parent}
        return t

    nested = section(500, section(1000, section(3000, None, None), "reg_v1"), "diff_v6")
    stages = training_stages(nested)
    assert [s["iterations"] for s in stages] == [3000, 1000, 500]
    assert [s.get("from") for s in stages] == [None, "reg_v1", "diff_v6"]
    assert all("data" not in s and "val_speakers" not in s for s in stages)
    flat = flat_training(nested)
    assert flat["iterations"] == 500 and flat["val_speakers"] == ["a", "b"]
    assert flat["init"] == {"from": "diff_v6", "weights_sha256": "sha-diff_v6"}
    assert [s["iterations"] for s in flat["earlier_stages"]] == [3000, 1000]
    assert training_stages(flat) == stages and flat_training(flat) == flat


def test_upper_distill_holds_the_upper_face_to_the_parent(model):
    """``--upper-distill``: nothing while the model is its parent; once it drifts, a term (added to the
    plain loss at its weight) that only its outputs outside the mouth pay."""
    import copy

    mel, motion, style = _segment(model, 13, batch=2)
    K = model.cfg.num_channels
    child = copy.deepcopy(model)
    parent = copy.deepcopy(model).eval()
    opt = _args(upper_distill=10.0, first_step_weight=1.0)

    def parts(mask):
        torch.manual_seed(5)
        return training_loss(child, mel, motion, style, 10, "diffusion", mask, opt, parent=parent)

    upper = torch.zeros(K)
    assert parts(upper)[1]["upper_distill"] == 0.0
    with torch.no_grad():
        for q in child.head.parameters():
            q.add_(0.05 * torch.randn_like(q))
    loss, drifted = parts(upper)
    assert drifted["upper_distill"] > 0
    assert parts(torch.ones(K))[1]["upper_distill"] == 0.0   # all mouth: nothing held
    torch.manual_seed(5)
    _, plain = training_loss(child, mel, motion, style, 10, "diffusion", upper, _args(first_step_weight=1.0))
    assert "upper_distill" not in plain
    torch.testing.assert_close(loss.detach(), torch.tensor(plain["loss"] + 10.0 * drifted["upper_distill"]),
                               rtol=1e-5, atol=1e-5)


def _credit_voices(root: Path, voices: dict[str, str]) -> Path:
    """Mark a toy dataset's training speakers as recorded voices, the way real-speech sets do."""
    manifest = json.loads((root / "manifest.json").read_text())
    for u in manifest["utterances"]:
        if u["speaker"] in voices:
            u.update(voice=f"{u['speaker']}-xx", licence="CC-BY-SA-3.0", attribution=voices[u["speaker"]])
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_the_card_credits_every_recorded_voice_its_weights_learned_from(tmp_path):
    """This run's credited training voices plus its parent's (a fine-tune keeps what the parent
    learned); never a held-out one; finalize-model adds a dataset's for a model trained before."""
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 128})
    real = _credit_voices(make_toy_dataset(tmp_path / "real", n_train=3, n_val=1, seconds=3.0),
                          {"spk0": "Read by A.", "spk1": "Read by B.", "spk9": "Held out (val)."})
    base = tmp_path / "base.safetensors"
    r = cli("train", "--data", real, "--out", base, "--iters", 2, "--batch", 4, "--quiet", "--arch", arch)
    assert r.returncode == 0, r.stderr
    credits = json.loads(cli("info", base).stdout)["training"]["voice_credits"]
    assert credits == [{"voice": "spk0-xx", "licence": "CC-BY-SA-3.0", "attribution": "Read by A."},
                       {"voice": "spk1-xx", "licence": "CC-BY-SA-3.0", "attribution": "Read by B."}]
    other = _credit_voices(make_toy_dataset(tmp_path / "other", n_train=3, n_val=1, seconds=3.0),
                           {"spk2": "Read by C."})
    tuned = tmp_path / "tuned.safetensors"
    r = cli("train", "--data", other, "--out", tuned, "--iters", 2, "--batch", 4, "--quiet", "--arch", arch,
            "--init", base)
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", tuned).stdout)["training"]
    assert [c["voice"] for c in card["voice_credits"]] == ["spk0-xx", "spk1-xx", "spk2-xx"]
    assert "voice_credits" not in card["earlier_stages"][0]  # stated once, for the whole lineage
    plain = tmp_path / "plain.safetensors"
    r = cli("train", "--data", make_toy_dataset(tmp_path / "tts", n_train=3, n_val=1, seconds=3.0),
            "--out", plain, "--iters", 1, "--batch", 4, "--quiet", "--arch", arch)
    assert r.returncode == 0 and json.loads(cli("info", plain).stdout)["training"]["voice_credits"] == []
    r = cli("finalize-model", plain, "--out", plain, "--credit-data", real, other)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(cli("info", plain).stdout)["training"]["voice_credits"]) == 3
    r = cli("finalize-model", plain, "--out", plain, "--credit-data", tmp_path)
    assert r.returncode != 0 and "--credit-data" in r.stderr and "manifest.json" in r.stderr
