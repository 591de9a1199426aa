"""Hardening of audio input (issue 18, rows 1, 9, 14, 16): absurd levels, absurd rates,
files cut short, files that are not files. Real files, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fixtures import syllable_audio
from inference_core.audio.io import MIN_SAMPLE_RATE, AudioError, probe, stream_file
from inference_core.audio.levels import LevelGuard


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "inference_core", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def _speech(seconds=3.0, seed=3):
    return syllable_audio(seconds, seed=seed)[0]


# -- row 1: huge but finite samples -------------------------------------------------------------
def test_level_guard_clips_and_says_how_much():
    g = LevelGuard(16000)
    quiet = g(np.full(16000, 0.5, np.float32))
    assert quiet.max() == 0.5 and g.warning() is None
    loud = np.zeros(16000, np.float32)
    loud[8000:] = 3e38
    out = g(loud)
    assert np.isfinite(out).all() and out.max() == 1.0
    w = g.warning()
    assert w is not None and "3e+38" in w and "25%" in w and "1.50 s" in w
    # resampling overshoot (< 1.1) is clipped without a warning
    g2 = LevelGuard(16000)
    assert g2(np.array([1.04, -1.05], np.float32)).tolist() == [1.0, -1.0] and g2.warning() is None


@pytest.mark.parametrize("scale, rate, channels", [(1e30, 16000, 1), (3.4e38, 44100, 2)])
def test_cli_huge_levels_give_finite_weights_and_a_warning(tmp_path, random_model, scale, rate, channels):
    rng = np.random.default_rng(0)
    noise = np.clip(rng.standard_normal((rate * 2, channels)) * scale, -3.4e38, 3.4e38).astype(np.float32)
    wav = tmp_path / "huge.wav"
    sf.write(str(wav), noise, rate, subtype="FLOAT")
    r = cli("generate", wav, "-o", tmp_path / "out.npz", "--model", random_model, "--quiet")
    assert r.returncode == 0, r.stderr
    w = np.load(tmp_path / "out.npz")["weights"]
    assert len(w) == 60 and np.isfinite(w).all()
    assert "exceeds full scale" in r.stderr and "clipped" in r.stderr


def test_non_finite_model_output_never_leaves_the_engine(tmp_path):
    """Finite weights can still overflow (motion_std 3e38): the engine refuses to emit such a frame."""
    import torch

    from inference_core.model.checkpoint import save_checkpoint
    from inference_core.runtime.bundle import random_bundle

    b = random_bundle(seed=0)
    model = b.backend.model
    with torch.no_grad():
        model.motion_std.fill_(3e38)
    card = dict(b.card, value_range=None)
    path = save_checkpoint(tmp_path / "overflow.safetensors", model, card)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), _speech(1.0), 16000)
    r = cli("generate", wav, "-o", tmp_path / "out.npz", "--model", path, "--quiet")
    assert r.returncode == 1 and not (tmp_path / "out.npz").exists()
    assert "NaN or infinite motion" in r.stderr and "Traceback" not in r.stderr


# -- row 9: absurd sample rates -----------------------------------------------------------------
@pytest.mark.parametrize("rate", [1, 100, MIN_SAMPLE_RATE - 1])
def test_rates_under_4khz_are_refused(tmp_path, rate):
    wav = tmp_path / f"r{rate}.wav"
    sf.write(str(wav), np.zeros(max(rate, 10), np.float32), rate, subtype="PCM_16")
    with pytest.raises(AudioError, match=f"{rate} Hz.*at least {MIN_SAMPLE_RATE} Hz"):
        probe(wav)


def test_cli_refuses_a_1hz_wav_at_once(tmp_path, random_model):
    wav = tmp_path / "one.wav"
    sf.write(str(wav), np.zeros(87, np.float32), 1, subtype="PCM_16")
    r = cli("generate", wav, "-o", tmp_path / "o.npz", "--model", random_model, "--quiet", timeout=60)
    assert r.returncode == 1 and "1 Hz" in r.stderr and not (tmp_path / "o.npz").exists()


def test_telephone_rate_still_accepted(tmp_path):
    wav = tmp_path / "tel.wav"
    sf.write(str(wav), _speech(1.0)[::2], 8000)
    assert abs(sum(len(b) for b in stream_file(wav)) - 16000) <= 1


# -- row 14: files cut short --------------------------------------------------------------------
def _cut(tmp_path, fmt, subtype, ext, seconds=12.0, rate=16000):
    pcm = np.concatenate([_speech(3.0, seed=i) for i in range(int(seconds // 3))])
    full = tmp_path / f"full.{ext}"
    sf.write(str(full), pcm, rate, format=fmt, subtype=subtype)
    raw = full.read_bytes()
    half = tmp_path / f"half.{ext}"
    half.write_bytes(raw[: len(raw) // 2])
    return full, half


@pytest.mark.parametrize("fmt, subtype, ext", [("FLAC", "PCM_16", "flac"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_cut_file_keeps_what_decodes_and_says_how_much_was_lost(tmp_path, fmt, subtype, ext):
    full, half = _cut(tmp_path, fmt, subtype, ext)
    notes: list[str] = []
    assert sum(len(b) for b in stream_file(full, warnings=notes)) / 16000 == pytest.approx(12.0, abs=0.06)
    assert notes == []
    got = sum(len(b) for b in stream_file(half, warnings=notes)) / 16000
    assert 4.0 < got < 8.0  # about half was kept
    assert len(notes) == 1 and "of the 12.00 s it declares" in notes[0]
    lost = float(notes[0].split(", ")[-1].split(" s lost")[0])
    assert lost == pytest.approx(12.0 - got, abs=0.01)


@pytest.mark.parametrize("subtype, ext", [("VORBIS", "ogg"), ("OPUS", "opus")])
def test_cut_ogg_is_reported(tmp_path, subtype, ext):
    full, half = _cut(tmp_path, "OGG", subtype, ext)
    notes: list[str] = []
    list(stream_file(full, warnings=notes))
    assert notes == []
    got = sum(len(b) for b in stream_file(half, warnings=notes)) / 16000
    assert got > 3.0 and len(notes) == 1 and "cut short" in notes[0] and f"{got:.2f} s decoded" in notes[0]


def test_cli_cut_flac_generates_the_intact_half_with_a_warning(tmp_path, random_model):
    _, half = _cut(tmp_path, "FLAC", "PCM_16", "flac")
    r = cli("generate", half, "-o", tmp_path / "o.npz", "--model", random_model, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "s lost" in r.stderr
    w = np.load(tmp_path / "o.npz")["weights"]
    assert 120 < len(w) < 240 and np.isfinite(w).all()


# -- row 16: not a regular file -----------------------------------------------------------------
def test_fifo_as_audio_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        probe(fifo)


@pytest.mark.parametrize("name", ["x" * 5000, "a\0b.wav"])
def test_unusable_path_names_are_errors_not_oserrors(name):
    with pytest.raises(AudioError, match="cannot read"):
        probe(name)
