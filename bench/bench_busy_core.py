"""Real-time factor with one core kept busy by another process, against the idle figure.

For each backend the model is loaded with the default thread count (which follows the
cores free at load time, :mod:`inference_core.runtime.threads`), then a file of
``--seconds`` is generated ``--repeats`` times: once with nothing added to the machine
("idle"), once while a child process spins on one core ("busy"), interleaved so drift in
the machine's other load cancels out. The figure that matters: ``ratio_busy_vs_idle``
(target ≤ 2; before the fix, 2 spinning torch threads made it about 6).

Run: .venv/bin/python bench/bench_busy_core.py [--seconds 20] [--repeats 3] [--backend both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch import own_scheduling_group  # noqa: E402
from inference_core.runtime.threads import busy_cores, passive_waiting  # noqa: E402

passive_waiting()  # as the CLI does, before anything imports torch


def make_clip(seconds: float, folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    from inference_core.shared.paths import DEMO_SPEECH

    clip, sr = sf.read(str(DEMO_SPEECH), dtype="float32")
    path = folder / "clip.wav"
    sf.write(str(path), clip[np.arange(int(seconds * sr)) % len(clip)], sr)
    return path


class BusyCore:
    """Another process, in a session of its own (as another user's work would be), at ``nice``,
    that keeps one core busy while the block runs."""

    def __init__(self, nice: int | None):
        self.nice = nice

    def __enter__(self) -> "BusyCore":
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                     preexec_fn=lambda: own_scheduling_group(self.nice))
        time.sleep(0.5)  # let it get scheduled before the load is sampled
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def rtf(backend: str, clip: Path, seconds: float, threads: int | None = None) -> tuple[float, int]:
    """(real-time factor of one whole-file generation, threads chosen) with a freshly loaded model."""
    from inference_core.runtime.bundle import load_bundle
    from inference_core.runtime.generate import generate_file
    from inference_core.runtime.threads import resolve_threads
    from inference_core.shared.options import SessionOptions

    threads = resolve_threads(threads)  # not given: what a CLI run started now would pick
    bundle = load_bundle(None, backend=backend, threads=threads)
    options = SessionOptions.resolve(bundle.card, {})
    generate_file(bundle, clip, options)  # warm-up
    t = time.perf_counter()
    generate_file(bundle, clip, options)
    return (time.perf_counter() - t) / seconds, threads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", choices=["both", "onnx", "torch"], default="both")
    ap.add_argument("--threads", type=int, default=None,
                    help="fixed thread count (default: the default, which follows the free cores)")
    ap.add_argument("--nice", type=int, default=None,
                    help="run in a new session at this nice value, and the busy process in another at the "
                         "same; a negative one (root) approximates an idle machine (see bench_batch.py)")
    args = ap.parse_args()
    own_scheduling_group(args.nice)
    clip = make_clip(args.seconds, Path(tempfile.mkdtemp(prefix="bench-busy-")))
    backends = ["onnx", "torch"] if args.backend == "both" else [args.backend]
    out: dict[str, object] = {"seconds": args.seconds, "repeats": args.repeats, "cpu_count": os.cpu_count(),
                              "nice": os.getpriority(os.PRIO_PROCESS, 0),
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                              "loadavg_before": [float(v) for v in open("/proc/loadavg").read().split()[:3]],
                              "busy_cores_before": round(busy_cores(0.5), 2)}
    for backend in backends:
        idle: list[float] = []
        busy: list[float] = []
        threads: dict[str, int] = {}
        for _ in range(args.repeats):
            value, threads["idle"] = rtf(backend, clip, args.seconds, args.threads)
            idle.append(value)
            with BusyCore(args.nice):
                value, threads["busy"] = rtf(backend, clip, args.seconds, args.threads)
            busy.append(value)
        out[backend] = {
            "rtf_idle": round(statistics.median(idle), 4), "rtf_busy": round(statistics.median(busy), 4),
            "rtf_idle_runs": [round(v, 4) for v in idle], "rtf_busy_runs": [round(v, 4) for v in busy],
            "threads_idle": threads["idle"], "threads_busy": threads["busy"],
            "ratio_busy_vs_idle": round(statistics.median(busy) / statistics.median(idle), 3),
        }
    out["busy_cores_after"] = round(busy_cores(0.5), 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
