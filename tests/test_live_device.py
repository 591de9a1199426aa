"""Live mode through a real audio stack: speech played into a capture device that PortAudio opens.

The device is a private PulseAudio server's null-sink monitor, the default ALSA input through
ALSA's pulse plugin (tests/virtual_mic.py): PortAudio, sounddevice, the server's live capture,
the bridge's live messages and the add-on's live driver all run for real, at the speed of a
microphone. Speed itself is a benchmark's business: these tests hold the pacing (frames can never
run ahead of the clock, and their count matches the time captured), that frames stream while the
speech plays, that the speech reaches the model, that ``live_stop`` releases the device, and that
a missing device, a device that disappears and a busy capture give clear errors.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import virtual_mic
from addon_helpers import make_speech, reference_frames
from inference_core.audio.io import load_file
from inference_core.shared.channels import ARKIT_52
from inference_core.shared.client import BridgeClient
from inference_core.shared.paths import DEFAULT_MODEL
from inference_core.shared.protocol import Err

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(bool(virtual_mic.missing()), reason=virtual_mic.missing() or "ok")]

FPS = 30
JAW = ARKIT_52.index("jawOpen")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    text = "Papa bought a big blue balloon, and we all watched it float away over the hill."
    return make_speech(tmp_path_factory.mktemp("live") / "speech.wav", text)


@pytest.fixture()
def mic(monkeypatch):
    with virtual_mic.VirtualMic() as m:
        for key, value in m.env.items():  # the server (a child) reads the ALSA config from its environment
            monkeypatch.setenv(key, value)
        yield m


def _launch() -> BridgeClient:
    return BridgeClient.launch(model=str(DEFAULT_MODEL), threads=1)  # the shipped model: speech moves its jaw


class Capture:
    """Frames of the live session as they arrive, with their arrival times (s after ``live_started``)."""

    def __init__(self, client: BridgeClient):
        self.client = client
        self.frames: list[np.ndarray] = []
        self.arrivals: list[tuple[float, int]] = []  # (time, frames so far)
        self.others: list = []
        self.t0 = 0.0

    def start(self, **fields) -> dict:
        self.client.send("live_start", **fields)
        msg = self._until({"live_started"}, 30)
        self.t0 = time.monotonic()
        return msg.fields

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.frames)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._take(self.client.poll(0.05))

    def running(self, timeout: float = 30.0) -> float:
        """Wait for the first frames: the device delivers (a sound server starts a capture in about a
        second, and what it plays before that is not captured). Returns when, after ``live_started``."""
        deadline = time.monotonic() + timeout
        while not self.frames and time.monotonic() < deadline:
            self.pump(0.05)
        assert self.frames, f"no frames within {timeout} s of live_started; other messages: {self.others[-5:]}"
        return self.arrivals[0][0]

    def stop(self):
        self.client.send("live_stop")
        return self._until({"live_stopped"}, 60)

    def _until(self, types: set[str], timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.client.poll(0.1)
            if msg is not None and msg.type in types:
                return msg
            self._take(msg)
        raise AssertionError(f"no {types} within {timeout} s; other messages: {self.others[-5:]}")

    def _take(self, msg) -> None:
        if msg is None:
            return
        if msg.type == "frames" and msg.get("session") == "live":
            assert msg.get("start") == self.count  # in order, never revised
            self.frames.append(np.frombuffer(msg.payload, "<f4").reshape(msg.get("count"), msg.get("channels")))
            self.arrivals.append((time.monotonic() - self.t0, self.count))
        else:
            self.others.append((msg.type, dict(msg.fields)))

    def all(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros((0, len(ARKIT_52)), np.float32)


def test_live_microphone_streams_speech_from_a_real_device(mic, speech):
    # what the model makes of this speech, sent as a file through the bridge: the live output must follow it
    reference = reference_frames(DEFAULT_MODEL, load_file(speech), {"seed": 0})[:, JAW]
    client = _launch()
    try:
        cap = Capture(client)
        assert cap.start(seed=0)["input"] == "microphone: default"
        assert mic.capture_streams() == 1  # PortAudio holds a real capture stream on the sound server
        t_first = cap.running()
        cap.pump(0.7)  # room silence first
        player = mic.play(speech)
        before_speech, messages = cap.count, len(cap.arrivals)  # made from audio captured before the speech
        while player.poll() is None:
            cap.pump(0.1)
        assert player.returncode == 0, player.stderr.read()
        during_speech = len(cap.arrivals) - messages
        cap.pump(1.0)
        t_stop = time.monotonic() - cap.t0
        stopped = cap.stop()
        # live_stop is clean: every frame came before live_stopped, none after; the device is released
        assert stopped.get("frames") == cap.count
        cap.pump(0.5)
        assert cap.count == stopped.get("frames") and not [m for m in cap.others if m[0] == "error"]
        assert mic.capture_streams() == 0
        lag = [t - n / FPS for t, n in cap.arrivals]  # how far the frames trail the wall clock
        print(f"live: {cap.count} frames, first after {t_first:.2f} s, stopped at {t_stop:.2f} s, "
              f"{len(cap.arrivals)} messages; lag behind the clock {lag[0]:.2f} s at the start, "
              f"{lag[-1]:.2f} s at the end (max {max(lag):.2f} s)")
        # paced by the device's clock: never ahead of real time (an unpaced source, such as ALSA's
        # null plugin, runs far ahead), and as many frames as the time captured since the device started
        assert all(n <= FPS * (t + 0.5) for t, n in cap.arrivals), cap.arrivals[:10]
        assert FPS * (t_stop - t_first) - 6 <= cap.count <= FPS * (t_stop + 0.5), (cap.count, t_first, t_stop)
        # real time: frames streamed while the speech played, and the lag did not grow (generous bound)
        assert during_speech >= 10
        assert lag[-1] - lag[0] < 1.5
        # the speech reached the model: the jaw follows the file's own output, after the silence
        jaw = cap.all()[:, JAW]
        corr = [np.corrcoef(jaw[k:k + len(reference)], reference)[0, 1] for k in range(len(jaw) - len(reference) + 1)]
        best = int(np.argmax(corr))
        print(f"jawOpen against the file's output: correlation {corr[best]:.3f} at frame {best} "
              f"(speech played from frame ~{before_speech}); median over other offsets {np.median(corr):.3f}")
        assert corr[best] > 0.6 and best >= before_speech - 3
        assert np.isfinite(cap.all()).all()
        # the server is fine and the device opens again
        client.send("ping")
        assert client.wait_for({"pong"}, 10)
        again = Capture(client)
        again.start(seed=1)
        again.running()
        assert again.stop().get("frames") == again.count > 0 and mic.capture_streams() == 0
    finally:
        client.close()


def test_busy_capture_is_refused_clearly_and_the_first_keeps_going(mic):
    """The server captures one device at a time: a second live_start says so and changes nothing.

    (A device held exclusively by another program, ALSA's EBUSY, cannot be made without a sound card
    here: the sound server shares its sources. That case is the message test below.)"""
    client = _launch()
    try:
        cap = Capture(client)
        cap.start(seed=0)
        cap.running()
        client.send("live_start", seed=0)
        deadline = time.monotonic() + 10
        while not any(m[0] == "error" for m in cap.others) and time.monotonic() < deadline:
            cap.pump(0.1)
        err = next(m[1] for m in cap.others if m[0] == "error")
        assert err["code"] == Err.SESSION_ACTIVE and "live capture is already running" in err["message"]
        before = cap.count
        cap.pump(1.0)
        assert cap.count > before and mic.capture_streams() == 1  # the first capture goes on
        assert cap.stop().get("frames") == cap.count
    finally:
        client.close()


def test_missing_device_and_no_device_give_clear_errors(mic, monkeypatch, tmp_path):
    client = _launch()
    try:
        client.send("live_start", device="no-such-microphone")
        msg = client.poll(30)
        assert msg.type == "error" and msg.get("code") == Err.DEVICE
        assert "no audio input matches 'no-such-microphone'" in msg.get("message")
        assert "'default'" in msg.get("message")  # and the inputs there are
        client.send("ping")
        assert client.wait_for({"pong"}, 10)
    finally:
        client.close()
    # a machine whose only input is gone (its sound server is not running): PortAudio finds none
    conf = tmp_path / "asound.conf"
    conf.write_text(f'pcm.!default {{ type pulse; server "unix:{tmp_path}/no-server" }}\n'
                    f'ctl.!default {{ type pulse; server "unix:{tmp_path}/no-server" }}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{virtual_mic.SYSTEM_ALSA_CONF}:{conf}")
    client = _launch()
    try:
        client.send("live_start")
        msg = client.poll(30)
        assert msg.type == "error" and msg.get("code") == Err.DEVICE
        assert "no audio input device" in msg.get("message")
        client.send("ping")
        assert client.wait_for({"pong"}, 10)
    finally:
        client.close()


def test_device_that_disappears_mid_capture_is_reported(mic):
    client = _launch()
    try:
        cap = Capture(client)
        cap.start(seed=0)
        cap.running()
        mic.proc.kill()  # the sound server dies, as when a USB microphone is pulled out
        mic.proc.wait(10)
        stopped = cap._until({"live_stopped"}, 30)
        err = next(m[1] for m in cap.others if m[0] == "error")
        assert err["code"] == Err.DEVICE and "stopped delivering sound" in err["message"], err
        assert stopped.get("frames") == cap.count
        client.send("ping")
        assert client.wait_for({"pong"}, 10)
    finally:
        client.close()


def test_busy_device_message_names_the_device():
    """PortAudio's paDeviceUnavailable (what ALSA's EBUSY becomes) reads as 'busy', with what to do."""
    sd = pytest.importorskip("sounddevice")
    from inference_core.runtime.live import _open_error

    exc = sd.PortAudioError("Error opening InputStream: Device unavailable", -9985)
    text = _open_error("USB Mic", exc)
    assert text.startswith("the audio input 'USB Mic' is busy: another program is using it")
    other = _open_error("USB Mic", sd.PortAudioError("Invalid sample rate", -9997))
    assert other.startswith("could not open the audio input 'USB Mic': Invalid sample rate")


# -- the add-on's live driver, in Blender, on the same device -----------------------------------------
@pytest.fixture()
def blender():
    bpy = pytest.importorskip("bpy")
    from addon_helpers import reset_blender
    from streamingtalker_addon import state
    reset_blender(DEFAULT_MODEL)
    bpy.context.scene.render.fps = 24
    yield bpy
    state.get().server.shutdown()


def _feed_when_capturing(mic, speech, delay: float = 1.5) -> threading.Thread:
    """Play the speech once the add-on's server holds the capture stream (and the device has started)."""
    def run() -> None:
        deadline = time.monotonic() + 120
        while mic.capture_streams() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(delay)
        mic.play(speech).wait(60)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.blender
