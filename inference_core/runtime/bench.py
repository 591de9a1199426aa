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
  server_start_to_hello_s  starting ``python -m inference_core serve`` until its hello (model loaded)
  backends                 the same figures per runtime (onnx, torch), measured in one run
  *_cpu / cpu_*            the same in CPU seconds of this process (all its threads): on a shared,
                           loaded machine wall time mostly measures the wait for a core, CPU time
                           what the engine costs (with 2 threads it can exceed wall time)
  loadavg_before/_after    the machine's 1-minute load average around the run
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), in MB (Linux /proc)."""
    with open(f"/proc/{pid}/statm") as f:
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


class _Clock:
    """Wall and CPU seconds spent inside ``with clock:`` blocks, summed."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> "_Clock":
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c


def _feed(sess: Any, blocks: Iterator[np.ndarray], seconds: int, step: int) -> tuple[_Clock, int]:
    """Push ``seconds`` 1 s blocks in ``step``-sample chunks: (compute time, frames)."""
    clock = _Clock()
    frames = 0
    for _, block in zip(range(seconds), blocks):
        for i in range(0, block.size, step):
            with clock:
                frames += len(sess.push(block[i:i + step]))
    return clock, frames


def _stream_cost(bundle: Any, options: Any, seconds: float, chunk_s: float = 0.1) -> tuple[_Clock, int]:
    """(compute time, frames) of one whole stream of ``seconds``, flush included."""
    from .session import StreamingSession

    sr = bundle.cfg.sample_rate
    sess = StreamingSession(bundle, options)
    clock, frames = _feed(sess, _speech_like(seconds, sr), math.ceil(seconds), int(chunk_s * sr))
    with clock:
        frames += len(sess.flush())
    return clock, frames


def _aged_vs_fresh(bundle: Any, options: Any, long_seconds: float, rounds: int = 5,
                   chunk_s: float = 0.1) -> tuple[_Clock, int, float, float]:
    """Stream ``long_seconds``, then alternate 10 s more on that session with 10 s on a new one
    (``long_seconds`` each when shorter: a quick run stays quick).

    Returns (compute time of the long stream, its frames, median cost ratio aged / fresh in
    wall time, the same in CPU time)."""
    from .session import StreamingSession

    sr = bundle.cfg.sample_rate
    step = int(chunk_s * sr)
    block = max(1, min(10, math.ceil(long_seconds)))
    aged = StreamingSession(bundle, options)
    aged_blocks = _speech_like(long_seconds + block * rounds, sr)
    clock, frames = _feed(aged, aged_blocks, math.ceil(long_seconds), step)
    wall, cpu = [], []
    for _ in range(rounds):
        fresh, _ = _feed(StreamingSession(bundle, options), _speech_like(block, sr), block, step)
        more, _ = _feed(aged, aged_blocks, block, step)
        wall.append(more.wall / fresh.wall)
        cpu.append(more.cpu / fresh.cpu)
    return clock, frames, statistics.median(wall), statistics.median(cpu)


def _first_frame(bundle: Any, options: Any) -> _Clock:
    """Compute time of the push (10 ms of audio, like a live microphone) that gives the first frame."""
    from .session import StreamingSession

    sr = bundle.cfg.sample_rate
    sess = StreamingSession(bundle, options)
    blocks = _speech_like(2.0, sr)
    hop = sr // 100
    for block in blocks:
        for i in range(0, block.size, hop):
            with _Clock() as clock:
                out = sess.push(block[i:i + hop])
            if len(out):
                return clock
    raise RuntimeError("no frame produced")


