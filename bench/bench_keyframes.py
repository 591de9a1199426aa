"""Keyframe-writer benchmark (real bpy): prints one JSON object.

* bulk: a whole take (default 18,000 frames x 52 channels) written with one
  allocation + foreach_set per curve -> keys/s;
* streaming: 30-frame chunks appended the way generation does, timed at the
  start of a take and again once the take is 18,000 frames long: equal costs
  show an append is O(chunk), not O(action length).

Run: .venv/bin/python bench/bench_keyframes.py [--frames N] [--channels K]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from streamingtalker_addon.blender import keyframes  # noqa: E402


def make_obj(k: int):
    mesh = bpy.data.meshes.new("bench")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("bench", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for i in range(k):
        obj.shape_key_add(name=f"ch{i}")
    return obj, [(i, f"ch{i}", f"ch{i}") for i in range(k)]


def chunk_cost(w, chunk, reps: int = 30) -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            w.append(chunk)
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=18000)
    ap.add_argument("--channels", type=int, default=52)
    ap.add_argument("--chunk", type=int, default=30)
    args = ap.parse_args()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    n, k = args.frames, args.channels
    data = np.random.default_rng(0).random((n, k)).astype(np.float32)

    obj, pairs = make_obj(k)
    t = time.perf_counter()
    w = keyframes.TakeWriter(obj, pairs, 1)
    w.write_bulk(data)
    w.finish()
    bulk_s = time.perf_counter() - t

    obj2, pairs2 = make_obj(k)
    w = keyframes.TakeWriter(obj2, pairs2, 1)
    chunk = data[: args.chunk]
    start_cost = chunk_cost(w, chunk)
    t = time.perf_counter()
    while w.written < n:
        w.append(data[w.written % (n - args.chunk): w.written % (n - args.chunk) + args.chunk])
    stream_s = time.perf_counter() - t
    streamed = w.written
    end_cost = chunk_cost(w, chunk)
    t = time.perf_counter()
    w.finish()
    finish_s = time.perf_counter() - t
    out = {
        "frames": n, "channels": k,
        "bulk_seconds": round(bulk_s, 4),
        "bulk_keys_per_second": round(n * k / bulk_s),
        "stream_chunk_frames": args.chunk,
        "stream_keys_per_second": round(streamed * k / stream_s),
        "append_chunk_ms_at_start": round(start_cost * 1e3, 3),
        "append_chunk_ms_at_end": round(end_cost * 1e3, 3),
        "append_cost_ratio_end_over_start": round(end_cost / start_cost, 2),
        "frames_at_end": streamed,
        "finish_seconds": round(finish_s, 4),
        "blender": bpy.app.version_string,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
