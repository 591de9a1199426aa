import json
import subprocess
import sys

import numpy as np
import pytest

from fixtures import make_toy_dataset
from inference_core.channels import ARKIT_52
from inference_core.evaluate import ICT_DEFAULT, ArkitFace, amplitude_jaw, phone_class


def test_top_level_import_does_not_load_torch():
    code = "import inference_core, inference_core.protocol, inference_core.bridge_client, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_phone_class_normalises_labels():
    assert phone_class("AA1") == "aa" and phone_class("p") == "p" and phone_class("UW0") == "uw"


def test_amplitude_jaw_follows_loudness():
    sr, fps = 16000, 30
    audio = np.concatenate([np.zeros(sr), 0.5 * np.ones(sr), np.zeros(sr)]).astype(np.float32)
    env = amplitude_jaw(audio, sr, fps, 90)
    assert env[:30].max() == 0 and env[40:60].min() > 0.4 and env[-1] < 0.05


@pytest.mark.skipif(not ICT_DEFAULT.exists(), reason="ICT FaceKit asset is not beside the checkout")
def test_ict_face_lip_geometry():
    face = ArkitFace()
    w = np.zeros((3, 52), np.float32)
    w[1, ARKIT_52.index("jawOpen")] = 1.0
    w[2, ARKIT_52.index("jawOpen")] = 1.0
    w[2, ARKIT_52.index("mouthClose")] = 1.0
    gap = face.lip_gap_mm(w)
    assert gap[0] < 2.0 and gap[1] > 5.0 and gap[2] < gap[1] / 2


def test_eval_cli_on_toy_data(tmp_path, random_model):
    data = make_toy_dataset(tmp_path / "ds", n_train=3, n_val=2, seconds=3.0)
    r = subprocess.run([sys.executable, "-m", "inference_core", "eval", "--model", str(random_model),
                        "--data", str(data), "--regressor", str(random_model), "--seeds", "2",
                        "--drift-minutes", "0.2", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["val_speakers"] == ["spk9"]
    for name in ("model_scores",):
        assert 0 <= res[name]["mouth_mae"] < 1 and res[name]["diversity"] > 0
    assert set(res["baselines"]) == {"amplitude_jaw", "regressor"}
    assert res["baselines"]["amplitude_jaw"]["diversity"] == 0
    assert res["drift"]["minutes"] >= 0.2
