"""Hardening of model loading (issue 18, rows 4, 5, 16, 17): a model card that lies, weights
that do not fit it, a model path that is not a file. Real files; both runtimes; the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from inference_core.model.config import ModelConfig
from inference_core.model.layout import tensor_shapes
from inference_core.runtime.bundle import load_bundle
from inference_core.shared.model_card import CARD_KEY, MAX_CARD_BYTES, ModelFileError
from inference_core.shared.paths import DEFAULT_MODEL


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "inference_core", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def rewrite(src, dst, edit=None, raw=None):
    """A copy of checkpoint ``src`` at ``dst`` whose card is ``edit(card)`` or the text ``raw``;
    tensors unchanged (the ONNX files beside ``src`` are copied along)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        card = json.loads(f.metadata()[CARD_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if raw is None:
        edit(card)
        raw = json.dumps(card)
    save_file(tensors, str(dst), metadata={CARD_KEY: raw})
    for f in src.parent.glob(src.stem + ".*"):
        if f.suffix != ".safetensors" and f.name != src.stem + ".json":
            shutil.copy(f, dst.with_name(dst.stem + f.name[len(src.stem):]))
    return dst


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """The bundled model and its ONNX export, in a folder of its own."""
    d = tmp_path_factory.mktemp("onnx")
    for f in DEFAULT_MODEL.parent.glob(DEFAULT_MODEL.stem + ".*"):
        shutil.copy(f, d / f.name)
    return d / DEFAULT_MODEL.name


def _arch(key, value):
    return lambda c: c["architecture"].update({key: value})


LIES = {
    "fps 0 (card)": (lambda c: c.update(fps=0), "fps"),
    "fps 0 (architecture)": (_arch("fps", 0), "fps must be an integer in 1..240"),
    "hop 0": (_arch("hop", 0), "hop must be an integer"),
    "head_dim 2**20": (_arch("head_dim", 2**20), "head_dim must be an integer"),
    "head_dim 8192": (_arch("head_dim", 8192), "shape"),
    "heads not dividing": (_arch("heads", 3), "not divisible"),
    "string format_version": (lambda c: c.update(format_version="1"), "format_version must be an integer"),
    "styles not a list": (lambda c: c.update(styles="generic"), "styles must be a list"),
    "more styles than the table": (lambda c: c.update(styles=[f"s{i}" for i in range(500)]), "styles"),
    "value_range of one": (lambda c: c.update(value_range=[1]), "value_range"),
    "value_range reversed": (lambda c: c.update(value_range=[1, 0]), "value_range"),
    "value_range text": (lambda c: c.update(value_range=["a", "b"]), "value_range"),
    "channels not names": (lambda c: c.update(channels=list(range(52))), "channels"),
    "channel twice": (lambda c: c["channels"].__setitem__(1, c["channels"][0]), "twice"),
    "kernels a string": (_arch("audio_kernels", "5553"), "audio_kernels"),
    "defaults out of range": (lambda c: c.update(defaults={"steps": 1.5}), "default settings"),
    "architecture null": (lambda c: c.update(architecture=None), "architecture must be an object"),
    "norm prior text": (_arch("feature_norm_prior", "0.1"), "feature_norm_prior must be a list"),
    "norm prior huge": (_arch("feature_norm_prior", [1e9] * 80), "feature_norm_prior must be a list"),
    "norm prior short": (lambda c: c["architecture"].update(feature_norm_frames=150, feature_norm_prior=[0.0]),
                         "feature_norm_prior needs 80 values"),
    "norm window negative": (_arch("feature_norm_frames", -1), "feature_norm_frames must be an integer"),
}
RAW_CARDS = {
    "a list": ("[1, 2, 3]", "not a JSON object"),
    "null": ("null", "not a JSON object"),
    "NaN inside": ('{"format": "streamingtalker-checkpoint", "fps": NaN}', "not valid JSON"),
    "nested 100000 deep": ("[" * 100000 + "]" * 100000, "not valid JSON"),
    "over the size limit": ('{"pad": "' + "x" * (MAX_CARD_BYTES + 10) + '"}', "KiB"),
}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("lie", list(LIES) + [f"raw: {k}" for k in RAW_CARDS])
def test_a_card_that_lies_is_refused_before_anything_is_built(tmp_path, random_model, onnx_model, backend, lie):
    src = random_model if backend == "torch" else onnx_model
    if lie.startswith("raw: "):
        raw, needle = RAW_CARDS[lie[5:]]
        path = rewrite(src, tmp_path / "m.safetensors", raw=raw)
    else:
        edit, needle = LIES[lie]
        path = rewrite(src, tmp_path / "m.safetensors", edit)
    with pytest.raises(ModelFileError, match=needle):
        load_bundle(str(path), backend=backend)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("key, value", [("head_blocks", 1), ("layers", 2)])
def test_weights_the_card_does_not_use_are_refused(tmp_path, random_model, onnx_model, backend, key, value):
    """Strict loading: extra tensors are an error, not silently dropped (the card under-declares)."""
    src = random_model if backend == "torch" else onnx_model
    path = rewrite(src, tmp_path / "m.safetensors", _arch(key, value))
    with pytest.raises(ModelFileError, match="tensors it does not use"):
        load_bundle(str(path), backend=backend)


def test_a_stray_tensor_is_refused(tmp_path, random_model):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(random_model), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["predictor.backdoor"] = torch.zeros(4)
    p = tmp_path / "stray.safetensors"
    save_file(tensors, str(p), metadata=meta)
    with pytest.raises(ModelFileError, match="predictor.backdoor"):
        load_bundle(str(p), backend="torch")


def test_layout_is_the_networks_state_dict():
    """The torch-free layout both loaders check against is exactly what the network holds."""
    from inference_core.model.network import StreamingTalker

    for cfg in (ModelConfig(), ModelConfig(layers=1, head_blocks=2, num_styles=5, audio_kernels=(3, 3),
                                           audio_dilations=(1, 2), context_frames=10, num_channels=7,
                                           head_dim=64, model_dim=64, heads=2, n_mels=40, chunk_frames=6),
                ModelConfig(audio_branch_dim=48, phone_bottleneck=43)):
        sd = {k: tuple(v.shape) for k, v in StreamingTalker(cfg).state_dict().items()}
        assert tensor_shapes(cfg) == sd


def test_every_architecture_field_has_bounds():
    """A new ModelConfig field needs its range in the card schema (shared/model_card.py)."""
    from dataclasses import fields

    from inference_core.shared.model_card import ARCH_FIELDS, ARCH_LISTS, ARCH_NUMBER_LISTS

    for f in fields(ModelConfig):
        assert f.name in ARCH_FIELDS or f.name in ARCH_LISTS or f.name in ARCH_NUMBER_LISTS or \
            f.name == "objective", f.name


@pytest.mark.parametrize("lie", ["head_dim 2**20", "fps 0 (card)", "styles not a list"])
def test_cli_gives_one_line_errors(tmp_path, random_model, lie):
    path = rewrite(random_model, tmp_path / "m.safetensors", LIES[lie][0])
    wav = tmp_path / "a.wav"
    from fixtures import syllable_audio, write_wav
    write_wav(wav, syllable_audio(1.0, seed=0)[0])
    for args in (["info", path], ["generate", wav, "-o", tmp_path / "o.npz", "--model", path, "--quiet"]):
        r = cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr


# -- row 16 and row 17 --------------------------------------------------------------------------
def test_fifo_model_path_does_not_hang(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_bundle(str(fifo))
    wav = tmp_path / "a.wav"
    from fixtures import syllable_audio, write_wav
    write_wav(wav, syllable_audio(1.0, seed=0)[0])
    for args in (["info", fifo], ["generate", wav, "-o", tmp_path / "o.npz", "--model", fifo]):
        t = time.monotonic()
        r = cli(*args, timeout=60)  # hung forever before
        assert r.returncode == 1 and "not a regular file" in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
        assert time.monotonic() - t < 60


@pytest.mark.parametrize("what", ["fifo", "huge card"])
def test_serve_reports_an_unusable_model_instead_of_dying_silently(tmp_path, random_model, what):
    from inference_core.shared.client import BridgeClient, BridgeError

    if what == "fifo":
        path = tmp_path / "model.safetensors"
        os.mkfifo(path)
        needle = "not a regular file"
    else:  # a card over 1 MiB: serve died before its hello
        path = rewrite(random_model, tmp_path / "m.safetensors", lambda c: c.update(notes="x" * (1 << 20)))
        needle = "model card is"
    with pytest.raises(BridgeError, match=needle):
        BridgeClient.launch(model=str(path), hello_timeout=60)


@pytest.mark.parametrize("name", ["x" * 5000, "a\0b.safetensors"])
def test_unusable_model_path_names_are_errors_not_oserrors(name):
    with pytest.raises(ModelFileError, match="cannot read"):
        load_bundle(name)
