"""The main job (``make demo``): headless Blender turns the bundled speech clip into animation on the demo head.

Adds the demo head (the ICT FaceKit head), generates from ``inference_core.shared.paths.DEMO_SPEECH``
through the real bridge subprocess, and writes into ``--out``:

* ``demo.blend`` — the scene: head, take (an action named after the audio), sound strip, camera;
* ``demo.fbx`` — the head and its eyes with the shape-key animation;
* ``demo_preview.mp4`` — the head talking, with the speech;
* ``demo_contact_sheet.png`` — twelve frames of the take (``--picture`` copies it, e.g. to docs/);
* ``demo_summary.json`` — the figures below, for scripts; ``demo.log`` — Blender's render and
  encoder messages, and the inference process's log.

The terminal gets a short summary only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: the add-on and the core are top-level packages

SHEET_FRAMES = 12


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout and stderr — Python's, Blender's C code's, child processes' —
    to ``log_path``; yields a stream to the real terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            terminal.close()


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e6:6.1f} MB" if n >= 100_000 else f"{n / 1e3:6.0f} kB"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace, audio: Path, model: Path) -> dict[str, Any]:
    """The job itself (all its output goes to the log); returns the summary."""
    import bpy

    from streamingtalker_addon import state
    from streamingtalker_addon.blender import fbx_export, preview
    from streamingtalker_addon.logic.highlights import expressive_frames

    t_start = time.monotonic()
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
    try:
        result = bpy.ops.streamingtalker.generate(timeout=args.timeout)
    finally:
        gen_s = time.monotonic() - t0
        state.get().server.shutdown()  # the take is written: free the model's memory for the render
    job = state.get().last_job
    if result != {"FINISHED"} or job.driver.state != "done":
        raise RuntimeError(f"generation failed: {st.status}")
    runtime = state.get().runtime_lines()
    scene.frame_start, scene.frame_end = job.writer.frame_start, job.writer.last_frame  # the take's frames

    out = args.out
    fbx_info = fbx_export.export_fbx(bpy.context, head, str(out / "demo.fbx"))
    t0 = time.monotonic()
    preview_report: dict[str, Any] = {}
    preview_file = preview.render_preview(scene, out / "demo_preview", audio_path=str(audio),
                                          resolution=(args.size, args.size), report=preview_report)
    picks = expressive_frames(job.writer.values(), job.writer.shape_keys, SHEET_FRAMES)
    sheet = preview.render_contact_sheet(scene, [job.writer.frame_start + i for i in picks],
                                         out / "demo_contact_sheet.png")
    render_s = time.monotonic() - t0
    blend = out / "demo.blend"
    scene.frame_set(1)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # last: with the preview's camera and lights
    eyes = [o for o in head.children if o.type == "MESH"]
    return {
        "audio": str(audio), "audio_seconds": round(job.driver.duration, 3), "scene_fps": args.fps,
        "frames_keyed": job.written, "channels_bound": len(job.binding.channels_bound),
        "channels_unmapped": list(job.binding.unmapped), "binding": job.binding.summary(len(job.binding.pairs)),
        "take": job.take_report,
        "head": {"vertices": len(head.data.vertices) + sum(len(e.data.vertices) for e in eyes),
                 "head_mesh_vertices": len(head.data.vertices), "eye_vertices": [len(e.data.vertices) for e in eyes],
                 "shape_keys": len(head.data.shape_keys.key_blocks) - 1},
        "generate_seconds_incl_model_load": round(gen_s, 3),
        "click_to_first_keys_seconds": round(job.first_motion_seconds or -1, 3),
        "render_seconds": round(render_s, 1), "total_seconds": round(time.monotonic() - t_start, 1),
        "blend": str(blend), "fbx": fbx_info["path"], "fbx_info": fbx_info,
        "preview": str(preview_file), "preview_report": preview_report, "contact_sheet": str(sheet),
        "contact_sheet_frames": [job.writer.frame_start + i for i in picks], "runtime": runtime,
    }


def summary_lines(s: dict[str, Any], log: Path, wall: float) -> list[str]:
    """The terminal summary: what was made, how long it took, how to open it (under 20 lines)."""
    h = s["head"]
    lacks = f"; no key for {', '.join(s['channels_unmapped'])}" if s["channels_unmapped"] else ""
    files = [(Path(s["blend"]), "the scene: head, take, sound, camera"),
             (Path(s["fbx"]), "head + eyes with the shape-key animation"),
             (Path(s["preview"]), "the head talking, with the speech"),
             (Path(s["contact_sheet"]), f"{len(s['contact_sheet_frames'])} frames of the take"),
             (Path(s["blend"]).with_name("demo_summary.json"), "these figures, for scripts"),
             (log, "render, encoder and inference messages")]
    lines = [f"StreamingTalker demo: done in {wall:.0f} s "
             f"(generate {s['generate_seconds_incl_model_load']:.1f} s incl. model load, "
             f"render {s['render_seconds']:.0f} s)",
             f"  speech  {_rel(Path(s['audio']))}, {s['audio_seconds']:.1f} s",
             f"  head    ICT FaceKit (MIT): {h['vertices']:,} vertices, {h['shape_keys']} shape keys",
             f"  take    '{s['take'].get('action', '')}': {s['frames_keyed']} frames at {s['scene_fps']} fps, "
             f"{s['channels_bound']} of 52 channels{lacks}",
             "  files"]
    lines += [f"    {_rel(p):<28} {_size(p)}  {what}" for p, what in files if p.is_file()]
    lines.append(f"  open    blender {_rel(Path(s['blend']))}   (Space plays the take with its sound; "
                 f"{_rel(Path(s['preview']))} is the video)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out")
    ap.add_argument("--audio", type=Path, default=None, help="speech file (default: the bundled clip)")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", type=int, default=400, help="preview video size in pixels (square)")
    ap.add_argument("--picture", type=Path, default=None, help="also copy the contact sheet here (docs/demo.png)")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    from inference_core.shared import paths

    audio = (args.audio or paths.DEMO_SPEECH).resolve()
    model = (args.model or paths.DEFAULT_MODEL).resolve()
    for what, p in (("speech clip", audio), ("model", model)):
        if not p.is_file():
            print(f"demo: the {what} is missing: {p}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "demo.log"
    t0 = time.monotonic()
    with output_to(log) as terminal:
        try:
            summary = run(args, audio, model)
        except Exception as exc:  # the log has the traceback; the terminal gets one line
            import traceback

            traceback.print_exc()
            print(f"demo failed: {exc} (details in {_rel(log)})", file=terminal)
            return 1
    (args.out / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if args.picture is not None:
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(summary["contact_sheet"], args.picture)
    print("\n".join(summary_lines(summary, log, time.monotonic() - t0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
