"""scripts/gap_diagnosis.py: the lip gap against the phones, class by class, and against loudness; and
scripts/readout_openness.py: the openness a phone read-out of the audio features implies, scored as
lip_metrics scores a lip gap."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIP_METRICS = ROOT.parent / "shared" / "tools" / "lip_metrics.py"
pytestmark = pytest.mark.skipif(not LIP_METRICS.exists(), reason="lip_metrics.py is not beside the checkout")
sys.path.insert(0, str(ROOT / "scripts"))

from fixtures import write_lipsync_folder  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_lipsync_folder(tmp_path_factory.mktemp("lips"))


def _loudness_jaw(audio: np.ndarray, meta: dict) -> tuple[np.ndarray, float]:
    """A mouth that follows loudness only (Bake Sound to F-Curves, in effect)."""
    from inference_core.shared.channels import ARKIT_52

    hop = 16000 // 30
    env = np.array([np.sqrt(np.mean(audio[i:i + hop] ** 2)) for i in range(0, len(audio), hop)])
    weights = np.zeros((len(env), len(ARKIT_52)), np.float32)
    weights[:, list(ARKIT_52).index("jawOpen")] = env / env.max()
    return weights, 0.5 / 30


def test_the_teacher_against_itself_and_a_loudness_jaw(folder, tmp_path):
    import gap_diagnosis as gd

    from inference_core.training.lipsync import load_items, teacher_weights

    lm = gd.load_lip_metrics(LIP_METRICS)
    items = load_items(folder)
    (tmp_path / "t").mkdir()
    teacher = gd.utterance_gaps(lm, items, teacher_weights(), tmp_path / "t", lm.DEFAULT_ICT)
    again = gd.utterance_gaps(lm, items, teacher_weights(), tmp_path / "t", lm.DEFAULT_ICT)   # from the cache
    assert all(np.array_equal(a["gap"], b["gap"]) for a, b in zip(teacher, again))
    assert len(list((tmp_path / "t").glob("*.npz"))) == 2
    same = gd.diagnose(lm, teacher, teacher)
    assert same["r"]["model"] == same["r"]["teacher"] > 0.3
    assert set(same["r_if_teacher"].values()) == {same["r"]["teacher"]}          # nothing to put back
    prof = same["phones"]
    assert prof["m"]["model_mean"] == prof["m"]["teacher_mean"] < -1.0            # closed lips: far below the mean
    assert prof["m"]["openness"] == 0.0 and prof["t"]["openness"] == lm.CONSONANT_OPENNESS

    jaw = gd.utterance_gaps(lm, items, _loudness_jaw, None, lm.DEFAULT_ICT)
    d = gd.diagnose(lm, jaw, teacher)
    assert d["loudness"]["model"]["partial_r"] > d["loudness"]["teacher"]["partial_r"] + 0.2
    assert d["r_if_teacher"]["bilabial"] > d["r"]["model"]                         # the jaw does not close for /p b m/
    assert d["phones"]["m"]["model_mean"] > d["phones"]["m"]["teacher_mean"]


def test_command_line_writes_the_report(folder, random_model, tmp_path):
    out = tmp_path / "gap.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gap_diagnosis.py"), "--model", str(random_model),
                        "--lipsync", str(folder), "--lip-metrics", str(LIP_METRICS), "--cache", str(tmp_path / "c"),
                        "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep == json.loads(r.stdout) and rep["utterances"] == 2
    assert set(rep["r_if_teacher"]) == {"vowels", "bilabial", "alveolar_t_d_n", "labiodental", "other_consonants",
                                        "silence"}
    assert {p.name for p in (tmp_path / "c").iterdir()} == {"random", "teacher"}


def _oracle(items, reverse: bool = False):
    """Posteriors that know each frame's aligned phone (optionally played backwards)."""
    from inference_core.data.phonemes import INVENTORY, frame_labels

    from inference_core.audio.io import load_file

    phones = {load_file(str(it["wav"]), 16000).size: it["meta"]["phones"] for it in items}

    def run(audio: np.ndarray, n: int) -> np.ndarray:
        ph = phones[audio.size]
        labels = frame_labels([p[0] for p in ph], [p[1] for p in ph], [p[2] for p in ph], n, 30.0)
        post = np.zeros((n, len(INVENTORY)))
        post[np.arange(n), [INVENTORY.index(lab) for lab in labels]] = 1.0
        return post[::-1] if reverse else post

    return run


