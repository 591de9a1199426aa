"""Each retarget preset end to end: a generated mesh with that rig's key names, Generate on real speech
with the bundled model through the real bridge, and the rig's mouth keys move with the speech.

Speech (espeak-ng) sits between a second of silence before and after, so "move with speech"
is measured: the mouth key opens during the words and rests in the silences.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from addon_helpers import arkit_mesh, curve_values, make_speech, reset_blender, write_wav  # noqa: E402
from rig_names import EXPECTED, RIGS  # noqa: E402

FPS = 30
PAD_S = 1.0


@pytest.fixture(scope="module")
def padded_speech(tmp_path_factory) -> tuple[Path, float]:
    from inference_core.audio.io import load_file

    d = tmp_path_factory.mktemp("preset_speech")
    raw = make_speech(d / "raw.wav", "Hello, this is a test of the streaming talker, with a few open vowels.")
    pcm = load_file(raw)
    pad = np.zeros(int(16000 * PAD_S), np.float32)
    return write_wav(d / "line.wav", np.concatenate([pad, pcm, pad])), len(pcm) / 16000


@pytest.fixture(scope="module")
def blender_with_bundled_model():
    from inference_core.shared.paths import DEFAULT_MODEL

    bpy_ = reset_blender(DEFAULT_MODEL)
    bpy_.context.scene.render.fps = FPS
    yield bpy_
    from streamingtalker_addon import state

    state.get().server.shutdown()


@pytest.mark.parametrize("rig", list(RIGS))
def test_preset_moves_mouth_with_speech(rig, padded_speech, blender_with_bundled_model):
    path, seconds = padded_speech
    preset_id, min_bound, mouth_key = EXPECTED[rig]
    st = bpy.context.scene.streamingtalker
    st.audio_file, st.add_strip, st.frame_start = str(path), False, 1
    st.target = arkit_mesh(f"rig_{rig}", names=RIGS[rig], extra=())
    assert bpy.ops.streamingtalker.generate(timeout=120) == {"FINISHED"}, st.status

    from streamingtalker_addon import state
    from streamingtalker_addon.logic import presets

    job = state.get().last_job
    assert job.binding.source == presets.BY_ID[preset_id].name  # chosen from the key names
    assert len(job.binding.channels_bound) >= min_bound
    curves = curve_values(st.target)
    assert set(curves) == set(job.binding.keys) and set(curves) <= set(RIGS[rig])
    v = curves[mouth_key][:, 1]
    pad = int(PAD_S * FPS)
    silence = np.r_[v[: pad - 5], v[-(pad - 5):]]
    speech = v[pad + 5: -(pad + 5)]
    assert len(v) == pytest.approx((seconds + 2 * PAD_S) * FPS, abs=3)
    assert speech.max() > 0.3 and speech.std() > 0.05, (rig, speech.max(), speech.std())
    assert silence.max() < 0.1 and speech.mean() > 2.5 * silence.mean(), (rig, silence.mean(), speech.mean())
