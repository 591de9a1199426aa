"""The CLI as users run it: real processes, real files."""

import json
import subprocess
import sys

import numpy as np

from fixtures import make_toy_dataset, syllable_audio, write_wav


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "inference_core", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_generate_single_file_all_formats(tmp_path, random_model):
    wav = write_wav(tmp_path / "line.wav", np.repeat(syllable_audio(2.0, 1)[0], 3), 48000)
    r = cli("generate", wav, "-o", tmp_path / "out" / "line.npz", "--model", random_model,
            "--format", "npz,json,csv", "--quiet")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "out" / "line.npz")
    assert z["weights"].shape == (60, 52) and list(z["channels"])[17] == "jawOpen" and z["fps"] == 30
    j = json.loads((tmp_path / "out" / "line.json").read_text())
    assert len(j["frames"]) == 60 and j["channels"][0] == "eyeBlinkLeft"
    rows = (tmp_path / "out" / "line.csv").read_text().splitlines()
    assert rows[0].startswith("frame,time,eyeBlinkLeft") and len(rows) == 61
    assert "converted" in r.stderr  # 48 kHz input is reported as converted


def test_generate_batch_folder_keeps_going_after_a_bad_file(tmp_path, random_model):
    src = tmp_path / "lines"
    src.mkdir()
    write_wav(src / "a.wav", syllable_audio(1.0, 1)[0])
    write_wav(src / "b.flac", syllable_audio(1.0, 2)[0])
    (src / "c.wav").write_text("not audio")
    r = cli("generate", src, "-o", tmp_path / "out", "--model", random_model, "--quiet")
    assert r.returncode == 1
    assert "c.wav" in r.stderr and "1 of 3" in r.stderr
    assert (tmp_path / "out" / "a.npz").exists() and (tmp_path / "out" / "b.npz").exists()


def test_generate_reports_silence_and_missing_files(tmp_path, random_model):
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
    r = cli("generate", wav, "-o", tmp_path / "q.npz", "--model", random_model, "--quiet")
    assert r.returncode == 0 and "silent" in r.stderr
    r = cli("generate", tmp_path / "nope.wav", "-o", tmp_path / "n.npz", "--model", random_model)
    assert r.returncode == 1 and "not found" in r.stderr
    r = cli("generate", wav, "-o", tmp_path / "n.npz", "--model", tmp_path / "missing.safetensors")
    assert r.returncode == 1 and "Model file not found" in r.stderr


def test_info_and_init_model(tmp_path):
    out = tmp_path / "m.safetensors"
    assert cli("init-model", "--out", out).returncode == 0
    r = cli("info", out, "--verify")
    card = json.loads(r.stdout)
    assert card["verified"] and card["format"] == "streamingtalker-checkpoint"
    assert card["algorithmic_latency_ms"] <= 150


def test_bench_prints_the_promised_figures(random_model):
    r = cli("bench", "--json", "--model", random_model, "--short-seconds", 2, "--long-seconds", 6,
            "--repeats", 1)
    assert r.returncode == 0, r.stderr
    fig = json.loads(r.stdout)
    for key in ("rtf", "first_frame_latency_ms", "cost_ratio_long_vs_short", "cost_ratio_aged_vs_fresh",
                "peak_rss_mb_long", "threads", "rtf_cpu", "cpu_ratio_aged_vs_fresh", "loadavg_before",
                "server_start_cpu_s"):
        assert key in fig
    assert 170 < fig["frames_long"] <= 180 and fig["rtf"] > 0 and fig["cost_ratio_aged_vs_fresh"] > 0
    assert fig["rtf_cpu"] > 0 and fig["cpu_ratio_aged_vs_fresh"] > 0 and fig["server_start_cpu_s"] > 0
    assert fig["style"] == 0  # the card's default style (a random model's: generic)


def test_train_smoke_then_resume_and_regression(tmp_path):
    data = make_toy_dataset(tmp_path / "ds", n_train=4, n_val=1, seconds=3.0)
    out = tmp_path / "toy.safetensors"
    arch = json.dumps({"layers": 1, "head_blocks": 2, "head_dim": 128})
    r = cli("train", "--data", data, "--out", out, "--iters", 6, "--batch", 4, "--quiet",
            "--save-every", 3, "--arch", arch)
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", out).stdout)
    assert card["training"]["iterations"] == 6 and card["styles"][0] == "generic"
    assert card["training"]["val_speakers"] == ["spk9"]
    r = cli("train", "--data", data, "--out", out, "--iters", 8, "--batch", 4, "--quiet",
            "--resume", "--arch", arch)
    assert r.returncode == 0, r.stderr
    assert json.loads(cli("info", out).stdout)["training"]["iterations"] == 8
    reg = tmp_path / "reg.safetensors"
    r = cli("train", "--data", data, "--out", reg, "--iters", 3, "--batch", 4, "--quiet",
            "--objective", "regression", "--arch", arch)
    assert r.returncode == 0, r.stderr
    wav = write_wav(tmp_path / "x.wav", syllable_audio(1.0, 5)[0])
    a = cli("generate", wav, "-o", tmp_path / "r1.npz", "--model", reg, "--seed", 1, "--quiet")
    b = cli("generate", wav, "-o", tmp_path / "r2.npz", "--model", reg, "--seed", 2, "--quiet")
    assert a.returncode == b.returncode == 0
    # the regressor is deterministic: the seed does not matter
    np.testing.assert_array_equal(np.load(tmp_path / "r1.npz")["weights"], np.load(tmp_path / "r2.npz")["weights"])


