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


def test_user_preset_saved_from_the_list_loaded_and_used(tmp_path, monkeypatch, padded_speech,
                                                         blender_with_bundled_model):
    """A rig with names no built-in preset knows: map it in the list, save it as a preset file, and
    the next character with those keys gets it automatically; loading a file copies it in."""
    from streamingtalker_addon.blender import preset_files
    from streamingtalker_addon.logic import retarget

    monkeypatch.setattr(preset_files, "user_dir", lambda: tmp_path / "user")
    st = bpy.context.scene.streamingtalker
    keys = ["Kiefer_auf", "Lachen_links", "Lachen_rechts", "Blinzeln"]
    st.target = first = arkit_mesh("German rig", names=keys, extra=())
    assert bpy.ops.streamingtalker.refresh_mapping() == {"FINISHED"}  # nothing matches: empty rows
    rows = first.streamingtalker.mapping
    assert len(rows) == 52 and not any(r.shape_key for r in rows)
    for r in rows:
        r.shape_key, r.enabled = {"jawOpen": "Kiefer_auf", "mouthSmileLeft": "Lachen_links",
                                  "mouthSmileRight": "Lachen_rechts", "eyeBlinkLeft": "Blinzeln",
                                  "eyeBlinkRight": "Blinzeln"}.get(r.channel, ""), True
        r.weight = 0.5 if r.channel.startswith("eyeBlink") else 1.0
    first.streamingtalker.use_mapping = True
    path = preset_files.presets_dir() / "german_rig.json"
    assert bpy.ops.streamingtalker.save_preset(filepath=str(path)) == {"FINISHED"}
    assert first.streamingtalker.preset == "user:german_rig"
    saved = retarget.preset_from_json(path.read_text(), "x")
    assert len(saved.rows) == 5 and {r.weight for r in saved.rows if r.key == "Blinzeln"} == {0.5}

    # another character with these keys: chosen automatically, and it talks
    st.target = second = arkit_mesh("German rig 2", names=keys, extra=())
    st.audio_file, st.add_strip = str(padded_speech[0]), False
    assert bpy.ops.streamingtalker.generate(timeout=120) == {"FINISHED"}, st.status
    from streamingtalker_addon import state

    assert state.get().last_job.binding.source == "german_rig"
    jaw = curve_values(second)["Kiefer_auf"][:, 1]
    assert jaw.max() > 0.3 and np.ptp(jaw) > 0.25

    # loading a file from elsewhere copies it into the user's presets and sets it on the mesh
    outside = tmp_path / "shared" / "studio rig.json"
    outside.parent.mkdir()
    studio = retarget.Preset("", "Studio rig", (retarget.Row("jawOpen", "Kiefer_auf"),))
    outside.write_text(retarget.preset_to_json(studio))
    assert bpy.ops.streamingtalker.load_preset(filepath=str(outside)) == {"FINISHED"}
    assert second.streamingtalker.preset == "user:studio_rig"
    assert (preset_files.presets_dir() / "studio_rig.json").is_file()
    enabled = [(r.channel, r.shape_key) for r in second.streamingtalker.mapping if r.enabled]
    assert enabled == [("jawOpen", "Kiefer_auf")]
    # a broken file is refused with one line, and the mesh keeps its preset
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(RuntimeError, match="not JSON"):
        bpy.ops.streamingtalker.load_preset(filepath=str(bad))
    assert second.streamingtalker.preset == "user:studio_rig"
    # the picker lists built-ins and the user's presets; choosing one stores it on the mesh
    from streamingtalker_addon.ui.preset_ops import preset_items

    ids = [item[0] for item in preset_items()]
    assert ids[:6] == ["AUTO", "arkit", "arkit_any", "cc4", "rpm", "vrm"] and "user:german_rig" in ids
    assert bpy.ops.streamingtalker.choose_preset(preset="AUTO") == {"FINISHED"}
    assert second.streamingtalker.preset == ""
