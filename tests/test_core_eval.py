import json
import subprocess
import sys

import numpy as np
import pytest

from fixtures import make_toy_dataset
from inference_core.shared.channels import ARKIT_52, MOUTH_CHANNELS
from inference_core.training.evaluate import ICT_DEFAULT, ArkitFace, Predictor, amplitude_jaw, phone_class, score


def test_top_level_import_does_not_load_torch():
    code = "import inference_core, inference_core.shared.protocol, inference_core.shared.client, sys; print('torch' in sys.modules)"
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
    assert set(res["model_scores"]["mouth_mae_per_channel"]) == set(MOUTH_CHANNELS)
    assert res["baselines"]["amplitude_jaw"]["diversity"] == 0
    drift = res["drift"]
    assert drift["minutes"] >= 0.2 and len(drift["stream_vs_clips_per_minute"]) == len(drift["mouth_mae_per_minute"])
    assert drift["stream_vs_clips_all"] > 0


def test_eval_scores_another_split_with_the_baseline_fitted_elsewhere(tmp_path, random_model):
    train = make_toy_dataset(tmp_path / "train", n_train=3, n_val=1, seconds=3.0)
    from inference_core.data.format import Dataset, DatasetWriter

    src = Dataset(train)
    w = DatasetWriter(tmp_path / "tune", 30, 16000, list(ARKIT_52), source="toy tune split")
    for e in src.entries("val"):
        u = src.load(e)
        u.split = "tune"
        w.add(u)
    w.close()
    args = [sys.executable, "-m", "inference_core", "eval", "--model", str(random_model), "--data",
            str(tmp_path / "tune"), "--split", "tune", "--seeds", "1", "--drift-minutes", "0", "--json"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--train-data" in r.stderr  # nothing to fit the amplitude baseline on
    r = subprocess.run(args + ["--train-data", str(train)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["split"] == "tune" and res["val_utterances"] == 1 and "amplitude_jaw" in res["baselines"]


def test_drift_stream_keeps_audio_and_motion_aligned_across_seams():
    """An exact frame-local predictor has zero error in the long stream too.

    Clip motion is rounded from its audio length, so it can claim up to half a
    frame more than its audio: concatenating naively shifts audio against motion
    a little at every seam and fakes a growing 'drift'."""
    from inference_core.data.format import Utterance
    from inference_core.training.evaluate import Predictor, aligned_cut, drift

    sr, fps, jaw = 16000, 30, ARKIT_52.index("jawOpen")

    def frame_rms(audio: np.ndarray, n_frames: int) -> np.ndarray:
        edges = [int(round(f * sr / fps)) for f in range(n_frames + 1)]
        return np.array([np.sqrt(np.mean(audio[a:b] ** 2)) if b > a else 0.0
                         for a, b in zip(edges[:-1], edges[1:])], np.float32)

    def motion_for(audio: np.ndarray, n_frames: int) -> np.ndarray:
        m = np.zeros((n_frames, len(ARKIT_52)), np.float32)
        m[:, jaw] = frame_rms(np.pad(audio, (0, sr)), n_frames)
        return m

    rng = np.random.default_rng(0)
    utts = []
    for i in range(12):
        n = int(rng.integers(2 * sr, 4 * sr))  # not a whole number of frames
        audio = (rng.standard_normal(n) * rng.uniform(0.05, 0.5, size=n // 400 + 1).repeat(400)[:n]).astype(np.float32)
        frames = int(round(n / sr * fps))
        utts.append(Utterance(f"u{i}", "s", "val", audio, motion_for(audio, frames)))
    assert any(round(len(u.audio) / sr * fps) * sr / fps > len(u.audio) for u in utts)  # the hard case is present

    from types import SimpleNamespace

    pred = Predictor("exact", lambda u, seed: motion_for(u.audio, int(len(u.audio) * fps // sr)))
    res = drift(pred, utts, SimpleNamespace(sample_rate=sr, fps=fps, channels=list(ARKIT_52)), minutes=1.1)
    assert len(res["mouth_mae_per_minute"]) == 1
    assert res["mouth_mae_per_minute"][0] < 1e-6 and res["clip_mouth_mae_per_minute"][0] < 1e-6
    assert aligned_cut(32300, 61, sr, fps) == (32000, 60)


def test_score_of_the_reference_itself_has_no_error_and_the_reference_contrasts(tmp_path):
    """Per-channel mouth error and the reference's own rounding/spread contrast: a predictor
    that returns the reference scores 0 everywhere and exactly the reference's contrasts; one
    that is off on jawOpen only shows the error on that channel."""
    from inference_core.data.format import Dataset

    ds = Dataset(make_toy_dataset(tmp_path / "ds", n_train=1, n_val=2, seconds=3.0))
    utts = [ds.load(e) for e in ds.entries("val")]
    exact = score(Predictor("ref", lambda u, seed: u.motion.copy()), utts, ds, None, seeds=1)
    assert exact["mouth_mae"] == 0 and set(exact["mouth_mae_per_channel"].values()) == {0.0}
    assert exact["rounding_contrast"] == pytest.approx(exact["rounding_contrast_reference"])
    assert exact["spread_contrast"] == pytest.approx(exact["spread_contrast_reference"])
    assert exact["jaw_std_ratio"] == pytest.approx(1.0) and exact["mouth_speed_ratio"] == pytest.approx(1.0)
    jaw = ds.channels.index("jawOpen")

    def off(u, seed):
        m = u.motion.copy()
        m[:, jaw] += 0.1
        return m

    res = score(Predictor("off", off), utts, ds, None, seeds=1)
    per = res["mouth_mae_per_channel"]
    assert per["jawOpen"] == pytest.approx(0.1, abs=1e-4)
    assert all(v == 0 for k, v in per.items() if k != "jawOpen")
    assert res["jaw_std_ratio"] == pytest.approx(1.0)  # an offset is an error, not a change of liveliness

    def muted(u, seed):
        """What a mean predictor does: half the jaw's swing, the motion low-passed."""
        m = u.motion.copy()
        m[:, jaw] = m[:, jaw].mean() + 0.5 * (m[:, jaw] - m[:, jaw].mean())
        kernel = np.ones(5) / 5
        return np.stack([np.convolve(np.pad(c, 2, mode="edge"), kernel, "valid") for c in m.T], 1)

    res = score(Predictor("muted", muted), utts, ds, None, seeds=1)
    assert 0.3 < res["jaw_std_ratio"] < 0.5 and res["mouth_speed_ratio"] < 0.8


def test_blink_and_upper_face_scores_tell_a_stare_from_blinks():
    from inference_core.training.evaluate import blinks, upper_face_scores

    ch = list(ARKIT_52)
    fps, n = 30, 30 * 60
    ref = np.zeros((n, 52), np.float32)
    for start in range(15, n - 10, 90):  # 20 blinks a minute, each closing fully
        ref[start:start + 6, [ch.index("eyeBlinkLeft"), ch.index("eyeBlinkRight")]] = [[0.5], [0.9], [1], [1], [0.6], [0.3]]
    half = ref * 0.6                      # the same blinks, never reaching 0.8
    stare = np.zeros_like(ref)
    assert len(blinks(ref, ch)) == 20 and min(blinks(ref, ch)) >= 0.8
    s = upper_face_scores([ref], [ref], ch, fps)
    assert s["blinks_per_minute"] == pytest.approx(20) and s["blink_completeness"] == 1.0 and s["upper_fdd"] == 0
    h = upper_face_scores([half], [ref], ch, fps)
    assert h["blinks_per_minute"] == pytest.approx(20) and h["blink_completeness"] == 0.0
    z = upper_face_scores([stare], [ref], ch, fps)
    assert z["blinks_per_minute"] == 0 and z["upper_std_ratio"] == 0 and z["upper_fdd"] > h["upper_fdd"] > 0


LIP_METRICS = ICT_DEFAULT.parents[2] / "tools" / "lip_metrics.py"


@pytest.mark.skipif(not LIP_METRICS.exists(), reason="lip_metrics.py is not beside the checkout")
def test_lipsync_report_on_phone_aligned_speech(tmp_path, random_model):
    """eval --lipsync runs lip_metrics.py for each predictor and group; the teacher (the rules on
    the true phones) closes the lips on /p b m/ and a random model does not match it."""
    import soundfile as sf

    from inference_core.data.corpus.tts import speak_espeak

    folder = tmp_path / "real"
    folder.mkdir()
    lines = [("a", "Bob made a map of the bay.", "en-us+m3", "M"), ("b", "Pam bought more apples.", "en-us+f2", "F")]
    for name, text, voice, sex in lines:
        sp = speak_espeak(voice, text, 160, 50, 50)
        sf.write(folder / f"{name}.wav", sp.audio, 16000, subtype="PCM_16")
        (folder / f"{name}.json").write_text(json.dumps({"phones": [list(p) for p in sp.phones], "speaker": voice,
                                                         "language": "en", "sex": sex}))
    r = subprocess.run([sys.executable, "-m", "inference_core", "eval", "--model", str(random_model),
                        "--lipsync", "real", "--lip-metrics", str(LIP_METRICS), "--json"],  # a relative folder
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rs = json.loads(r.stdout)["real_speech"]
    assert set(rs["predictors"]) == {"model", "amplitude_jaw", "teacher"}
    teacher = rs["predictors"]["teacher"]
    assert set(teacher) == {"all", "speaker:en-us+m3", "speaker:en-us+f2", "language:en", "sex:M", "sex:F"}
    assert teacher["all"]["bilabial_closure_rate"] >= 0.8 and teacher["all"]["n_bilabial"] >= 6
    assert rs["predictors"]["amplitude_jaw"]["all"]["bilabial_closure_rate"] < teacher["all"]["bilabial_closure_rate"]
    assert set(rs["sex_gap"]["teacher"]) >= {"bilabial_closure_rate", "rounding_ratio"}


def test_eval_runs_the_model_in_its_card_default_style(tmp_path):
    """eval and the lip-sync report measure what users get: the card's default style, unless
    --style says otherwise (they used to force the generic style)."""
    from inference_core.model.checkpoint import save_checkpoint
    from inference_core.runtime.bundle import random_bundle
    from inference_core.training import lipsync
    from inference_core.training.evaluate import model_predictor

    import torch

    b = random_bundle(seed=0, num_styles=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a fresh head ignores its condition (zero-initialised modulation): wake it
        for name, p in b.backend.model.named_parameters():
            if p.dim() >= 2 and any(k in name for k in ("mod", "style", "out")):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    card = dict(b.card, defaults=dict(b.card.get("defaults") or {}, style="style2"))
    path = tmp_path / "styled.safetensors"
    save_checkpoint(path, b.backend.model, card)
    audio = (0.1 * np.sin(np.linspace(0, 400, 16000))).astype(np.float32)
    utt = type("U", (), {"audio": audio})()
    default = model_predictor(str(path), backend="torch").fn(utt, 0)
    assert np.array_equal(default, model_predictor(str(path), backend="torch", style=2).fn(utt, 0))
    assert not np.array_equal(default, model_predictor(str(path), backend="torch", style="generic").fn(utt, 0))
    weights, _ = lipsync.model_weights(str(path), "torch")(audio, {})
    assert np.array_equal(weights, default)
