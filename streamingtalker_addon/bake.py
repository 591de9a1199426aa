"""Headless bake: many dialogue lines into one character, one action per line (and FBX per line).

Run with the ``bpy`` module or inside Blender::

    python -m streamingtalker_addon.bake --blend CHARACTER.blend --mesh Face lines/ --out baked/ [--fbx]
    blender -b CHARACTER.blend --python-expr "import streamingtalker_addon.bake as b; b.main(['--mesh', 'Face', 'lines/', '--out', 'baked/'])"

Why it is built this way: a pipeline TD has thousands of lines per character and no UI.
Inputs are the ``.npz`` files of ``python -m inference_core generate`` (the batch, any
number of machines) or audio files, which go through the bridge exactly as *Generate*
does (the same job, the same server kept for every line). Either way the keys are
written by the add-on's one keyframe writer, the channel binding and its errors are
the add-on's own, and FBX goes through the add-on's exporter (the options that keep
shape-key animation). Each line becomes an action named after its file (unique names
as the batch makes them: a mirrored folder, then the extension, then a counter), kept
with a fake user, saved into ``OUT/<character>_lines.blend``; the character file itself
is not changed. A bad line is reported and skipped; the others are kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .client.core import BridgeError, naming
from .logic import framerate

AUDIO = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac"}


class BakeError(ValueError):
    """Nothing can be baked (bad character file, mesh, arguments); the message is for the user."""


def collect(inputs: Sequence[str]) -> list[tuple[Path, str]]:
    """(file, unique line name) for every ``.npz`` or audio file of ``inputs`` (files or folders)."""
    found: list[tuple[Path, Path | None]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += [(f, p) for f in sorted(p.rglob("*")) if f.is_file() and
                      (f.suffix.lower() == ".npz" or f.suffix.lower() in AUDIO)]
        else:
            found.append((p, None))
    keys = naming.unique_keys((f, naming.base_key(f, root)) for f, root in found)
    return [(f, k) for (f, _), k in zip(found, keys)]


def read_npz(path: Path) -> tuple[np.ndarray, list[str], float]:
    """(weights (T, K), channel names, fps) of a ``generate`` output; ValueError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            weights = np.asarray(z["weights"], np.float32)
            channels = [str(c) for c in z["channels"]]
            fps = float(z["fps"])
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise ValueError(f"{path.name} is not a StreamingTalker output (.npz with weights, channels, fps): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if weights.ndim != 2 or weights.shape[1] != len(channels) or not fps > 0 or not np.isfinite(weights).all():
        raise ValueError(f"{path.name}: weights, channels and fps do not fit together")
    return weights, channels, fps


def write_line_action(obj: Any, pairs: Any, frames: np.ndarray, name: str, frame_start: int) -> Any:
    """A new action named ``name`` holding ``frames`` (scene rate, all model channels) on
    ``obj``'s shape keys through the add-on's writer, kept with a fake user."""
    from .blender import keyframes

    writer = keyframes.TakeWriter(obj, pairs, frame_start, "NEW", take_name=name)
    writer.write_bulk(frames)
    writer.finish()
    writer.action.use_fake_user = True
    return writer.action


def _bake_audio(obj: Any, path: Path, name: str, frame_start: int, settings: Any, timeout: float) -> Any:
    """An audio line through the bridge, as *Generate* does it (the same job and server)."""
    from . import state
    from .blender import audio
    from .jobs.generation import GenerationJob

    st = state.get()
    pcm = audio.decode_file(path, 16000)
    job = GenerationJob(st, _scene(), obj, pcm, frame_start, {}, "NEW", settings)
    st.job = job
    end = job.run_sync(timeout)
    st.job = None
    if job.writer is None or end != "done":
        raise BridgeError(job.driver.error or f"generation ended as {end}")
    job.writer.action.name = name
    job.writer.action.use_fake_user = True
    return job.writer.action


def _stop_server() -> None:
    """The server audio lines started (if any) ends with the bake."""
    from . import state

    try:
        state.get().server.shutdown()
    except RuntimeError:
        pass


def _scene() -> Any:
    import bpy

    return bpy.context.scene


def _ensure_registered() -> None:
    """The add-on's properties (a saved channel mapping) and state exist (enable it if needed)."""
    import bpy

    from . import state

    try:
        state.get()
    except RuntimeError:
        bpy.ops.preferences.addon_enable(module=__package__ or "streamingtalker_addon")


def find_mesh(name: str) -> Any:
    """The target object, checked as the add-on checks a target (BakeError otherwise)."""
    import bpy

    from .jobs import inputs

    obj = bpy.data.objects.get(name)
    if obj is None:
        meshes = sorted(o.name for o in bpy.data.objects if o.type == "MESH")
        raise BakeError(f"no object named '{name}' in the file (meshes: {', '.join(meshes) or 'none'})")
    try:
        inputs.check_mesh(obj)
    except inputs.InputError as exc:
        raise BakeError(str(exc)) from None
    return obj


def _precheck(obj: Any, lines: list[tuple[Path, str]], settings: Any) -> None:
    """Refuse a mesh the model's channels cannot drive before any line is written (the add-on's
    own check and message), with the channels of the first ``.npz`` or of the configured model."""
    from . import state
    from .jobs import inputs

    first = next((p for p, _ in lines if p.suffix.lower() == ".npz"), None)
    card = None
    if first is not None:
        try:
            card = {"channels": read_npz(first)[1]}
        except ValueError:
            pass  # that line fails on its own
    try:
        inputs.precheck_target(obj, card or inputs.expected_card(state.get(), settings))
    except inputs.InputError as exc:
        raise BakeError(str(exc)) from None


def _bake_line(obj: Any, path: Path, name: str, frame_start: int, fps: float, settings: Any, timeout: float) -> Any:
    from .jobs import inputs

    if path.suffix.lower() != ".npz":
        return _bake_audio(obj, path, name, frame_start, settings, timeout)
    weights, channels, model_fps = read_npz(path)
    pairs = inputs.resolve_binding(obj, channels).pairs  # the add-on's mapping and its errors
    return write_line_action(obj, pairs, framerate.resample(weights, model_fps, fps), name, frame_start)


def bake(obj: Any, lines: list[tuple[Path, str]], out: Path, character: str, fbx: bool, actions: bool,
         settings: Any, timeout: float = 600.0) -> dict[str, Any]:
    """Write every line onto ``obj``; returns a report (lines written, errors, files, seconds)."""
    import bpy

    from .blender import fbx_export, keyframes
    from .jobs import inputs

    _precheck(obj, lines, settings)
    scene = _scene()
    fps = inputs.scene_fps(scene)
    key = obj.data.shape_keys
    anim = key.animation_data
    saved = (anim.action if anim else None, anim.action_slot if anim and keyframes.layered_actions() else None)
    report: dict[str, Any] = {"lines": [], "errors": [], "fbx": []}
    t0 = time.perf_counter()
    for path, name in lines:
        try:
            action = _bake_line(obj, path, name, int(scene.frame_start), fps, settings, timeout)
        except (ValueError, OSError, BridgeError) as exc:  # this line only (InputError is a ValueError)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            report["errors"].append({"input": str(path), "error": text})
            print(f"error: {path}: {text}", file=sys.stderr)
            continue
        report["lines"].append({"input": str(path), "action": action.name})
        if fbx:
            keyframes.fcurve_collection(action, key)  # this line's action on the mesh
            try:
                report["fbx"].append(fbx_export.export_fbx(bpy.context, obj, out / "fbx" / f"{name}.fbx")["path"])
            except (ValueError, OSError, RuntimeError) as exc:
                report["errors"].append({"input": str(path), "error": f"FBX: {exc}"})
                print(f"error: {path}: FBX: {exc}", file=sys.stderr)
    if key.animation_data is not None:  # the character as it was: its own action (or none) assigned
        key.animation_data.action = saved[0]
        if saved[1] is not None:
            key.animation_data.action_slot = saved[1]
    if actions and report["lines"]:
        blend = out / f"{character}_lines.blend"
        try:
            out.mkdir(parents=True, exist_ok=True)
            bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True, compress=False)
        except (OSError, RuntimeError) as exc:
            raise BakeError(f"cannot write {blend}: {str(exc).strip().splitlines()[-1]}") from None
        report["blend"] = str(blend)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m streamingtalker_addon.bake", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help=".npz files from `generate`, audio files, or folders of them")
    p.add_argument("--blend", default=None, help="the character's .blend (default: the file Blender has open)")
    p.add_argument("--mesh", required=True, help="the face mesh object (its shape keys are driven)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fbx", action="store_true", help="also one FBX per line (OUT/fbx/<line>.fbx)")
    p.add_argument("--actions", action="store_true",
                   help="write OUT/<character>_lines.blend with one action per line (the default when --fbx "
                        "is not given)")
    p.add_argument("--model", default=None, help="checkpoint for audio inputs (default: the add-on's setting)")
    p.add_argument("--python", default=None, help="Python that runs the inference server for audio inputs")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one audio line may take")
    args = p.parse_args(argv)
    args.actions = args.actions or not args.fbx
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import dataclasses

    import bpy

    args = parse_args(argv)
    try:
        if args.blend:
            blend = Path(args.blend)
            if not blend.is_file():
                raise BakeError(f"character file not found: {blend}")
            try:
                bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
            except RuntimeError as exc:
                raise BakeError(f"cannot open {blend}: {str(exc).strip().splitlines()[-1]}") from None
        character = Path(bpy.data.filepath).stem or "character"
        _ensure_registered()
        from .ui.prefs import runtime_settings

        settings = runtime_settings(bpy.context)
        if args.model or args.python:
            settings = dataclasses.replace(settings, model_path=args.model or settings.model_path,
                                           python_path=args.python or settings.python_path)
        obj = find_mesh(args.mesh)
        lines = collect(args.inputs)
        if not lines:
            raise BakeError("no .npz or audio files in the given inputs")
        report = bake(obj, lines, Path(args.out), character, args.fbx, args.actions, settings, args.timeout)
    except BakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        _stop_server()
    print(f"baked {len(report['lines'])} of {len(lines)} line(s) in {report['seconds']:.1f} s"
          + (f" -> {report['blend']}" if report.get("blend") else "")
          + (f", {len(report['fbx'])} FBX" if args.fbx else ""))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
