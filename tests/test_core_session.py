import numpy as np
import pytest

from inference_core.runtime.session import SessionError, SessionOptions, StreamingSession


def noise(seconds, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def run(bundle, audio, sizes, **opts):
    s = StreamingSession(bundle, SessionOptions(**opts))
    out, i, k = [], 0, 0
    while i < audio.size:
        n = sizes[k % len(sizes)]
        out.append(s.push(audio[i:i + n]))
        i += n
        k += 1
    out.append(s.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("sizes", [[160], [1, 7, 333], [16000 * 2], [4410, 16000 * 60]])
def test_streaming_equals_offline(random_bundle_loaded, sizes):
    audio = noise(4.3)
    offline = run(random_bundle_loaded, audio, [audio.size], seed=5)
    streamed = run(random_bundle_loaded, audio, sizes, seed=5)
    assert offline.shape == streamed.shape
    np.testing.assert_array_equal(offline, streamed)


@pytest.mark.parametrize("seconds", [0.01, 0.1, 1.0, 2.37])
def test_frame_count_matches_audio_length(random_bundle_loaded, seconds):
    audio = noise(seconds)
    out = run(random_bundle_loaded, audio, [777])
    assert out.shape == (int(round(audio.size * 30 / 16000)), 52)
    assert np.isfinite(out).all() and (out.size == 0 or (out.min() >= 0 and out.max() <= 1))


def test_frames_are_emitted_while_streaming_not_only_at_flush(random_bundle_loaded):
    s = StreamingSession(random_bundle_loaded)
    got = sum(len(s.push(noise(0.1, i))) for i in range(20))  # 2 s in 100 ms chunks
    # everything except the look-ahead tail (< 1 step + 40 ms) is out before flush
    assert got >= 60 - 6
    assert s.frames_emitted == got


def test_seed_controls_output(random_bundle_loaded):
    audio = noise(1.5)
    a = run(random_bundle_loaded, audio, [audio.size], seed=1)
    b = run(random_bundle_loaded, audio, [audio.size], seed=1)
    c = run(random_bundle_loaded, audio, [audio.size], seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_state_stays_bounded_on_long_streams(random_bundle_loaded):
    s = StreamingSession(random_bundle_loaded)
    sizes = []
    for i in range(40):
        s.push(noise(0.5, i))
        sizes.append((s._samples.size, np.size(s._audio_state), s._audio_hist.shape[0],
                      s._motion_hist.shape[0]))
    assert max(x[0] for x in sizes) < 16000 * 0.7  # never more than a slice + look-ahead
    assert len({x[1:] for x in sizes}) == 1


def test_intensity_and_smoothing(random_bundle_loaded):
    audio = noise(1.0)
    base = run(random_bundle_loaded, audio, [audio.size], seed=3)
    half = run(random_bundle_loaded, audio, [audio.size], seed=3, intensity=0.5)
    np.testing.assert_allclose(half, base * 0.5, atol=1e-6)
    smooth = run(random_bundle_loaded, audio, [audio.size], seed=3, smoothing=0.8)
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(base, axis=0)).mean()


def test_bad_audio_and_options(random_bundle_loaded):
    s = StreamingSession(random_bundle_loaded)
    with pytest.raises(SessionError, match="mono"):
        s.push(np.zeros((100, 2), np.float32))
    bad = noise(0.2)
    bad[50] = np.nan
    with pytest.raises(SessionError, match="NaN"):
        s.push(bad)
    with pytest.raises(SessionError, match="float"):
        s.push(np.zeros(100, np.int16))
    assert len(s.push(np.zeros(0, np.float32))) == 0
    for opts in ({"temperature": -0.1}, {"steps": 0}, {"guidance": -1}, {"intensity": 9}, {"smoothing": 1.0}, {"style": 99},
                 {"style": "nobody"}, {"seed": "x"}):
        with pytest.raises(SessionError):
            StreamingSession(random_bundle_loaded, SessionOptions.from_dict(opts))


def test_flush_twice_and_push_after_flush(random_bundle_loaded):
    s = StreamingSession(random_bundle_loaded)
    s.push(noise(0.5))
    s.flush()
    assert len(s.flush()) == 0
    with pytest.raises(SessionError):
        s.push(noise(0.1))


def test_temperature_zero_is_deterministic_across_seeds(random_bundle_loaded):
    audio = noise(1.0)
    a = run(random_bundle_loaded, audio, [audio.size], seed=1, temperature=0.0)
    b = run(random_bundle_loaded, audio, [audio.size], seed=2, temperature=0.0)
    np.testing.assert_array_equal(a, b)


def test_the_mouth_chain_does_not_see_the_upper_temperature(random_bundle_loaded, monkeypatch):
    """With the upper face hotter than the mouth, the mouth comes from a chain drawn at the
    mouth's temperature: the upper temperature changes the eyes and brows, never the lips.
    Drawn as one chain (per-region noise), the hot upper face also moves the lips."""
    from inference_core.shared.channels import MOUTH_CHANNELS

    mouth = np.array([c in MOUTH_CHANNELS for c in random_bundle_loaded.channels])
    assert mouth.any() and not mouth.all()
    audio = noise(3.0)
    assert StreamingSession(random_bundle_loaded, SessionOptions(temperature=0.2, temperature_upper=1.0)).chains == 2
    assert StreamingSession(random_bundle_loaded, SessionOptions(temperature=0.2, temperature_upper=0.2)).chains == 1
    a = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, temperature_upper=1.0)
    b = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, temperature_upper=2.0)
    np.testing.assert_array_equal(a[:, mouth], b[:, mouth])
    assert np.abs(a[:, ~mouth] - b[:, ~mouth]).max() > 1e-3
    monkeypatch.setattr(StreamingSession, "region_chains", False)
    c = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, temperature_upper=1.0)
    d = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, temperature_upper=2.0)
    assert np.abs(c[:, mouth] - d[:, mouth]).max() > 1e-3
    # one temperature: one chain, the same frames either way
    e = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, temperature_upper=0.2)
    monkeypatch.setattr(StreamingSession, "region_chains", True)
    np.testing.assert_array_equal(e, run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2))


