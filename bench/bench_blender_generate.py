"""Whole-file generation in Blender: N seconds of speech -> keyframes on the demo head.

Runs the add-on's *Generate from audio* operator in headless Blender (the
synchronous path of the same driver the modal operator steps), through the
real bridge subprocess, starting cold: the time includes starting the
inference process and loading the model. Prints one JSON object.

Run: .venv/bin/python bench/bench_blender_generate.py [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0 = the server's default)")
    args = ap.parse_args()

    import bpy
    import numpy as np
    import soundfile as sf

    from inference_core.shared import paths
    from inference_core.audio.io import load_file
    from streamingtalker_addon import operators, runtime

    clip = load_file(paths.DEMO_SPEECH)
    reps = int(np.ceil(args.seconds * 16000 / clip.size))
    audio = np.tile(clip, reps)[: int(args.seconds * 16000)]
    tmp = Path(tempfile.mkdtemp())
    wav = tmp / "speech.wav"
    sf.write(str(wav), audio, 16000)
    runs = []
    for _ in range(args.repeats):
        runtime.SERVER.shutdown()  # cold: the run starts the inference process and loads the model
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.preferences.addon_enable(module="streamingtalker_addon")
        prefs = bpy.context.preferences.addons["streamingtalker_addon"].preferences
        prefs.python_path = sys.executable
        prefs.model_path = str(args.model or paths.DEFAULT_MODEL)
        prefs.threads = args.threads
        scene = bpy.context.scene
        scene.render.fps = 30
        st = scene.streamingtalker
        bpy.ops.streamingtalker.add_demo_head()
        st.audio_source = "FILE"
        st.audio_file = str(wav)
        t0 = time.monotonic()
        assert bpy.ops.streamingtalker.generate(timeout=600) == {"FINISHED"}, st.status
        total = time.monotonic() - t0
        job = operators.LAST_JOB
        runs.append({"seconds": total, "first_keys": job.first_motion_seconds,
                     "keys": job.written * (len(job.binding.pairs) if job.binding else 0)})
    runtime.SERVER.shutdown()
    med = statistics.median(r["seconds"] for r in runs)
    print(json.dumps({
        "audio_seconds": args.seconds, "repeats": args.repeats, "threads": args.threads or "default",
        "click_to_all_keys_seconds_median": round(med, 3),
        "click_to_all_keys_runs": [round(r["seconds"], 3) for r in runs],
        "click_to_first_keys_seconds_median": round(statistics.median(r["first_keys"] for r in runs), 3),
        "keys_written": runs[-1]["keys"],
        "includes": "inference process start + model load + decode + generation + keyframe writing",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
