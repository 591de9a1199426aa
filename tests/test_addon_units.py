"""Pure-logic parts of the add-on (numpy/stdlib; no Blender needed) and the keyframe writer."""

from __future__ import annotations

import numpy as np
import pytest

from streamingtalker_addon.client.core import ARKIT_52
from streamingtalker_addon.logic import audio_checks as audio
from streamingtalker_addon.logic import binding
from streamingtalker_addon.logic import framerate as motion
from streamingtalker_addon.logic import presets
from streamingtalker_addon.state import AddonState


# -- frame-rate conversion -------------------------------------------------------
@pytest.mark.parametrize("dst", [24.0, 25.0, 30.0, 60.0, 30000 / 1001])
def test_streaming_resample_equals_offline_and_interpolates(dst):
    rng = np.random.default_rng(0)
    src = rng.random((97, 5)).astype(np.float32)
    offline = motion.resample(src, 30.0, dst)
    assert len(offline) == motion.scene_frame_count(97, 30.0, dst)
    # chunked pushes of uneven sizes give the same frames, each exactly once
    r = motion.StreamResampler(30.0, dst, 5)
    parts, i = [], 0
    for n in [1, 3, 7, 2, 30, 1, 53]:
        parts.append(r.push(src[i:i + n]))
        i += n
    streamed = np.concatenate(parts)
    np.testing.assert_allclose(streamed, offline, atol=1e-6)
    # independent check: linear interpolation at each scene frame's time
    t = np.arange(len(offline)) / dst * 30.0
    for c in range(5):
        np.testing.assert_allclose(offline[:, c], np.interp(t, np.arange(97), src[:, c]), atol=1e-5)


def test_resample_counts_match_audio_length():
    # 10 s at 30 fps = 300 model frames -> 240 frames at 24 fps (t = 0 .. 9.967 s)
    assert motion.scene_frame_count(300, 30, 24) == 240
    assert motion.scene_frame_count(300, 30, 60) == 599
    assert motion.scene_frame_count(0, 30, 24) == 0
    assert motion.scene_frame_count(1, 30, 24) == 1


# -- binding ---------------------------------------------------------------------
def test_auto_bind_matches_case_and_separators_and_reports_unmapped():
    keys = ["Basis", "JawOpen", "mouth_close", "eyeBlink_L", "EYEBLINKRIGHT", "Smile"]
    b = presets.auto_bind(list(ARKIT_52), keys)
    bound = {ch: k for _, ch, k in b.pairs}
    assert bound == {"jawOpen": "JawOpen", "mouthClose": "mouth_close", "eyeBlinkLeft": "eyeBlink_L",
                     "eyeBlinkRight": "EYEBLINKRIGHT"}
    assert len(b.unmapped) == 48 and "mouthFunnel" in b.unmapped
    assert "4/52 channels bound" in b.summary(52)


def test_explicit_bind_ignores_stale_rows():
    rows = [("jawOpen", "MyJaw", True), ("mouthClose", "Gone", True), ("eyeBlinkLeft", "Blink", False),
            ("notAChannel", "MyJaw", True)]
    b = binding.explicit_bind(["jawOpen", "mouthClose", "eyeBlinkLeft"], rows, ["MyJaw", "Blink"])
    assert b.pairs == [(0, "jawOpen", "MyJaw")]
    assert b.unmapped == ["mouthClose", "eyeBlinkLeft"]


def test_refusal_message_is_actionable():
    text = binding.refusal_message("Cube", 0, "arkit", 8)
    assert "Cube" in text and "Add demo head" in text


# -- audio validation --------------------------------------------------------------
@pytest.mark.parametrize("pcm, needle", [
    (np.zeros(0, np.float32), "no audio samples"),
    (np.zeros(16000, np.float32), "silent"),
    (np.full(16000, np.nan, np.float32), "invalid"),
    (np.full(100, 0.5, np.float32), "shorter"),
])
def test_validate_pcm_rejects_unusable_audio(pcm, needle):
    with pytest.raises(audio.AudioError, match=needle):
        audio.validate_pcm(pcm, 16000, "'x.wav'")


# -- stopped sessions ------------------------------------------------------------
def test_background_wait_for_a_stopped_session_is_bounded(tmp_path):
    """A session that never ends (a server that keeps talking but never confirms the cancel) holds
    a background run back at most its stall timeout and a margin; then it is given up."""

    class NeverConfirms:
        stall_timeout = 0.2
        steps = 0

        def step(self, budget=0.02):
            self.steps += 1
            return True

    st = AddonState(tmp_path)
    session = NeverConfirms()
    st.hand_off(session)
    assert st.settle() and st.stopping == [session]
    st.wait_settled()
    assert st.stopping == [] and session.steps > 2 and not st.settle()
