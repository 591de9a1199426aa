"""Speed benchmark of the streaming engine (``python -m inference_core bench --json``).

Figures (all on CPU, default settings unless overridden):
  rtf                      compute seconds / audio seconds, streaming in 100 ms chunks
  first_frame_latency_ms   audio needed past the first frame's end (look-ahead + chunk)
                           + compute time of the push that produced it
  cost_ratio_long_vs_short per-second cost over the long stream / over the short one
  cost_ratio_aged_vs_fresh after the long stream, 10 s more on it / 10 s on a new session,
                           interleaved and the median taken, so machine-speed drift between
                           runs cancels out (the figure that says whether cost grows with length)
  rss_mb_*                 resident memory after the short and after the long stream
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import time
from typing import Any, Iterator

import numpy as np
import torch


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _speech_like(seconds: float, sr: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Endless 1 s blocks of the bundled clip (looped) or, without it, modulated noise."""
    from ..shared.paths import DEMO_SPEECH

    clip = None
    if DEMO_SPEECH.exists():
        from ..audio.io import load_file

        clip = load_file(DEMO_SPEECH, sr)
    rng = np.random.default_rng(seed)
    total = int(seconds * sr)
    pos = 0
    while pos < total:
        n = min(sr, total - pos)
        if clip is not None and clip.size:
            idx = (np.arange(pos, pos + n) % clip.size)
            block = clip[idx]
        else:
            t = np.arange(pos, pos + n) / sr
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
            block = (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
        yield block.astype(np.float32)
        pos += n


def _feed(sess: Any, blocks: Iterator[np.ndarray], seconds: int, step: int) -> tuple[float, int]:
    """Push ``seconds`` 1 s blocks in ``step``-sample chunks: (compute seconds, frames)."""
    busy = 0.0
    frames = 0
    for _, block in zip(range(seconds), blocks):
        for i in range(0, block.size, step):
            t = time.perf_counter()
            frames += len(sess.push(block[i:i + step]))
            busy += time.perf_counter() - t
    return busy, frames


def _stream_cost(bundle: Any, options: Any, seconds: float, chunk_s: float = 0.1) -> tuple[float, int]:
    """(compute seconds, frames) of one whole stream of ``seconds``, flush included."""
    from .session import StreamingSession

    sr = bundle.model.cfg.sample_rate
    sess = StreamingSession(bundle, options)
    busy, frames = _feed(sess, _speech_like(seconds, sr), math.ceil(seconds), int(chunk_s * sr))
    t = time.perf_counter()
    frames += len(sess.flush())
    busy += time.perf_counter() - t
    return busy, frames


def _aged_vs_fresh(bundle: Any, options: Any, long_seconds: float, rounds: int = 5,
                   chunk_s: float = 0.1) -> tuple[float, int, float]:
    """Stream ``long_seconds``, then alternate 10 s more on that session with 10 s on a new one.

    Returns (compute seconds of the long stream, its frames, median cost ratio aged / fresh)."""
    from .session import StreamingSession

    sr = bundle.model.cfg.sample_rate
    step = int(chunk_s * sr)
    aged = StreamingSession(bundle, options)
    aged_blocks = _speech_like(long_seconds + 10 * rounds, sr)
    busy, frames = _feed(aged, aged_blocks, math.ceil(long_seconds), step)
    ratios = []
    for _ in range(rounds):
        fresh_busy, _ = _feed(StreamingSession(bundle, options), _speech_like(10, sr), 10, step)
        aged_busy, _ = _feed(aged, aged_blocks, 10, step)
        ratios.append(aged_busy / fresh_busy)
    return busy, frames, statistics.median(ratios)


def _first_frame(bundle: Any, options: Any) -> float:
    from .session import StreamingSession

    sr = bundle.model.cfg.sample_rate
    sess = StreamingSession(bundle, options)
    blocks = _speech_like(2.0, sr)
    hop = sr // 100  # 10 ms pushes, like a live microphone
    for block in blocks:
        for i in range(0, block.size, hop):
            t = time.perf_counter()
            out = sess.push(block[i:i + hop])
            if len(out):
                return time.perf_counter() - t
    raise RuntimeError("no frame produced")


def run(model: str | None = None, short_seconds: float = 10.0, long_seconds: float = 1800.0,
        repeats: int = 3, threads: int | None = None, steps: int | None = None,
        guidance: float | None = None) -> dict[str, Any]:
    from ..model.checkpoint import ModelFileError
    from ..shared.paths import DEFAULT_MODEL
    from .server import default_threads
    from .session import SessionOptions, load_bundle, random_bundle

    torch.set_num_threads(threads or default_threads())
    source = "bundled"
    try:
        bundle = load_bundle(model)
        source = model or str(DEFAULT_MODEL)
    except ModelFileError:
        if model:
            raise
        bundle = random_bundle()
        source = "random-init (no trained checkpoint found)"
    cfg = bundle.model.cfg
    opts: dict[str, Any] = dict(bundle.card.get("defaults") or {})
    if steps is not None:
        opts["steps"] = steps
    if guidance is not None:
        opts["guidance"] = guidance
    options = SessionOptions.from_dict(opts)
    _stream_cost(bundle, options, 2.0)  # warm-up
    short = [_stream_cost(bundle, options, short_seconds)[0] / short_seconds for _ in range(repeats)]
    first = [_first_frame(bundle, options) for _ in range(max(5, repeats))]
    rss_short = _rss_mb()
    long_busy, long_frames, aged_vs_fresh = _aged_vs_fresh(bundle, options, long_seconds)
    rss_long = _rss_mb()
    rtf = statistics.median(short)
    latency = cfg.algorithmic_latency_ms + 1000 * statistics.median(first)
    return {
        "model": source, "parameters": bundle.model.num_parameters(),
        "steps": options.steps, "guidance": options.guidance,
        "chunk_frames": cfg.chunk_frames, "fps": cfg.fps, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "rtf": round(rtf, 4), "rtf_runs": [round(v, 4) for v in short],
        "first_frame_latency_ms": round(latency, 1),
        "first_frame_algorithmic_ms": round(cfg.algorithmic_latency_ms, 1),
        "first_frame_compute_ms": round(1000 * statistics.median(first), 2),
        "short_seconds": short_seconds, "long_seconds": long_seconds,
        "cost_per_second_short": round(rtf, 5),
        "cost_per_second_long": round(long_busy / long_seconds, 5),
        "cost_ratio_long_vs_short": round((long_busy / long_seconds) / rtf, 3),
        "cost_ratio_aged_vs_fresh": round(aged_vs_fresh, 3),
        "frames_long": long_frames,
        "rss_mb_after_short": round(rss_short, 1), "rss_mb_after_long": round(rss_long, 1),
        "peak_rss_mb_long": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(args: Any) -> int:
    result = run(args.model, args.short_seconds, args.long_seconds, args.repeats, args.threads,
                 args.steps, args.guidance)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
