"""scripts/gap_diagnosis.py: the lip gap against the phones, class by class, and against loudness."""

from __future__ import annotations

import json
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