def test_unknown_command_and_help():
    assert cli("--help").returncode == 0
    assert cli("frobnicate").returncode != 0


def test_finalize_model_records_defaults_quality_and_tuning(tmp_path, random_model):
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"model_scores": {"mouth_mae": 0.04}}))
    tuning = tmp_path / "tuning.json"
    tuning.write_text(json.dumps({"data": "data/tune_v1", "split": "tune", "utterances": 5,
                                  "selection": "lowest lve_mm", "best": {"steps": 2}, "rows": [{}]}))
    out = tmp_path / "final.safetensors"
    r = cli("finalize-model", random_model, "--out", out, "--defaults", '{"steps": 2, "temperature": 0.2}',
            "--eval", ev, "--tuning", tuning, "--name", "shipped")
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", out, "--verify").stdout)
    assert card["defaults"]["steps"] == 2 and card["defaults"]["temperature"] == 0.2
    assert card["quality"]["model_scores"]["mouth_mae"] == 0.04 and card["name"] == "shipped"
    assert card["defaults_tuning"]["split"] == "tune" and "rows" not in card["defaults_tuning"]
    bad = cli("finalize-model", random_model, "--out", tmp_path / "bad.safetensors", "--defaults", '{"steps": 0}')
    assert bad.returncode != 0 and "invalid defaults" in bad.stderr
    # a default style is a name the card lists, and how it was chosen is kept
    choice = tmp_path / "style.json"
    choice.write_text(json.dumps({"rule": "the rule", "chosen": "style2", "tts_lve_mm": {"generic": 4.0},
                                  "scan": {"data": "dev", "every": 6, "eligible_ranked": ["style2"], "figures": {}},
                                  "confirm": {"figures": {"style2": {"score": 0.8}}}}))
    styled = tmp_path / "styled.safetensors"
    r = cli("finalize-model", out, "--out", styled, "--defaults", '{"style": "style2"}', "--style-choice", choice)
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", styled).stdout)
    assert card["defaults"]["style"] == "style2" and card["defaults"]["steps"] == 2
    how = card["defaults_tuning"]["style"]
    assert how["chosen"] == "style2" and "figures" not in how["scan"]
    from inference_core.runtime.bundle import load_bundle
    from inference_core.shared.options import SessionOptions

    bundle = load_bundle(styled, backend="torch")
    assert bundle.style_index(SessionOptions.resolve(bundle.card).style) == 2  # sessions start in it
    bad = cli("finalize-model", out, "--out", tmp_path / "bad2.safetensors", "--defaults", '{"style": "nobody"}')
    assert bad.returncode != 0 and "no style 'nobody'" in bad.stderr
    bad = cli("finalize-model", out, "--out", tmp_path / "bad3.safetensors", "--defaults", '{"style": 7}')
    assert bad.returncode != 0 and "style index 7 out of range 0..2" in bad.stderr  # the sessions' own rule
    # articulation gains (scripts/fit_articulation.py) go into the card, checked as every reader checks them
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"gains": {"jawOpen": 1.5, "mouthPucker": 2.2}, "mean_seconds": 1.0, "rule": "r",
                               "data": "tune", "utterances": 3, "speakers": ["a"], "settings": {}, "model": "m"}))
    art = tmp_path / "art.safetensors"
    r = cli("finalize-model", out, "--out", art, "--articulation", fit)
    assert r.returncode == 0, r.stderr
    card = json.loads(cli("info", art).stdout)
    assert card["articulation"]["gains"] == {"jawOpen": 1.5, "mouthPucker": 2.2} and "model" not in card["articulation"]
    fit.write_text(json.dumps({"gains": {"jawOpen": 99}}))
    bad = cli("finalize-model", out, "--out", tmp_path / "bad4.safetensors", "--articulation", fit)
    assert bad.returncode != 0 and "articulation gains must be numbers" in bad.stderr
    assert not (tmp_path / "bad4.safetensors").exists()


def test_every_command_reads_the_same_option_flags():
    """generate and eval take the generation settings from one list (the options' fields): a flag a
    command has reaches the session, one it lacks stays None (the card decides)."""
    import argparse

    from inference_core.cli import build_parser
    from inference_core.shared.options import SessionOptions

    gen = build_parser().parse_args(["generate", "a.wav", "-o", "o.npz", "--steps-upper", "5", "--temperature", "0.3"])
    given = SessionOptions.given(gen)
    assert set(given) == {f for f in SessionOptions.__dataclass_fields__}
    assert (given["steps_upper"], given["temperature"], given["guidance"]) == (5, 0.3, None)
    only = SessionOptions.given(argparse.Namespace(steps_upper=6, model="m"))  # eval's flags are a subset
    assert only["steps_upper"] == 6 and only["intensity"] is None and "model" not in only
