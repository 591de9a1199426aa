"""Real files of every kind the CLI and server must take or refuse clearly."""

import numpy as np
import pytest
import soundfile as sf

from fixtures import syllable_audio, write_wav
from inference_core.audio.io import AudioError, load_file, probe, stream_file


@pytest.fixture(scope="module")
def speech():
    return syllable_audio(2.0, seed=3)[0]


@pytest.mark.parametrize("fmt,sub", [("wav", "PCM_16"), ("flac", None), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_formats_decode(tmp_path, speech, fmt, sub):
    p = tmp_path / f"a.{fmt}"
    sf.write(str(p), speech, 16000, subtype=sub, format=fmt.upper() if fmt != "ogg" else "OGG")
    out = load_file(p)
    assert abs(out.size - speech.size) < 16000 * 0.1  # mp3 pads a few ms
    assert np.abs(out).max() > 0.05


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_to_16k_without_changing_duration(tmp_path, rate):
    t = np.arange(int(rate * 1.5)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = load_file(write_wav(tmp_path / "t.wav", tone, rate))
    assert abs(out.size - 24000) <= 2
    spec = np.abs(np.fft.rfft(out[2000:18000]))
    assert abs(np.argmax(spec) * 16000 / 16000 - 440) < 3  # 1 Hz bins over 16000 samples


def test_stereo_downmixed(tmp_path, speech):
    stereo = np.stack([speech, np.zeros_like(speech)], axis=1)
    out = load_file(write_wav(tmp_path / "s.wav", stereo))
    np.testing.assert_allclose(out, speech / 2, atol=1e-4)


def test_empty_and_non_audio_and_missing(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        probe(tmp_path / "empty.wav")
    (tmp_path / "notes.wav").write_text("these are not samples")
    with pytest.raises(AudioError, match="not a readable audio file"):
        probe(tmp_path / "notes.wav")
    with pytest.raises(AudioError, match="not found"):
        probe(tmp_path / "missing.wav")
    write_wav(tmp_path / "zero.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="no audio"):
        probe(tmp_path / "zero.wav")


def test_truncated_file_decodes_what_is_there_or_reports(tmp_path, speech):
    p = write_wav(tmp_path / "full.flac", speech)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    try:
        out = load_file(cut)
    except AudioError as exc:
        assert "truncated" in str(exc) or "not a readable" in str(exc)
    else:
        assert 0 < out.size < speech.size


def test_nan_samples_reported_with_time(tmp_path):
    data = np.zeros(16000, np.float32)
    data[8000] = np.nan
    p = write_wav(tmp_path / "nan.wav", data, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"NaN.*0\.50 s"):
        load_file(p)


def test_long_file_streams_in_blocks_with_flat_memory(tmp_path):
    # 10 minutes at 8 kHz written block by block, read back as 16 kHz blocks.
    p = tmp_path / "long.wav"
    with sf.SoundFile(str(p), "w", 8000, 1, "PCM_16") as f:
        for i in range(60):
            f.write(syllable_audio(10.0, seed=i)[0][::2])
    sizes = [b.size for b in stream_file(p, block_seconds=10.0)]
    assert abs(sum(sizes) - 600 * 16000) <= 16
    assert max(sizes) <= 10 * 16000 * 1.02  # soxr output per block varies by its latency
    assert len(sizes) >= 60
    with pytest.raises(AudioError, match="limit"):
        load_file(p, max_seconds=60)