def test_an_oracle_follows_the_target_and_ignorance_does_not(folder):
    import readout_openness as ro

    from inference_core.data.phonemes import INVENTORY
    from inference_core.training.lipsync import load_items

    lm = ro.load_lip_metrics(LIP_METRICS)
    items = load_items(folder)
    knows = ro.score(lm, items, _oracle(items))
    assert knows["utterances"] == 2 and knows["frames_right"] == 1.0
    assert knows["expected_openness_r_speech"] == knows["most_likely_openness_r_speech"] > 0.9
    langs = {str(it["meta"].get("language", "?")) for it in items}  # one language: its r is the whole's
    assert knows["expected_openness_r_by_language"] == dict.fromkeys(langs, knows["expected_openness_r_speech"])
    backwards = ro.score(lm, items, _oracle(items, reverse=True))
    assert backwards["expected_openness_r_speech"] < knows["expected_openness_r_speech"] - 0.5
    uniform = ro.score(lm, items, lambda audio, n: np.full((n, len(INVENTORY)), 1.0 / len(INVENTORY)))
    assert uniform["expected_openness_r_speech"] == 0.0          # a constant follows nothing
    assert uniform["frames_right"] < 0.5
    table = ro.openness_table(lm)
    assert table[INVENTORY.index("aa")] == 1.0 and table[INVENTORY.index("m")] == table[INVENTORY.index("sil")] == 0.0
    assert math.isclose(table[INVENTORY.index("t")], lm.CONSONANT_OPENNESS)


@pytest.mark.parametrize("layout", ["probe", "read_out"])
def test_command_line_reads_either_state_and_writes_the_report(folder, random_model, tmp_path, layout):
    import torch

    from inference_core.data.phonemes import INVENTORY
    from inference_core.model.checkpoint import read_card
    from inference_core.model.config import config_from_card

    dim = config_from_card(read_card(random_model)).model_dim
    g = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(len(INVENTORY), dim, generator=g), torch.zeros(len(INVENTORY))
    state = ({"probe": {"out.weight": weight, "out.bias": bias}} if layout == "probe"
             else {"read_out": {"weight": weight, "bias": bias}})
    torch.save(state, tmp_path / "x.state")
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readout_openness.py"), "--model", str(random_model),
                        "--read-out", str(tmp_path / "x.state"), "--lipsync", str(folder),
                        "--lip-metrics", str(LIP_METRICS), "--threads", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep == json.loads(r.stdout) and rep["utterances"] == 2
    assert -1.0 <= rep["expected_openness_r_speech"] <= 1.0 and 0.0 <= rep["frames_right"] <= 1.0


def test_posteriors_cover_every_frame_of_the_utterance(random_model, tmp_path):
    import readout_openness as ro
    import torch

    from inference_core.data.phonemes import INVENTORY
    from inference_core.model.checkpoint import read_card
    from inference_core.model.config import config_from_card

    dim = config_from_card(read_card(random_model)).model_dim
    torch.save({"read_out": {"weight": torch.randn(len(INVENTORY), dim), "bias": torch.zeros(len(INVENTORY))}},
               tmp_path / "x.state")
    run = ro.model_posteriors(str(random_model), str(tmp_path / "x.state"))
    for seconds in (0.3, 1.37):
        audio = np.random.default_rng(0).standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1
        n = int(math.ceil(seconds * 30))
        post = run(audio, n)
        assert post.shape == (n, len(INVENTORY))
        np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="no phonetic bottleneck"):
        ro.model_posteriors(str(random_model), ro.OWN_READ_OUT)(audio, n)


def test_a_bottlenecked_model_is_read_by_its_own_read_out(tmp_path):
    """``--read-out model``: the posteriors are the softmax of the bottleneck's own logits."""
    import readout_openness as ro
    import torch

    from inference_core.data.phonemes import INVENTORY
    from inference_core.model.checkpoint import base_card, save_checkpoint
    from inference_core.model.config import ModelConfig
    from inference_core.model.network import StreamingTalker
    from inference_core.shared.channels import ARKIT_52

    torch.manual_seed(0)
    model = StreamingTalker(ModelConfig(layers=1, head_blocks=1, head_dim=32, model_dim=32, audio_dim=32,
                                        phone_bottleneck=len(INVENTORY))).eval()
    path = tmp_path / "pb.safetensors"
    save_checkpoint(path, model, base_card(model.cfg, list(ARKIT_52), styles=["generic"]))
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    post = ro.model_posteriors(str(path), ro.OWN_READ_OUT)(audio, 30)
    logits = ro.model_features(str(path), logits=True)(audio, 30)
    assert post.shape == (30, len(INVENTORY))
    np.testing.assert_allclose(post, torch.softmax(torch.from_numpy(logits).double(), 1).numpy(), atol=1e-9)
