"""How many threads to run with: one per core that is actually free, and waits that sleep.

Why: the per-step networks are tiny, so their threads meet at a barrier hundreds of
times a second. When another process holds one of the cores, a thread that spins at
that barrier burns the only free core while its sibling waits to be scheduled: on
this 2-core machine a 20 s file took 14.4 s with 2 spinning torch threads and one
core busy, against 2.4 s with one thread. So:

* the default thread count follows the cores that are free now (the affinity mask,
  a cgroup CPU quota, minus what other processes are using), split between workers and
  capped at what the networks can use (:data:`MAX_USEFUL_THREADS`); the default number of
  batch workers is one per free core;
* waiting threads sleep instead of spinning: ``OMP_WAIT_POLICY=PASSIVE`` for torch's
  OpenMP pool (read once, when libgomp loads, so it is set before torch is imported),
  ``allow_spinning 0`` in ONNX Runtime's session options, and one thread for numpy's BLAS.
"""

from __future__ import annotations

import os
import time

#: Threads per worker worth having for the small per-step networks. Measured on the 2-core
#: machine (bench/bench_busy_core.py, 10 s file, medians of 4): ONNX Runtime 1 thread rtf 0.026,
#: 2 threads 0.033; torch 0.074 and 0.100. A second thread only adds synchronisation; more cores
#: are filled with more workers (``generate --jobs``) instead.
MAX_USEFUL_THREADS = 1


def passive_waiting() -> None:
    """Make OpenMP threads sleep when they wait, and keep numpy's BLAS to one thread (must run
    before torch and numpy are imported; worker processes inherit it).

    numpy's OpenBLAS starts a thread per core that spins between the log-mel's tiny matrix
    products: a batch of 20 lines took 4.4 CPU-seconds instead of 2.5 for the same wall time,
    the second core burnt for nothing (bench/bench_batch.py, --jobs 1)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def usable_cores() -> int:
    """Cores this process may run on: the affinity mask, bounded by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def busy_cores(sample_seconds: float = 0.1) -> float:
    """Cores other processes keep busy now, measured over ``sample_seconds`` (0 where unknown)."""
    a = _cpu_times()
    if a is None:
        return 0.0
    time.sleep(sample_seconds)
    b = _cpu_times()
    if b is None or b[1] <= a[1]:
        return 0.0
    return (b[0] - a[0]) / (b[1] - a[1]) * (os.cpu_count() or 1)


def free_cores(busy: float | None = None) -> int:
    """Usable cores minus the busy ones, at least 1 (``busy`` given: no measurement)."""
    busy = busy_cores() if busy is None else busy
    return max(1, usable_cores() - int(round(busy)))


def default_threads(workers: int = 1, busy: float | None = None) -> int:
    """Threads per worker so that ``workers`` workers fill the free cores without
    oversubscribing them, at most :data:`MAX_USEFUL_THREADS` (1: nothing to measure)."""
    if MAX_USEFUL_THREADS <= 1:
        return 1
    return max(1, min(MAX_USEFUL_THREADS, free_cores(busy) // max(1, workers)))


def resolve_threads(requested: int | None, workers: int = 1) -> int:
    """``requested`` when given (> 0), else :func:`default_threads`."""
    return int(requested) if requested and requested > 0 else default_threads(workers)