def test_upper_face_steps_leave_the_mouth_alone(random_bundle_loaded):
    """More DDIM steps on the upper face's chain change the eyes and brows, never the lips; the
    mouth's row is the same as with equal steps (it moves only at its own times)."""
    from inference_core.shared.channels import MOUTH_CHANNELS

    mouth = np.array([c in MOUTH_CHANNELS for c in random_bundle_loaded.channels])
    audio = noise(3.0)
    opts = dict(seed=3, temperature=0.2, temperature_upper=1.0)
    a = run(random_bundle_loaded, audio, [audio.size], **opts)
    b = run(random_bundle_loaded, audio, [audio.size], steps_upper=6, **opts)
    np.testing.assert_allclose(a[:, mouth], b[:, mouth], atol=1e-6)
    assert np.abs(a[:, ~mouth] - b[:, ~mouth]).max() > 1e-3
    np.testing.assert_array_equal(a, run(random_bundle_loaded, audio, [audio.size], steps_upper=2, **opts))
    # steps alone make two chains (one temperature), and streaming still equals offline
    assert StreamingSession(random_bundle_loaded, SessionOptions(temperature=0.2, steps_upper=4)).chains == 2
    c = run(random_bundle_loaded, audio, [audio.size], seed=3, temperature=0.2, steps_upper=4)
    np.testing.assert_array_equal(c, run(random_bundle_loaded, audio, [160, 4001, 777], seed=3, temperature=0.2,
                                         steps_upper=4))


@pytest.mark.parametrize("steps", [(2, 4), (2, 3), (3, 1), (5, 5)])
def test_ddim_with_a_step_count_per_row_equals_one_run_per_row(steps):
    from inference_core.model.diffusion import ddim, head_times

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 6)).astype(np.float32) * 0.3
    calls = []

    def denoise(x, t):  # any x0-predictor that reads its time: rows independent
        calls.append(t)
        return np.tanh(x @ w) * (1 - t) + 0.1 * t

    x = rng.standard_normal((2, 6)).astype(np.float32)
    both = ddim(denoise, x, steps)
    assert len(calls) == len(head_times("diffusion", steps))  # one call per time of the union
    for r, s in enumerate(steps):
        np.testing.assert_allclose(both[r], ddim(denoise, x[r:r + 1], s)[0], rtol=1e-6, atol=1e-6)
    torch = pytest.importorskip("torch")
    tw = torch.from_numpy(w)
    out = ddim(lambda x, t: torch.tanh(x @ tw) * (1 - t) + 0.1 * t, torch.from_numpy(x), steps)
    np.testing.assert_allclose(out.numpy(), both, atol=1e-6)
