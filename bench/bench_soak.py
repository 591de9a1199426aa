"""Soak of the bridge server: many sessions, or one long stream, with the server's memory sampled.

    python bench/bench_soak.py sessions [--sessions 10000] [--pipelined] [--backend onnx|torch]
    python bench/bench_soak.py stream [--minutes 30] [--realtime] [--backend onnx|torch]

``sessions``: start, 0.3 s of audio, end — N times on one server (lock-step: each session
waits for its ``done``; ``--pipelined``: up to 8 sessions' messages in flight), RSS of the
server sampled every N/20 sessions.
``stream``: one session fed speech in 100 ms chunks (``--realtime``: paced like a
microphone, so a 30-minute soak takes 30 minutes) with RSS, frames and the lag of frames
behind audio sampled every 30 s of audio. Flat means the last samples equal the early ones;
no drift means every frame arrives (frames = 30 x seconds) and the lag does not grow.

Prints one JSON object: the samples, and the growth from the first sample after warm-up
(10 % of the run) to the end, in MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference_core.runtime.bench import rss_mb  # noqa: E402
from inference_core.shared.client import BridgeClient  # noqa: E402
from inference_core.shared.protocol import Msg  # noqa: E402


def speech(seconds: float, sr: int = 16000) -> np.ndarray:
    """The bundled clip, looped to ``seconds``."""
    from inference_core.audio.io import load_file
    from inference_core.shared.paths import DEMO_SPEECH

    clip = load_file(DEMO_SPEECH, sr)
    reps = int(np.ceil(seconds * sr / clip.size))
    return np.tile(clip, reps)[: int(seconds * sr)].astype("<f4")


def wait_done(client: BridgeClient, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    frames = 0
    while time.monotonic() < deadline:
        msg = client.poll(1)
        if msg is None:
            continue
        if msg.type == Msg.FRAMES:
            frames += int(msg.get("count"))
        elif msg.type == Msg.DONE:
            return frames
        else:
            client.raise_for(msg)
    raise TimeoutError("no done")


def soak_sessions(client: BridgeClient, n: int, pipelined: bool) -> dict:
    pid = client.proc.pid
    audio = speech(0.3).tobytes()
    every = max(1, n // 20)
    samples = [(0, rss_mb(pid))]
    t0 = time.monotonic()
    in_flight = 0
    for i in range(n):
        sid = f"s{i}"
        client.send(Msg.START, session=sid, seed=i)
        client.send(Msg.AUDIO, audio, session=sid)
        client.send(Msg.END, session=sid)
        in_flight += 1
        if not pipelined or in_flight >= 8:
            while in_flight:
                msg = client.poll(60)
                if msg is None:
                    raise TimeoutError("server stopped answering")
                if msg.type == Msg.DONE:
                    in_flight -= 1
                else:
                    client.raise_for(msg)
        if (i + 1) % every == 0:
            samples.append((i + 1, rss_mb(pid)))
    return {"mode": "sessions", "sessions": n, "pipelined": pipelined, "seconds": round(time.monotonic() - t0, 1),
            "rss_mb": [(k, round(v, 1)) for k, v in samples]}


def soak_stream(client: BridgeClient, minutes: float, realtime: bool) -> dict:
    pid = client.proc.pid
    sr, chunk_s = 16000, 0.1
    audio = speech(min(minutes * 60, 300.0))  # 5 minutes looped: memory of the client stays small
    step = int(sr * chunk_s)
    total_chunks = int(minutes * 60 / chunk_s)
    client.send(Msg.START, session="soak", seed=0)
    client.wait_for({Msg.STARTED}, 30)
    frames = 0
    samples = []
    t0 = time.monotonic()
    pos = 0
    for c in range(total_chunks):
        if realtime:
            ahead = t0 + c * chunk_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if pos + step > audio.size:
            pos = 0
        client.send(Msg.AUDIO, audio[pos:pos + step].tobytes(), session="soak")
        pos += step
        while (msg := client.poll(0)) is not None:
            if msg.type == Msg.FRAMES:
                frames += int(msg.get("count"))
            else:
                client.raise_for(msg)
        if not realtime:  # keep at most 1 s in flight, as the add-on does
            while (c + 1) * chunk_s - frames / 30 > 1.0:
                msg = client.poll(30)
                if msg is None:
                    raise TimeoutError("server stopped answering")
                if msg.type == Msg.FRAMES:
                    frames += int(msg.get("count"))
                else:
                    client.raise_for(msg)
        if (c + 1) % int(30 / chunk_s) == 0:
            sent = (c + 1) * chunk_s
            samples.append({"audio_s": round(sent), "wall_s": round(time.monotonic() - t0, 1),
                            "rss_mb": round(rss_mb(pid), 1), "frames": frames,
                            "lag_s": round(sent - frames / 30, 3)})
    client.send(Msg.END, session="soak")
    frames += wait_done(client, 120)
    seconds = total_chunks * chunk_s
    return {"mode": "stream", "minutes": minutes, "realtime": realtime, "samples": samples,
            "frames": frames, "frames_expected": int(round(seconds * 30)),
            "wall_seconds": round(time.monotonic() - t0, 1)}


def growth(values: list[float]) -> float:
    """RSS growth from the first sample after a 10 % warm-up to the last one."""
    start = values[max(1, len(values) // 10)] if len(values) > 2 else values[0]
    return round(values[-1] - start, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["sessions", "stream"])
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--pipelined", action="store_true")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--realtime", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    args = ap.parse_args()
    client = BridgeClient.launch(model=args.model, threads=args.threads, backend=args.backend)
    try:
        start_rss = rss_mb(client.proc.pid)
        if args.mode == "sessions":
            out = soak_sessions(client, args.sessions, args.pipelined)
            values = [v for _, v in out["rss_mb"]]
        else:
            out = soak_stream(client, args.minutes, args.realtime)
            values = [s["rss_mb"] for s in out["samples"]]
            lags = [s["lag_s"] for s in out["samples"]]
            out["lag_s_first_last_max"] = [lags[0], lags[-1], max(lags)] if lags else []
        out.update(rss_after_hello_mb=round(start_rss, 1), rss_growth_after_warmup_mb=growth(values),
                   rss_min_max_mb=[round(min(values), 1), round(max(values), 1)],
                   backend=client.hello.get("runtime", {}).get("backend") if client.hello else None)
    finally:
        client.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