def _server_start(model: str, backend: str, threads: int | None, repeats: int = 3) -> tuple[float, float]:
    """Medians of (seconds from starting ``python -m inference_core serve`` to its ``hello``,
    CPU seconds of that server's whole life: start, hello, shutdown)."""
    import sys

    from ..shared.client import BridgeClient

    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        client = BridgeClient.launch(sys.executable, model=model, threads=threads, backend=backend)
        times.append(time.perf_counter() - t)
        client.close()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def measure(bundle: Any, options: Any, short_seconds: float, long_seconds: float, repeats: int
            ) -> dict[str, Any]:
    """The speed figures of one loaded model on its backend."""
    cfg = bundle.cfg
    _stream_cost(bundle, options, 2.0)  # warm-up
    short = [_stream_cost(bundle, options, short_seconds)[0] for _ in range(repeats)]
    first = [_first_frame(bundle, options) for _ in range(max(5, repeats))]
    rss_short = rss_mb()
    # 5 interleaved rounds at the default 3 repeats; a quick run (repeats 1) does one
    rounds = max(1, min(5, 2 * repeats - 1))
    long, long_frames, aged_vs_fresh, aged_vs_fresh_cpu = _aged_vs_fresh(bundle, options, long_seconds, rounds)
    rss_long = rss_mb()
    rtf = statistics.median(c.wall for c in short) / short_seconds
    rtf_cpu = statistics.median(c.cpu for c in short) / short_seconds
    first_ms = 1000 * statistics.median(c.wall for c in first)
    return {
        "backend": bundle.backend.name, "device": bundle.backend.device,
        "head_precision": bundle.backend.head_precision,
        "rtf": round(rtf, 4), "rtf_runs": [round(c.wall / short_seconds, 4) for c in short],
        "rtf_cpu": round(rtf_cpu, 4), "rtf_cpu_runs": [round(c.cpu / short_seconds, 4) for c in short],
        "first_frame_latency_ms": round(cfg.algorithmic_latency_ms + first_ms, 1),
        "first_frame_algorithmic_ms": round(cfg.algorithmic_latency_ms, 1),
        "first_frame_compute_ms": round(first_ms, 2),
        "first_frame_compute_cpu_ms": round(1000 * statistics.median(c.cpu for c in first), 2),
        "cost_per_second_short": round(rtf, 5),
        "cost_per_second_long": round(long.wall / long_seconds, 5),
        "cost_ratio_long_vs_short": round((long.wall / long_seconds) / rtf, 3),
        "cost_ratio_aged_vs_fresh": round(aged_vs_fresh, 3),
        "cpu_per_second_long": round(long.cpu / long_seconds, 5),
        "cpu_ratio_long_vs_short": round((long.cpu / long_seconds) / rtf_cpu, 3),
        "cpu_ratio_aged_vs_fresh": round(aged_vs_fresh_cpu, 3),
        "frames_long": long_frames,
        "rss_mb_after_short": round(rss_short, 1), "rss_mb_after_long": round(rss_long, 1),
        "peak_rss_mb_long": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run(model: str | None = None, short_seconds: float = 10.0, long_seconds: float = 1800.0,
        repeats: int = 3, threads: int | None = None, backends: str = "both", server_start: bool = True,
        overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Figures for each backend asked for, measured one after the other in this process, with the
    card's defaults under ``overrides`` (session options; None values: the card's).

    The top level repeats the figures of the backend ``auto`` picks (ONNX when it can
    run), so one run answers both "how fast is it" and "how do the runtimes compare"."""
    from ..shared.model_card import ModelFileError
    from ..shared.options import SessionOptions
    from ..shared.paths import DEFAULT_MODEL
    from .bundle import BackendUnavailable, load_bundle
    from .session import StreamingSession
    from .threads import resolve_threads

    threads = resolve_threads(threads)  # one count for every backend measured, reported as used
    path = model or str(DEFAULT_MODEL)
    if not model and not Path(path).exists():
        raise ModelFileError(f"the bundled model is missing: {path}")
    load_before = os.getloadavg()[0]
    names = ["onnx", "torch"] if backends == "both" else [backends]
    results: dict[str, Any] = {}
    card: dict[str, Any] = {}
    options = None
    chains = 0
    for name in names:
        try:
            bundle = load_bundle(path, backend=name, threads=threads)
        except BackendUnavailable as exc:
            results[name] = {"unavailable": str(exc)}
            continue
        card = bundle.card
        options = SessionOptions.resolve(card, overrides)
        chains = StreamingSession(bundle, options).chains
        results[name] = measure(bundle, options, short_seconds, long_seconds, repeats)
        if server_start:
            hello, hello_cpu = _server_start(path, name, threads, repeats)
            results[name]["server_start_to_hello_s"] = round(hello, 3)
            results[name]["server_start_cpu_s"] = round(hello_cpu, 3)
        del bundle
    measured = [n for n in names if "rtf" in results[n]]
    if not measured or options is None:
        raise BackendUnavailable("no backend could run the model: " + json.dumps(results))
    cfg = card.get("architecture", {})
    out: dict[str, Any] = {
        "model": path, "parameters": card.get("parameters"),
        "steps": options.steps, "guidance": options.guidance,
        "temperature": options.temperature, "temperature_upper": options.upper_temperature,
        "steps_upper": options.upper_steps, "style": options.style,
        "articulation": options.articulation,
        "phonetic": options.phonetic,
        "chains": chains,
        "chunk_frames": cfg.get("chunk_frames"), "fps": card.get("fps"), "threads": threads,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "short_seconds": short_seconds, "long_seconds": long_seconds,
        "loadavg_before": round(load_before, 2), "loadavg_after": round(os.getloadavg()[0], 2),
    }
    out.update(results[measured[0]])
    out["backends"] = results
    if len(measured) == 2:
        out["rtf_ratio_onnx_vs_torch"] = round(results["onnx"]["rtf"] / results["torch"]["rtf"], 3)
    return out


def main(args: Any) -> int:
    from ..shared.options import SessionOptions

    result = run(args.model, args.short_seconds, args.long_seconds, args.repeats, args.threads, args.backend,
                 overrides=SessionOptions.given(args))
    print(json.dumps(result, indent=None if args.json else 2))
    return 0
