"""Thread counts follow the cores actually free, and waiting threads sleep (issue 18 row 13).

Oversubscription collapsed throughput: 2 spinning torch threads with one core busy made a 20 s
file take 14.4 s instead of 2.4 s. The speed itself is a benchmark (bench/bench_busy_core.py);
these tests hold the three causes fixed: the default follows the free cores, torch's OpenMP
threads wait passively, ONNX Runtime's threads never spin."""

import os
import subprocess
import sys
import time

import pytest

from inference_core.runtime import threads


def test_the_default_splits_the_free_cores_between_workers(monkeypatch):
    assert threads.MAX_USEFUL_THREADS == 1  # measured: a second thread slows the per-step networks
    assert threads.default_threads(1, busy=0.0) == 1
    monkeypatch.setattr(threads, "MAX_USEFUL_THREADS", 4)  # the splitting, were more threads useful
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert threads.free_cores(busy=0.0) == 8 and threads.free_cores(busy=2.6) == 5
    assert threads.free_cores(busy=9.0) == 1  # never 0
    assert threads.default_threads(1, busy=0.0) == 4
    assert threads.default_threads(4, busy=0.0) == 2 and threads.default_threads(8, busy=0.0) == 1
    assert threads.default_threads(1, busy=7.2) == 1  # one core left: one thread
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.default_threads(1, busy=0.0) == 2 and threads.default_threads(1, busy=1.0) == 1
    assert threads.default_threads(2, busy=0.0) == 1
    assert threads.resolve_threads(3) == 3  # asked for: taken as given


def test_a_busy_core_is_seen():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.busy_cores(0.3) >= 0.7
        assert threads.free_cores() <= max(1, threads.usable_cores() - 1)
    finally:
        busy.kill()
        busy.wait()


@pytest.mark.parametrize("entry", ["import inference_core.runtime.torch_backend",
                                   "from inference_core.cli import main; main(['info', '/nonexistent'])"])
def test_torch_threads_wait_passively(entry):
    """libgomp reads OMP_WAIT_POLICY once, when torch loads it: set before any torch import,
    and inherited by --jobs workers (spawned with this environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")}
    code = (f"import os\n{entry}\nimport torch\n"
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['OPENBLAS_NUM_THREADS'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "PASSIVE 1", r.stderr[-2000:]


def test_onnx_runtime_threads_never_spin():
    from inference_core.runtime.bundle import load_bundle

    backend = load_bundle(None, backend="onnx", threads=2).backend
    for session in backend._sessions.values():  # type: ignore[attr-defined]
        opts = session.get_session_options()
        assert opts.intra_op_num_threads == 2
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
