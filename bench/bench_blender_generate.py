"""Whole-file generation in Blender: N seconds of speech -> keyframes on the demo head.

Runs the add-on's *Generate from audio* operator in headless Blender (the
synchronous path of the same driver the modal operator steps), through the
real bridge subprocess, starting cold: the time includes starting the
inference process and loading the model. Prints one JSON object.

Runtimes (``--runtime``):

* ``builtin`` — what an installed extension does with nothing configured: the
  server runs in this interpreter with the ONNX Runtime backend (no torch).
* ``torch`` — a torch runtime (``python_path`` set to this interpreter) on a copy
  of the model without its ONNX files, so ``auto`` runs the torch backend.

CPU seconds of Blender and of the server (its whole life) and the load average are printed
beside wall time. Also times server start → ``hello`` for each (``BridgeClient.launch``, model load included).

Run: .venv/bin/python bench/bench_blender_generate.py [--seconds 60] [--repeats 3] [--runtime both]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _generate_runs(wav: Path, model: str, python_path: str, repeats: int, threads: int) -> dict:
    import bpy

    from streamingtalker_addon import state

    runs = []
    for _ in range(repeats):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.preferences.addon_enable(module="streamingtalker_addon")  # a fresh state: no server yet
        prefs = bpy.context.preferences.addons["streamingtalker_addon"].preferences
        prefs.python_path = python_path
        prefs.model_path = model
        prefs.threads = threads
        scene = bpy.context.scene
        scene.render.fps = 30
        st = scene.streamingtalker
        bpy.ops.streamingtalker.add_demo_head()
        st.audio_source = "FILE"
        st.audio_file = str(wav)
        own0, kids0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        assert bpy.ops.streamingtalker.generate(timeout=600) == {"FINISHED"}, st.status
        total = time.monotonic() - t0
        own = _cpu(resource.RUSAGE_SELF) - own0
        job = state.get().last_job
        runtime = state.get().server.describe()
        bpy.ops.preferences.addon_disable(module="streamingtalker_addon")  # closes the server: next run is cold
        runs.append({"seconds": total, "first_keys": job.first_motion_seconds,
                     "keys": job.written * (len(job.binding.pairs) if job.binding else 0),
                     "runtime": runtime, "blender_cpu": own,
                     "server_cpu": _cpu(resource.RUSAGE_CHILDREN) - kids0})  # its whole life, reaped
    return {
        "click_to_all_keys_seconds_median": _median([r["seconds"] for r in runs]),
        "click_to_all_keys_runs": [round(r["seconds"], 3) for r in runs],
        "click_to_first_keys_seconds_median": _median([r["first_keys"] for r in runs]),
        "keys_written": runs[-1]["keys"],
        # CPU seconds: on a shared machine wall time is mostly the wait for a core
        "blender_cpu_seconds_median": _median([r["blender_cpu"] for r in runs]),
        "server_cpu_seconds_median": _median([r["server_cpu"] for r in runs]),
        "runtime": runs[-1]["runtime"],
    }


def _hello_runs(model: str, backend: str, repeats: int, threads: int, site_dirs: tuple[str, ...]) -> dict:
    from inference_core.shared.client import BridgeClient

    times = []
    for _ in range(repeats):
        t0 = time.monotonic()
        client = BridgeClient.launch(python=sys.executable, model=model, backend=backend, threads=threads or None,
                                     site_dirs=site_dirs)
        times.append(time.monotonic() - t0)
        got = (client.hello.get("runtime") or {}).get("backend") if client.hello else None
        client.close()
        assert got == backend, (got, backend)
    return {"server_start_to_hello_seconds_median": _median(times),
            "server_start_to_hello_runs": [round(t, 3) for t in times]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runtime", choices=["builtin", "torch", "both"], default="both")
    ap.add_argument("--model", default=None, help="checkpoint with its ONNX files (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0 = the server's default)")
    args = ap.parse_args()

    import numpy as np
    import soundfile as sf

    from inference_core.audio.io import load_file
    from inference_core.shared import paths
    from streamingtalker_addon.client.runtime import onnxruntime_site_dir

    clip = load_file(paths.DEMO_SPEECH)
    reps = int(np.ceil(args.seconds * 16000 / clip.size))
    audio = np.tile(clip, reps)[: int(args.seconds * 16000)]
    tmp = Path(tempfile.mkdtemp())
    wav = tmp / "speech.wav"
    sf.write(str(wav), audio, 16000)
    model = str(args.model or paths.DEFAULT_MODEL)
    torch_model = tmp / "torch_only" / Path(model).name  # the same weights without ONNX files
    torch_model.parent.mkdir()
    shutil.copy(model, torch_model)

    out: dict = {"audio_seconds": args.seconds, "repeats": args.repeats, "threads": args.threads or "default",
                 "loadavg_before": round(os.getloadavg()[0], 2),
                 "includes": "inference process start + model load + decode + generation + keyframe writing"}
    site = onnxruntime_site_dir()
    if args.runtime in ("builtin", "both"):
        out["builtin_onnx"] = _generate_runs(wav, model, "", args.repeats, args.threads)
        out["builtin_onnx"].update(_hello_runs(model, "onnx", args.repeats, args.threads, (site,) if site else ()))
    if args.runtime in ("torch", "both"):
        out["torch"] = _generate_runs(wav, str(torch_model), sys.executable, args.repeats, args.threads)
        out["torch"].update(_hello_runs(str(torch_model), "torch", args.repeats, args.threads, ()))
    shutil.rmtree(tmp, ignore_errors=True)
    out["loadavg_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