def test_addon_live_records_the_microphone(mic, speech, blender):
    from addon_helpers import arkit_mesh, curve_values
    from streamingtalker_addon import state
    from streamingtalker_addon.logic import framerate
    reference = framerate.resample(reference_frames(DEFAULT_MODEL, load_file(speech), {"seed": 0}), 30.0, 24.0)
    scene = blender.context.scene
    st = scene.streamingtalker
    st.target, st.live_input, st.live_record = arkit_mesh(), "MICROPHONE", True
    scene.frame_current = 10
    feeder = _feed_when_capturing(mic, speech)
    seconds = len(load_file(speech)) / 16000 + 5.0
    assert blender.ops.streamingtalker.live(max_seconds=seconds) == {"FINISHED"}, st.status
    feeder.join(60)
    job = state.get().last_job
    assert job.driver.state == "stopped" and job.driver.description == "microphone: default"
    assert st.status.startswith("Live stopped")
    assert mic.capture_streams() == 0  # Stop released the device
    jaw = curve_values(st.target)["jawOpen"]
    assert jaw[0, 0] == 10 and abs(len(jaw) - job.frames * 24 / 30) <= 2 and len(jaw) > 24 * 4
    rec, ref = jaw[:, 1], reference[:, ARKIT_52.index("jawOpen")]
    corr = max(np.corrcoef(rec[k:k + len(ref)], ref)[0, 1] for k in range(len(rec) - len(ref) + 1))
    print(f"add-on live: {len(jaw)} keys recorded; jawOpen follows the file's output with correlation {corr:.3f}")
    assert corr > 0.6


@pytest.mark.blender
def test_addon_live_without_an_input_device_says_so(blender, monkeypatch, tmp_path):
    conf = tmp_path / "asound.conf"
    conf.write_text(f'pcm.!default {{ type pulse; server "unix:{tmp_path}/no-server" }}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{virtual_mic.SYSTEM_ALSA_CONF}:{conf}")
    from addon_helpers import arkit_mesh
    st = blender.context.scene.streamingtalker
    st.target, st.live_input = arkit_mesh(), "MICROPHONE"
    with pytest.raises(RuntimeError, match="no audio input device"):
        blender.ops.streamingtalker.live(max_seconds=10)
    assert st.status.startswith("Live error: ") and "no audio input device" in st.status
