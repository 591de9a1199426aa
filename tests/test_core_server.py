"""The bridge server as a real child process, driven through the real client."""

import os
import signal
import sys
import time

import numpy as np
import pytest

from fixtures import syllable_audio, write_wav
from inference_core.shared import protocol
from inference_core.shared.client import BridgeClient, BridgeError, BridgeTimeout
from inference_core.runtime.session import SessionOptions, StreamingSession


@pytest.fixture()
def server(random_model):
    c = BridgeClient.launch(model=str(random_model), threads=1)
    yield c
    c.close()


def collect(client, session, timeout=60):
    frames, end = [], None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.poll(1)
        if msg is None:
            continue
        if msg.type == "frames" and msg.get("session") == session:
            arr = np.frombuffer(msg.payload, "<f4").reshape(msg.get("count"), msg.get("channels"))
            assert msg.get("start") == sum(len(f) for f in frames)  # in order, never revised
            frames.append(arr)
        elif msg.type in ("done", "cancelled", "live_stopped"):
            end = msg
            break
        else:
            client.raise_for(msg)
    assert end is not None, "no end message"
    return (np.concatenate(frames) if frames else np.zeros((0, 52), np.float32)), end


def test_hello_carries_model_card(server):
    card = server.model_card
    assert card["fps"] == 30 and card["sample_rate"] == 16000 and len(card["channels"]) == 52
    assert server.hello.get("protocol") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables are a Linux matter")
