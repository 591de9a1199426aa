"""Hardening of the bridge server (issue 18, rows 1, 2, 3, 10, 15): a real server process
driven through the real client, and the server class on real pipes where a test must hold
its main loop still."""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time

import numpy as np
import pytest

from fixtures import syllable_audio
from inference_core.runtime.bench import rss_mb
from inference_core.runtime.server import BridgeServer
from inference_core.shared import protocol
from inference_core.shared.client import BridgeClient
from inference_core.shared.protocol import Err, Msg


@pytest.fixture()
def server(random_model):
    c = BridgeClient.launch(model=str(random_model), threads=1)
    yield c
    c.close()


def _catches(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status") as fh:
        mask = next(int(line.split()[1], 16) for line in fh if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


def next_error(client, timeout=20):
    msg = client.poll(timeout)
    assert msg is not None and msg.type == Msg.ERROR, msg
    return msg


def assert_answers_ping(client):
    client.send(Msg.PING)
    assert client.wait_for({Msg.PONG}, 20)


def stream(client, sid, pcm, chunk=8000, timeout=120):
    """Send ``pcm`` and end; return (frames, log warnings) of the session."""
    for i in range(0, len(pcm), chunk):
        client.send(Msg.AUDIO, np.ascontiguousarray(pcm[i:i + chunk], "<f4").tobytes(), session=sid)
    client.send(Msg.END, session=sid)
    frames, logs = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.poll(1)
        if msg is None:
            continue
        if msg.type == Msg.FRAMES:
            frames.append(np.frombuffer(msg.payload, "<f4").reshape(msg.get("count"), msg.get("channels")))
        elif msg.type == Msg.LOG:
            logs.append(msg)
        elif msg.type == Msg.DONE:
            return np.concatenate(frames), logs
        else:
            client.raise_for(msg)
    raise AssertionError("no done")


# -- row 1 --------------------------------------------------------------------------------------
def test_server_clips_huge_audio_and_never_sends_a_non_finite_frame(server):
    rng = np.random.default_rng(1)
    pcm = np.clip(rng.standard_normal(32000) * 1e30, -3.4e38, 3.4e38).astype(np.float32)
    server.send(Msg.START, session="huge")
    server.wait_for({Msg.STARTED}, 20)
    frames, logs = stream(server, "huge", pcm)
    assert len(frames) == 60 and np.isfinite(frames).all()
    assert len(logs) == 1 and logs[0].get("level") == "warning" and logs[0].get("session") == "huge"
    assert "exceeds full scale" in logs[0].get("message")


# -- row 2 and row 15 ---------------------------------------------------------------------------
def send_raw(client, header: dict, payload: bytes = b"") -> None:
    """A frame with a UTF-8 header (the client's own encoder escapes non-ASCII, six bytes each)."""
    raw = json.dumps(header, ensure_ascii=False).encode()
    client.proc.stdin.write(protocol._PREFIX.pack(protocol.MAGIC, len(raw), len(payload)) + raw + payload)
    client.proc.stdin.flush()


def test_error_replies_clip_what_they_echo(server):
    huge = "é" * 400_000  # 800 kB of UTF-8 in; echoed as JSON (\u00e9) it would be 2.4 MB
    send_raw(server, {"type": huge})
    err = next_error(server)
    assert err.get("code") == Err.UNKNOWN_TYPE and len(err.get("message")) < 1000
    assert "400000 characters" in err.get("message")
    for msg_type in (Msg.START, Msg.AUDIO, Msg.END, Msg.CANCEL):
        send_raw(server, {"type": msg_type, "session": huge})
        err = next_error(server)
        assert err.get("code") == Err.BAD_REQUEST and len(err.get("message")) < 1000, msg_type
        assert err.get("session") is None
    send_raw(server, {"type": Msg.START, "session": "ok", "style": huge})
    err = next_error(server)
    assert err.get("code") == Err.BAD_REQUEST and len(err.get("message")) < 1000
    assert_answers_ping(server)
    assert server.alive


def test_a_header_nested_too_deeply_is_recoverable():
    """json.loads raises RecursionError on 500,000 '[': it killed the server's reader thread."""
    import io

    raw = b"[" * 500_000
    stream = io.BytesIO(protocol._PREFIX.pack(protocol.MAGIC, len(raw), 0) + raw + protocol.encode(Msg.PING))
    with pytest.raises(protocol.ProtocolError, match="nested too deeply") as info:
        protocol.read_message(stream)
    assert info.value.recoverable
    assert protocol.read_message(stream).type == Msg.PING


@pytest.mark.parametrize("fields", [
    {"steps": 1.7}, {"steps": True}, {"style": 1.9}, {"style": True}, {"session": None},
    {"seed": 1e30}, {"seed": -1}, {"seed": 2**64}, {"guidance": "2"}, {"intensity": [1]},
    {"session": 7}, {"session": ""}, {"steps_upper": 2.5}, {"steps_upper": False}, {"steps_upper": 0},
    {"steps_upper": 51},
], ids=lambda f: repr(f))
def test_start_options_are_strictly_typed(server, fields):
    server.send(Msg.START, **{"session": "s", **fields})
    err = next_error(server)
    assert err.get("code") == Err.BAD_REQUEST, err.fields
    assert_answers_ping(server)
    server.send(Msg.START, session="s2", steps=3, style=0, seed=2**64 - 1)
    assert server.wait_for({Msg.STARTED}, 20).get("options")["steps"] == 3


def test_a_reply_that_cannot_be_encoded_becomes_an_error_not_a_crash(random_bundle_loaded):
    """Whatever a handler replies, send() does not raise: an unencodable reply turns into an
    internal_error the client can read (here: a field the JSON encoder refuses)."""
    r, w = os.pipe()
    with os.fdopen(w, "wb", buffering=0) as out, os.fdopen(r, "rb") as inp:
        srv = BridgeServer(random_bundle_loaded, out, None)  # type: ignore[arg-type]
        srv.send(Msg.PONG, time=float("nan"))
        srv.send(Msg.PONG, junk="x" * (protocol.MAX_HEADER_BYTES + 10))
        for _ in range(2):
            msg = protocol.read_message(inp)
            assert msg.type == Msg.ERROR and msg.get("code") == Err.INTERNAL and "'pong'" in msg.get("message")


# -- row 3 --------------------------------------------------------------------------------------
def test_reader_stops_reading_while_too_much_waits(random_bundle_loaded):
    """Backpressure: with the main loop held still, the reader queues at most MAX_QUEUED_BYTES
    (plus the message in hand) and then leaves the rest in the pipe; once drained, every
    message arrives, in order, none dropped."""
    c2s_r, c2s_w = os.pipe()
    s2c_r, s2c_w = os.pipe()
    inp, client_out = os.fdopen(c2s_r, "rb"), os.fdopen(c2s_w, "wb", buffering=0)
    srv = BridgeServer(random_bundle_loaded, os.fdopen(s2c_w, "wb", buffering=0), inp)
    chunk = np.zeros(16000 * 30, "<f4").tobytes()  # 30 s, 1.9 MB per message
    n = 3 * protocol.MAX_QUEUED_BYTES // len(chunk)
    written = []

    def writer():
        for i in range(n):
            client_out.write(protocol.encode(Msg.AUDIO, chunk, session="s", i=i))
            written.append(i)

    threading.Thread(target=srv._reader, daemon=True).start()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    t.join(5)
    assert t.is_alive(), "the writer was never held back"
    assert srv._queued <= protocol.MAX_QUEUED_BYTES + len(chunk) + 8 * 100
    assert len(written) < n // 2
    got = []
    while len(got) < n:
        kind, msg = srv.events.get(timeout=20)
        assert kind == "msg"
        got.append(msg.get("i"))
        srv._handled(msg)
    assert got == list(range(n))
    t.join(10)
    assert not t.is_alive() and srv._queued == 0
    client_out.close()


def test_server_rss_stays_bounded_under_a_flood_of_audio(server):
    """A client writing audio as fast as the pipe takes it (about 100× real time here) for a
    few seconds: without backpressure the server would buffer hundreds of MB."""
    server.send(Msg.START, session="flood")
    server.wait_for({Msg.STARTED}, 20)
    base = rss_mb(server.proc.pid)
    chunk = np.random.default_rng(0).standard_normal(16000 * 60).astype("<f4").tobytes()
    data = protocol.encode(Msg.AUDIO, chunk, session="flood")
    stop = threading.Event()
    sent = [0]

    def flood():
        try:
            while not stop.is_set():
                server.proc.stdin.write(data)
                sent[0] += len(data)
        except (BrokenPipeError, ValueError, OSError):
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    peak = base
    for _ in range(30):
        time.sleep(0.1)
        peak = max(peak, rss_mb(server.proc.pid))
    stop.set()
    assert peak - base < 120, f"RSS grew {base:.0f} -> {peak:.0f} MB with {sent[0] / 2**20:.0f} MB sent"
    server.kill()


# -- row 10 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_signals_exit_cleanly(random_model, sig, busy):
    c = BridgeClient.launch(model=str(random_model), threads=1)
    try:
        if busy:  # in the middle of inference
            c.send(Msg.START, session="b")
            c.wait_for({Msg.STARTED}, 20)
            c.send(Msg.AUDIO, syllable_audio(50.0, seed=1)[0].astype("<f4").tobytes(), session="b")
            c.wait_for({Msg.FRAMES}, 20)
        os.kill(c.proc.pid, sig)
        assert c.proc.wait(20) == 0
        time.sleep(0.2)  # let the stderr reader take the last lines
        tail = c.stderr_tail(50)
        assert "Traceback" not in tail and "Fatal Python error" not in tail, tail
        assert f"stopped by signal {signal.Signals(sig).name}" in tail
    finally:
        c.kill()


def test_signal_while_loading_the_model_exits_cleanly(random_model):
    """Several tries: a handler that raised was swallowed inside ``import torch`` about one time in five."""
    import subprocess
    import sys

    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "inference_core", "serve", "--model", str(random_model),
                                 "--backend", "torch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda p=proc: out.put(p.stderr.read()), daemon=True).start()
        try:
            # once the handler is installed (SigCgt), importing torch still takes seconds: the signal
            # lands while the model loads
            deadline = time.monotonic() + 30
            while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            err = out.get(timeout=10).decode()
            assert "Traceback" not in err and "Fatal Python error" not in err, err
            assert "stopped by signal SIGTERM" in err, err
            assert "serving on stdio" not in err, err
        finally:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()


@pytest.mark.parametrize("fields", [{"input": 3.5}, {"input": ["a"]}, {"input": "x" * 5000},
                                    {"device": {"a": 1}}, {"device": True}])
def test_live_start_fields_are_typed(server, fields):
    server.send(Msg.LIVE_START, **{"input": "/nonexistent.wav", **fields})
    assert next_error(server).get("code") == Err.BAD_REQUEST
    assert_answers_ping(server)


# -- row 11 -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sessions_do_not_grow_the_server():
    """Short version of ``bench/bench_soak.py sessions`` (10,000 there): after a warm-up of
    150 sessions (allocator and caches: +4 MB on ONNX, +13 MB on torch, once), 400 more
    sessions must not add 2 MB (a leak of 5 kB per session would)."""
    import subprocess
    import sys

    from inference_core.shared.paths import DEFAULT_MODEL

    code = ("import sys, json; sys.argv = ['bench_soak.py', 'sessions', '--sessions', '550', '--pipelined', "
            f"'--model', {str(DEFAULT_MODEL)!r}]; sys.path.insert(0, 'bench'); import bench_soak; bench_soak.main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    rss = dict((n, v) for n, v in out["rss_mb"])
    assert out["backend"] == "onnx"
    warm, last = min(rss, key=lambda n: abs(n - 150)), max(rss)
    assert last - warm >= 350 and rss[last] - rss[warm] < 2.0, out["rss_mb"]
