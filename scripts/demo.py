"""The main job (``make demo``): headless Blender turns the bundled speech clip into animation.

Adds the demo head, generates from ``inference_core.shared.paths.DEMO_SPEECH`` through the
real bridge subprocess (this interpreter runs the server: it has torch), and
writes ``out/demo.blend``, ``out/demo.fbx`` and a preview (video with audio, or a
PNG contact sheet). Prints a JSON summary with the timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: the add-on and the core are top-level packages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out")
    ap.add_argument("--audio", type=Path, default=None, help="speech file (default: the bundled clip)")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    import bpy

    from inference_core.shared import paths
    from streamingtalker_addon import state
    from streamingtalker_addon.blender import fbx_export, preview

    audio = (args.audio or paths.DEMO_SPEECH).resolve()
    model = (args.model or paths.DEFAULT_MODEL).resolve()
    for what, p in (("speech clip", audio), ("model", model)):
        if not p.is_file():
            print(f"demo: the {what} is missing: {p}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module="streamingtalker_addon")
    prefs = bpy.context.preferences.addons["streamingtalker_addon"].preferences
    prefs.python_path = sys.executable
    prefs.model_path = str(model)
    scene = bpy.context.scene
    scene.render.fps = args.fps
    scene.frame_start = 1
    st = scene.streamingtalker

    assert bpy.ops.streamingtalker.add_demo_head() == {"FINISHED"}
    head = st.target
    st.audio_source = "FILE"
    st.audio_file = str(audio)
    st.frame_start = 1
    t0 = time.monotonic()
    result = bpy.ops.streamingtalker.generate(timeout=args.timeout)
    gen_s = time.monotonic() - t0
    job = state.get().last_job
    if result != {"FINISHED"} or job.driver.state != "done":
        print(f"demo: generation failed: {st.status}", file=sys.stderr)
        return 1
    scene.frame_end = max(scene.frame_end, job.writer.last_frame)
    scene.frame_current = 1

    blend = args.out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    fbx_info = fbx_export.export_fbx(bpy.context, head, str(args.out / "demo.fbx"))
    preview_report: dict = {}
    preview_file = preview.render_preview(scene, args.out / "demo_preview", audio_path=str(audio),
                                          report=preview_report)
    runtime = state.get().runtime_lines()
    state.get().server.shutdown()
    summary = {
        "audio": str(audio), "audio_seconds": round(job.driver.duration, 3), "scene_fps": args.fps,
        "frames_keyed": job.written, "channels_bound": len(job.binding.pairs) if job.binding else 0,
        "generate_seconds_incl_model_load": round(gen_s, 3),
        "click_to_first_keys_seconds": round(job.first_motion_seconds or -1, 3),
        "blend": str(blend), "fbx": str(args.out / "demo.fbx"), "fbx_info": fbx_info,
        "preview": str(preview_file), "preview_report": preview_report, "runtime": runtime,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
