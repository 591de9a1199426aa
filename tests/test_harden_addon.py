"""Hardening seen from Blender (issue 18, rows 1 and 12): real bpy, the real bridge subprocess."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.timeout(300)]

from streamingtalker_addon import state as addon_state  # noqa: E402

from addon_helpers import arkit_mesh, curve_values, make_model, reset_blender  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model"))


@pytest.fixture()
def scene(model):
    reset_blender(model)
    yield bpy.context.scene
    addon_state.get().server.shutdown()


def test_generate_on_huge_levels_writes_only_finite_keys_and_warns(scene, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    wav = tmp_path / "huge.wav"
    sf.write(str(wav), (rng.standard_normal(32000) * 1e30).astype(np.float32), 16000, subtype="FLOAT")
    st = scene.streamingtalker
    st.target = arkit_mesh()
    st.audio_file = str(wav)
    assert bpy.ops.streamingtalker.generate() == {"FINISHED"}
    curves = curve_values(st.target)
    assert len(curves) == 52
    values = np.concatenate([c[:, 1] for c in curves.values()])
    assert values.size > 52 * 40 and np.isfinite(values).all()
    assert st.status.startswith("Done") and "exceeds full scale" in st.status
