"""The shipped model itself: a real file, loaded and run the way users run it."""

from __future__ import annotations

import numpy as np

from inference_core.audio.io import load_file
from inference_core.shared.channels import ARKIT_52
from inference_core.model.checkpoint import read_card
from inference_core.shared.paths import DEFAULT_MODEL, DEMO_SPEECH
from inference_core.runtime.bundle import load_bundle
from inference_core.runtime.session import SessionOptions, StreamingSession


def test_card_states_what_it_was_trained_on_and_how_well_it_does():
    card = read_card(DEFAULT_MODEL)
    training = card["training"]
    assert training["trained"] and "synthetic" in training["data"]
    assert training["val_speakers"] and card["quality"]["model_scores"]["mouth_mae"] > 0
    assert DEFAULT_MODEL.stat().st_size < 25 * 2**20
    # every recorded voice it learned from is credited: at least as many as its last real-speech
    # round trained on, none of them a held-out speaker, each with its licence
    credits = training["voice_credits"]
    real = [d for d in training["datasets"] if d["dataset"] != "corpus_v1"]
    assert real and len(credits) >= max(d["train_speakers"] for d in real)
    held = {s for d in real for s in d["held_out_speakers"]}
    assert not [c for c in credits if c["voice"].rsplit("-", 1)[0] in held]
    assert all(c["licence"] and "Debian package" in c["attribution"] for c in credits)


def test_mouth_follows_speech_on_the_bundled_clip():
    bundle = load_bundle()
    sr = 16000
    audio = load_file(DEMO_SPEECH, sr)
    s = StreamingSession(bundle, SessionOptions.from_dict(dict(bundle.card["defaults"], seed=0)))
    out = np.concatenate([s.push(audio), s.flush()])
    assert out.shape == (int(round(len(audio) / sr * 30)), 52) and np.isfinite(out).all()
    hop = sr / 30
    rms = np.array([np.sqrt(np.mean(audio[int(f * hop):int((f + 1) * hop)] ** 2)) for f in range(len(out))])
    speech = rms > 0.1 * rms.max()
    quiet = rms < 0.003 * rms.max()
    assert speech.sum() > 60 and quiet.sum() > 15  # the clip has speech and a pause
    jaw = out[:, ARKIT_52.index("jawOpen")]
    assert jaw[speech].mean() > 3 * max(jaw[quiet].mean(), 0.01)
    # lips close inside speech too (bilabials), not only in the pauses
    close = out[:, ARKIT_52.index("mouthClose")] + out[:, ARKIT_52.index("mouthPressLeft")]
    assert (close[speech] > 0.1).mean() > 0.02
