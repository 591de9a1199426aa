"""scripts/readout_openness.py: the openness a phone read-out of the audio features implies, scored as lip_metrics scores a lip gap."""

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


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    import soundfile as sf

    from inference_core.data.corpus.tts import speak_espeak

    out = tmp_path_factory.mktemp("lips")
    lines = [("a", "Bob made a map of the bay at noon.", "en-us+m3"), ("b", "Pam bought more apples today.", "en-us+f2")]
    for name, text, voice in lines:
        sp = speak_espeak(voice, text, 160, 50, 50)
        sf.write(out / f"{name}.wav", sp.audio, 16000, subtype="PCM_16")
        (out / f"{name}.json").write_text(json.dumps({"phones": [list(p) for p in sp.phones], "speaker": voice}))
    return out


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
