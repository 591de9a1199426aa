"""Audio where Blender's ``aud`` is missing (the bpy 4.2 wheels are built without Audaspace).

Blender's Python has neither ``aud`` there nor soundfile or soxr: the add-on then decodes PCM WAV
through the core's stdlib ``wave`` reader and the numpy resampler, and refuses anything else with
a message that says what to do. Here those modules are blocked in the 5.0.1 ``bpy`` (which has
``aud``), so the fallback is compared with ``aud`` and soxr themselves; the bpy 4.2 run of the
matrix (scripts/bpy_lts.sh) exercises it for real, through the operators.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
import soxr

from addon_helpers import make_speech, write_wav
from inference_core.audio.io import load_file
from inference_core.audio.resample import SincResampler


def _block(monkeypatch, *names):
    for name in names:  # an import of a None entry raises ImportError, as where the module is absent
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 44099])
def test_sinc_resampler_matches_soxr_and_streams_exactly(rate):
    t = np.arange(int(rate * 2.0)) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    whole = SincResampler(rate, 16000).resample_chunk(x, last=True)
    ref = soxr.resample(x, rate, 16000, quality="HQ")
    assert len(whole) == len(ref)
    mid = slice(800, len(ref) - 800)  # away from the edges, where the two treat the silence outside differently
    assert np.abs(whole[mid] - ref[mid]).max() < 2e-4
    rs, parts, i = SincResampler(rate, 16000), [], 0
    rng = np.random.default_rng(rate)
    while i < len(x):  # blocks of any size, the last one flagged: the same samples as one call
        n = int(rng.integers(1, 6000))
        parts.append(rs.resample_chunk(x[i:i + n], last=i + n >= len(x)))
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_sinc_resampler_removes_what_would_alias():
    t = np.arange(48000) / 48000
    for freq, kept in ((3000, True), (9000, False), (15000, False)):  # 16 kHz output: Nyquist 8 kHz
        y = SincResampler(48000, 16000).resample_chunk(np.sin(2 * np.pi * freq * t).astype(np.float32), last=True)
        rms = float(np.sqrt(np.mean(y[500:-500] ** 2)))
        assert (rms > 0.7) if kept else (rms < 1e-2), (freq, rms)


def test_core_reads_wav_without_soundfile_or_soxr(tmp_path, monkeypatch):
    speech = make_speech(tmp_path / "speech.wav")  # espeak-ng: 22.05 kHz PCM
    with_libs = load_file(speech)
    _block(monkeypatch, "soundfile", "soxr")
    without = load_file(speech)
    assert abs(len(without) - len(with_libs)) <= 1  # soxr's stream rounds the last sample differently
    n = min(len(without), len(with_libs))
    a, b = without[:n], with_libs[:n]
    # the two filters' transition bands differ just below 8 kHz: measured 1.6 % relative RMS on this clip
    assert np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2)) < 0.04


@pytest.fixture()
def addon_audio():
    pytest.importorskip("bpy")
    from streamingtalker_addon.blender import audio
    return audio


def test_addon_decodes_wav_without_aud_like_aud_does(addon_audio, tmp_path, monkeypatch):
    speech = make_speech(tmp_path / "speech.wav")
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([load_file(speech)] * 2, axis=1), sr=48000)
    for path in (speech, stereo):
        by_aud = addon_audio.decode_file(path)
        window = addon_audio.decode_file(path, start_s=0.5, duration_s=1.0)
        with monkeypatch.context() as m:
            _block(m, "aud", "soundfile", "soxr")
            with pytest.raises(ImportError):
                import aud  # noqa: F401
            fallback = addon_audio.decode_file(path)
            np.testing.assert_array_equal(addon_audio.decode_file(path, start_s=0.5, duration_s=1.0),
                                          fallback[8000:24000])
        assert abs(len(fallback) - len(by_aud)) <= 2 and len(window) == 16000
        n = min(len(fallback), len(by_aud))
        corr = np.corrcoef(fallback[:n], by_aud[:n])[0, 1]
        assert corr > 0.999, corr  # the same signal as aud's decoder and resampler give
        assert abs(np.abs(fallback).max() - np.abs(by_aud).max()) < 0.02


@pytest.mark.parametrize("kind", ["flac", "float_wav", "ogg"])
def test_addon_without_aud_asks_for_pcm_wav(addon_audio, tmp_path, monkeypatch, kind):
    pcm = (0.3 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32)
    path = tmp_path / ("a.flac" if kind == "flac" else "a.ogg" if kind == "ogg" else "a.wav")
    sf.write(str(path), pcm, 16000, subtype="FLOAT" if kind == "float_wav" else None)
    assert len(addon_audio.decode_file(path)) > 15000  # aud reads it
    _block(monkeypatch, "aud", "soundfile", "soxr")
    with pytest.raises(addon_audio.AudioError) as err:
        addon_audio.decode_file(path)
    text = str(err.value)
    assert "'a." in text and "Audaspace" in text and "16-bit WAV" in text and "\n" not in text
