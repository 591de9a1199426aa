import json

import pytest
import torch

from inference_core.model.checkpoint import ModelFileError, load_checkpoint, read_card, save_checkpoint
from inference_core.runtime.bundle import load_bundle, random_bundle


def test_roundtrip_gives_identical_weights(tmp_path):
    b = random_bundle(seed=1)
    path = save_checkpoint(tmp_path / "m.safetensors", b.backend.model, b.card)
    model, card, extra = load_checkpoint(path)
    for k, v in b.backend.model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    assert card["channels"][17] == "jawOpen" and card["fps"] == 30
    assert json.loads(path.with_suffix(".json").read_text())["weights_sha256"] == card["weights_sha256"]
    assert extra == {}


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_bundle(str(tmp_path / "nope.safetensors"))
    with pytest.raises(ModelFileError, match="folder"):
        read_card(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model", b"\x10\x00\x00\x00\x00\x00\x00\x00{bad"])
def test_garbage_files(tmp_path, content):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load_bundle(str(p))


def test_truncated_file(tmp_path, random_model):
    p = tmp_path / "cut.safetensors"
    p.write_bytes(random_model.read_bytes()[:-1000])
    with pytest.raises(ModelFileError):
        load_bundle(str(p))


def test_tampered_weights_detected(tmp_path, random_model):
    p = tmp_path / "tampered.safetensors"
    data = bytearray(random_model.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the tensor data, header intact
    p.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_bundle(str(p))


def test_other_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(p))
    with pytest.raises(ModelFileError, match="not a StreamingTalker checkpoint"):
        load_bundle(str(p))


def _rewrite_card(src, dst, edit):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        card = json.loads(f.metadata()["streamingtalker.card"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(card)
    save_file(tensors, str(dst), metadata={"streamingtalker.card": json.dumps(card)})


def test_checkpoint_for_different_architecture(tmp_path, random_model):
    p = tmp_path / "arch.safetensors"
    _rewrite_card(random_model, p, lambda c: c["architecture"].update(layers=4))
    with pytest.raises(ModelFileError, match="missing tensors"):
        load_bundle(str(p))
    _rewrite_card(random_model, p, lambda c: c["architecture"].update(head_dim=128))
    with pytest.raises(ModelFileError, match="shape"):
        load_bundle(str(p))
    _rewrite_card(random_model, p, lambda c: c["architecture"].update(bogus=1))
    with pytest.raises(ModelFileError, match="architecture is invalid"):
        load_bundle(str(p))


def test_newer_format_version(tmp_path, random_model):
    p = tmp_path / "new.safetensors"
    _rewrite_card(random_model, p, lambda c: c.update(format_version=99))
    with pytest.raises(ModelFileError, match="newer"):
        read_card(p)


def test_card_without_weights_checksum_still_loads(tmp_path, random_model):
    p = tmp_path / "nosum.safetensors"
    _rewrite_card(random_model, p, lambda c: c.pop("weights_sha256"))
    assert load_bundle(str(p)).cfg.num_channels == 52