def test_server_mallocs_in_huge_pages(server):
    """The child gets the glibc tunable (kept beside tunables the user set) and, where the kernel
    hands out transparent huge pages on request, holds some of its memory in them."""
    from inference_core.shared.client import HUGEPAGE_TUNABLE, server_env

    env = server_env(base={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + HUGEPAGE_TUNABLE
    assert server_env(base={"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
    pid = server.hello.get("pid")
    child_env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    assert HUGEPAGE_TUNABLE.encode() in b":".join(e for e in child_env if e.startswith(b"GLIBC_TUNABLES="))
    thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read() if os.path.exists(
        "/sys/kernel/mm/transparent_hugepage/enabled") else "[never]"
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    if "[never]" in thp or not libc.startswith("glibc") or tuple(map(int, libc.split()[1].split(".")[:2])) < (2, 35):
        pytest.skip(f"no huge pages on request here ({thp.strip()}, {libc})")
    rollup = open(f"/proc/{pid}/smaps_rollup").read()
    huge_kb = int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("AnonHugePages")))
    assert huge_kb > 0


def test_frames_match_in_process_session(server, random_bundle_loaded):
    audio = syllable_audio(3.0, seed=7)[0]
    server.send("start", session="t1", seed=11, steps=4)
    server.wait_for({"started"}, 10)
    for i in range(0, audio.size, 1234):
        server.send("audio", audio[i:i + 1234].astype("<f4").tobytes(), session="t1")
    server.send("end", session="t1")
    got, done = collect(server, "t1")
    s = StreamingSession(random_bundle_loaded, SessionOptions(seed=11, steps=4))
    ref = np.concatenate([s.push(audio), s.flush()])
    assert done.get("frames") == len(ref) == 90
    np.testing.assert_array_equal(got, ref)


def test_cancel_mid_run_then_new_session(server):
    audio = syllable_audio(50.0, seed=1)[0]
    server.send("start", session="long")
    server.wait_for({"started"}, 10)
    server.send("audio", audio.astype("<f4").tobytes(), session="long")
    time.sleep(0.3)
    server.send("cancel", session="long")
    frames, end = collect(server, "long", timeout=30)
    assert end.type == "cancelled"
    assert len(frames) < 1500  # stopped well before the 50 s were processed
    server.send("start", session="next")
    assert server.wait_for({"started"}, 10).get("session") == "next"


def test_errors_keep_server_alive(server):
    server.send("frobnicate")
    assert server.poll(10).get("code") == protocol.Err.UNKNOWN_TYPE
    server.send("audio", b"\0" * 16, session="none")
    assert server.poll(10).get("code") == protocol.Err.NO_SESSION
    server.send("start", session="a", steps=500)
    assert server.poll(10).get("code") == protocol.Err.BAD_REQUEST
    server.send("start", session="a")
    server.wait_for({"started"}, 10)
    server.send("start", session="b")
    assert server.poll(10).get("code") == protocol.Err.SESSION_ACTIVE
    big = np.zeros(16000 * 61, "<f4").tobytes()
    server.send("audio", big, session="a")
    assert server.poll(10).get("code") == protocol.Err.AUDIO_TOO_LARGE
    nan = np.full(1600, np.nan, "<f4").tobytes()
    server.send("audio", nan, session="a")
    assert server.poll(10).get("code") == protocol.Err.BAD_AUDIO
    server.send("audio", b"\0\0\0", session="a")
    assert server.poll(10).get("code") == protocol.Err.MALFORMED
    # raw bad JSON header: recoverable
    raw = b"{oops"
    server.proc.stdin.write(protocol._PREFIX.pack(protocol.MAGIC, len(raw), 0) + raw)
    server.proc.stdin.flush()
    err = server.poll(10)
    assert err.get("code") == protocol.Err.MALFORMED and err.get("fatal") is False
    server.send("ping")
    assert server.wait_for({"pong"}, 10)
    assert server.alive


def test_lost_framing_is_fatal_and_reported(server):
    server.proc.stdin.write(b"GET / HTTP/1.1\r\n\r\n")
    server.proc.stdin.flush()
    err = server.poll(10)
    assert err.type == "error" and err.get("fatal") is True
    assert server.proc.wait(10) == 2


def test_shutdown_and_eof_exit_cleanly(random_model):
    c = BridgeClient.launch(model=str(random_model))
    assert c.close() == 0
    c = BridgeClient.launch(model=str(random_model))
    c.proc.stdin.close()
    assert c.proc.wait(10) == 0


def test_bad_model_fails_launch_with_clear_message(tmp_path):
    bad = tmp_path / "m.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(BridgeError, match="not a valid safetensors"):
        BridgeClient.launch(model=str(bad))
    with pytest.raises(BridgeError, match="not found"):
        BridgeClient.launch(model=str(tmp_path / "missing.safetensors"))


def test_crash_is_reported_not_hung(server):
    server.send("start", session="c")
    server.wait_for({"started"}, 10)
    os.kill(server.proc.pid, signal.SIGKILL)
    with pytest.raises(BridgeError, match="stopped"):
        server.wait_for({"done"}, timeout=10)
    with pytest.raises(BridgeError):
        server.send("end", session="c")


def test_hung_server_times_out(server):
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        server.send("ping")
        t = time.monotonic()
        with pytest.raises(BridgeTimeout):
            server.wait_for({"pong"}, timeout=1.5)
        assert time.monotonic() - t < 5
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def test_live_from_file_streams_in_real_time(server, tmp_path):
    audio = syllable_audio(1.5, seed=2)[0]
    wav = write_wav(tmp_path / "live.wav", audio)
    t0 = time.monotonic()
    server.send("live_start", input=str(wav), seed=0)
    assert server.wait_for({"live_started"}, 10).get("session") == "live"
    frames, end = collect(server, "live", timeout=20)
    assert end.type == "live_stopped" and len(frames) == 45
    assert time.monotonic() - t0 >= 1.3  # paced like a microphone, not as fast as possible


def test_live_microphone_missing_device_is_clear_error(server):
    server.send("live_start", input="microphone", device="no-such-device-xyz")
    msg = server.poll(20)
    assert msg.type == "error" and msg.get("code") == protocol.Err.DEVICE
    server.send("ping")
    assert server.wait_for({"pong"}, 10)


def test_stray_prints_do_not_corrupt_the_stream(random_model, tmp_path):
    # A library printing to stdout at import must land on stderr, not in the protocol.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import builtins, sys\n"
        "_orig = builtins.__import__\n"
        "def noisy(name, *a, **k):\n"
        "    if name == 'torch' and 'torch' not in sys.modules:\n"
        "        print('noise from a library')\n"
        "    return _orig(name, *a, **k)\n"
        "builtins.__import__ = noisy\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    cmd = [sys.executable, "-m", "inference_core", "serve", "--model", str(random_model)]
    c = BridgeClient(cmd, env=env)
    c.start(hello_timeout=60)
    c.send("ping")
    assert c.wait_for({"pong"}, 10)
    assert c.close() == 0


def test_close_lets_the_readers_finish_before_closing_their_pipes(random_model, monkeypatch):
    """A killed server: close() waits for the reader threads to reach end-of-file before it
    closes the pipes, so no reader fails mid-read ("I/O operation on closed file")."""
    import threading

    failures = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    for _ in range(3):
        c = BridgeClient.launch(model=str(random_model), threads=1)
        c.kill()
        c.close(timeout=0.1)
        assert c._readers and not any(r.is_alive() for r in c._readers)
    assert not failures, failures
