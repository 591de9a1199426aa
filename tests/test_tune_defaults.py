"""scripts/tune_defaults.py: scores a grid on a chosen split and picks the lowest lip error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures import make_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_tune_defaults_scores_every_setting_and_picks_the_lowest_error(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=3, n_val=2, seconds=2.0)
    model = tmp_path / "m.safetensors"
    arch = json.dumps({"layers": 1, "head_blocks": 1, "head_dim": 64, "model_dim": 64, "audio_dim": 64})
    r = subprocess.run([sys.executable, "-m", "inference_core", "train", "--data", str(data), "--out", str(model),
                        "--iters", "2", "--batch", "2", "--quiet", "--arch", arch],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "tune.json"
    r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                        "--split", "val", "--steps", "1,2", "--guidance", "1.0,2.0", "--temperature", "0.3",
                        "--threads", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert {(r["steps"], r["guidance"]) for r in rows} == {(1, 1.0), (1, 2.0), (2, 1.0), (2, 2.0)}
    key = "lve_mm" if "lve_mm" in rows[0] else "mouth_mae"
    best = min(rows, key=lambda r: r[key])
    assert res["best"] == {"steps": best["steps"], "guidance": best["guidance"], "temperature": 0.3}
    assert res["split"] == "val" and res["utterances"] == 2
    assert "grid: steps {1,2} x guidance {1.0,2.0}" in res["selection"]
    # a split without utterances is an error, not an empty table
    r = subprocess.run([sys.executable, "scripts/tune_defaults.py", "--model", str(model), "--data", str(data),
                        "--split", "tune"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "no 'tune' utterances" in r.stderr


def test_upper_temperature_rule_wants_complete_blinks_at_the_reference_rate():
    sys.path.insert(0, str(ROOT / "scripts"))
    from tune_defaults import choose_upper

    def row(tu, rate, complete, fdd=0.1):
        return {"temperature_upper": tu, "blinks_per_minute": rate, "blink_completeness": complete,
                "blinks_per_minute_reference": 17.0, "upper_fdd": fdd}

    rows = [row(0.1, 2.3, 0.9), row(0.5, 9.0, 0.85), row(0.7, 15.0, 0.6), row(1.0, 20.0, 0.82)]
    assert choose_upper(rows)["temperature_upper"] == 1.0      # 20/17 beats 9/17; 15/min is too incomplete
    assert choose_upper([row(0.1, 0.0, None), row(0.3, 5.0, 0.5)]) is None  # nothing qualifies
    tie = [row(0.5, 17.0, 0.9, fdd=0.2), row(0.7, 17.0, 0.9, fdd=0.1)]
    assert choose_upper(tie)["temperature_upper"] == 0.7
