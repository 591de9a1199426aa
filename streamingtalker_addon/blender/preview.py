"""Headless preview render of the animation, with the speech muxed in.

Why: a batch run (``make demo``, the CLI) has no viewport, so the quickest way to
judge lip sync is a small video with the audio. Tried in order:

1. Blender's own FFMPEG writer (H.264 + AAC in MP4); the speech is a sound strip in
   the scene's sequencer, which Blender mixes into the file.
2. PNG frames, muxed with the system ``ffmpeg`` when the build has no video writer.
3. A PNG contact sheet (a grid of frames) when no encoder exists at all.

:func:`render_contact_sheet` renders chosen frames as stills in the same look and tiles
them (the demo's picture of the head talking).

Workbench renders fast and headless; EEVEE is the fallback engine. Every render
setting the function touches is put back afterwards.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from . import camera, strips

class _Restore:
    """Snapshot attributes (dotted paths on the scene) and put them back on exit."""

    def __init__(self, scene: Any, paths: list[str]) -> None:
        self.scene = scene
        self.saved: list[tuple[Any, str, Any]] = []
        for path in paths:
            owner, attr = self._resolve(path)
            self.saved.append((owner, attr, getattr(owner, attr)))

    def _resolve(self, path: str) -> tuple[Any, str]:
        owner = self.scene
        *parts, attr = path.split(".")
        for p in parts:
            owner = getattr(owner, p)
        return owner, attr

    def restore(self) -> None:
        for owner, attr, value in reversed(self.saved):
            try:
                setattr(owner, attr, value)
            except (AttributeError, TypeError, ValueError):
                pass  # e.g. an enum value invalid in the current state; nothing the user set is lost


_SETTINGS = [
    "render.engine", "render.resolution_x", "render.resolution_y", "render.resolution_percentage",
    "render.filepath", "render.use_file_extension", "render.use_sequencer", "render.use_compositing",
    "render.image_settings.media_type", "render.image_settings.file_format",
    "render.image_settings.color_mode",
    "render.ffmpeg.format", "render.ffmpeg.codec", "render.ffmpeg.audio_codec",
    "render.ffmpeg.audio_channels", "render.ffmpeg.audio_mixrate", "render.ffmpeg.constant_rate_factor",
    "render.ffmpeg.ffmpeg_preset", "render.ffmpeg.gopsize",
    "display.shading.light", "display.shading.color_type", "display.shading.show_specular_highlight",
    "display.shading.show_cavity", "display.shading.studio_light", "display.render_aa",
    "frame_start", "frame_end", "frame_current", "camera",
]


def _set_engine(scene: Any, engine: str) -> bool:
    try:
        scene.render.engine = engine
    except TypeError:
        return False
    return scene.render.engine == engine


def _workbench_look(scene: Any) -> None:
    """Matte studio lighting; the demo head's painted colours when present."""
    sh = scene.display.shading
    sh.light = "STUDIO"
    has_paint = any(o.type == "MESH" and o.data.color_attributes.get("Col") is not None
                    for o in scene.objects if not o.hide_render)
    sh.color_type = "VERTEX" if has_paint else "MATERIAL"
    sh.show_specular_highlight = False
    sh.show_cavity = False
    scene.display.render_aa = "5"


def _ensure_world(scene: Any) -> Any:
    """A soft grey backdrop when the scene has no world (Workbench renders it black)."""
    import bpy

    if scene.world is not None:
        return None
    world = bpy.data.worlds.new("StreamingTalker preview backdrop")
    world.color = (0.22, 0.23, 0.25)
    scene.world = world
    return world


def _ensure_camera(scene: Any) -> Any:
    """Use the scene camera, or frame the largest shape-keyed mesh like the demo does."""
    if scene.camera is not None:
        return None
    faces = [o for o in scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
    if not faces:
        faces = [o for o in scene.objects if o.type == "MESH"]
    if not faces:
        raise ValueError("nothing to render: the scene has no mesh and no camera")
    target = max(faces, key=lambda o: len(o.data.vertices))
    return camera.setup_preview_camera(SimpleNamespace(scene=scene), target)


def _add_sound(scene: Any, audio_path: str, frame: int) -> Any:
    """A sound strip at ``frame`` (unless the scene already plays this file)."""
    target = str(Path(audio_path).resolve())
    if strips.find_sound(scene, target) is not None:
        return None
    return strips.add_sound(scene, "StreamingTalker preview audio", target, frame)


def _render_animation(scene: Any) -> None:
    import bpy

    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(animation=True, scene=scene.name)


def _render_video_blender(scene: Any, tmp: Path, with_audio: bool) -> Path:
    im = scene.render.image_settings
    if hasattr(im, "media_type"):
        im.media_type = "VIDEO"
    im.file_format = "FFMPEG"
    ff = scene.render.ffmpeg
    ff.format = "MPEG4"
    ff.codec = "H264"
    ff.constant_rate_factor = "MEDIUM"
    ff.ffmpeg_preset = "REALTIME"
    ff.gopsize = 12
    ff.audio_codec = "AAC" if with_audio else "NONE"
    if with_audio:
        ff.audio_channels = "STEREO"
        ff.audio_mixrate = 48000
    scene.render.filepath = str(tmp / "movie_")
    scene.render.use_file_extension = True
    _render_animation(scene)
    found = sorted(tmp.glob("movie_*.mp4"))
    if not found or found[0].stat().st_size == 0:
        raise RuntimeError("Blender's FFMPEG writer produced no file")
    return found[0]


def _render_frames(scene: Any, tmp: Path) -> list[Path]:
    im = scene.render.image_settings
    if hasattr(im, "media_type"):
        im.media_type = "IMAGE"
    im.file_format = "PNG"
    im.color_mode = "RGB"
    scene.render.filepath = str(tmp / "frame_####")
    scene.render.use_file_extension = True
    _render_animation(scene)
    frames = sorted(tmp.glob("frame_*.png"))
    if not frames:
        raise RuntimeError("rendering produced no frames")
    return frames


def _mux_with_system_ffmpeg(frames: list[Path], fps: float, audio: str | None, start_seconds: float,
                            out: Path) -> Path:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("no system ffmpeg")
    pattern = frames[0].parent / "frame_%04d.png"
    first = int(frames[0].stem.split("_")[-1])
    cmd = [exe, "-loglevel", "error", "-y", "-framerate", f"{fps:.6f}", "-start_number", str(first),
           "-i", str(pattern)]
    if audio:
        cmd += ["-ss", f"{max(0.0, start_seconds):.3f}", "-i", audio, "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return out


def contact_sheet(frames: list[Path], out: Path, max_tiles: int = 16) -> Path:
    """Tile up to ``max_tiles`` evenly spaced frames into one PNG (read and written by Blender)."""
    import bpy
    import numpy as np

    pick = [frames[round(i * (len(frames) - 1) / max(1, min(max_tiles, len(frames)) - 1))]
            for i in range(min(max_tiles, len(frames)))]
    imgs = []
    for p in pick:
        img: Any = bpy.data.images.load(str(p), check_existing=False)
        w, h = img.size
        px = np.empty(w * h * 4, np.float32)
        img.pixels.foreach_get(px)
        imgs.append(px.reshape(h, w, 4))
        bpy.data.images.remove(img)
    h, w = imgs[0].shape[:2]
    cols = math.ceil(math.sqrt(len(imgs)))
    rows = math.ceil(len(imgs) / cols)
    sheet = np.ones((rows * h, cols * w, 4), np.float32)
    for i, tile in enumerate(imgs):  # Blender's pixel rows run bottom-up
        r, c = divmod(i, cols)
        sheet[(rows - 1 - r) * h:(rows - r) * h, c * w:(c + 1) * w] = tile
    sheet_img: Any = bpy.data.images.new("StreamingTalker contact sheet", cols * w, rows * h, alpha=False)
    sheet_img.pixels.foreach_set(sheet.ravel())
    sheet_img.filepath_raw = str(out)
    sheet_img.file_format = "PNG"
    sheet_img.save()
    bpy.data.images.remove(sheet_img)
    return out


@contextmanager
def _preview_scene(scene: Any, resolution: tuple[int, int], report: dict[str, Any]) -> Iterator[None]:
    """The scene set up for a preview render (camera, backdrop, engine, size), put back afterwards."""
    restore = _Restore(scene, [p for p in _SETTINGS if _has(scene, p)])
    cam = None
    world = None
    try:
        cam = _ensure_camera(scene)
        world = _ensure_world(scene)
        scene.render.resolution_x, scene.render.resolution_y = resolution
        scene.render.resolution_percentage = 100
        scene.render.use_compositing = False
        if _set_engine(scene, "BLENDER_WORKBENCH"):
            _workbench_look(scene)
            report["engine"] = "BLENDER_WORKBENCH"
        else:
            _set_engine(scene, "BLENDER_EEVEE_NEXT") or _set_engine(scene, "BLENDER_EEVEE")
            report["engine"] = scene.render.engine
        # only sound strips of our own: render the 3D scene, not the (empty) sequencer picture
        scene.render.use_sequencer = False
        yield
    finally:
        restore.restore()
        if world is not None:
            import bpy

            scene.world = None
            bpy.data.worlds.remove(world)
        if cam is not None and scene.camera is None:  # a camera we made stays, for the user to reuse
            scene.camera = cam


def render_preview(scene: Any, out_path: str | Path, audio_path: str | None = None,
                   resolution: tuple[int, int] = (480, 480),
                   frame_range: tuple[int, int] | None = None, report: dict[str, Any] | None = None) -> Path:
    """Render ``scene``'s animation to ``out_path`` (.mp4, or .png contact sheet); returns the file.

    The audio (if given) starts at the first rendered frame, as in the add-on's
    default of a sound strip at the scene's start frame. ``report``, when given, is
    filled with how it went: method, engine, frames, seconds per frame.
    """
    out = Path(out_path).expanduser().resolve()
    if audio_path is not None and not Path(audio_path).is_file():
        raise FileNotFoundError(f"audio file not found: {audio_path}")
    out.parent.mkdir(parents=True, exist_ok=True)
    start, end = frame_range if frame_range is not None else (scene.frame_start, scene.frame_end)
    if end < start:
        raise ValueError(f"empty frame range {start}..{end}")
    fps = scene.render.fps / scene.render.fps_base

    strip = None
    t0 = time.monotonic()
    report = {} if report is None else report
    report.clear()
    report["frames"] = end - start + 1
    try:
        with _preview_scene(scene, resolution, report):
            scene.frame_start, scene.frame_end = start, end
            blender_audio = audio_path is not None
            if audio_path is not None:
                try:
                    strip = _add_sound(scene, audio_path, start)
                except strips.SoundStripError as exc:  # no Audaspace: the system ffmpeg muxes the audio instead
                    report["sound_strip_error"] = str(exc)
                    blender_audio = False
            with tempfile.TemporaryDirectory(prefix="stk_preview_") as td:
                result = _encode(scene, Path(td), out, fps, audio_path, blender_audio, report)
    finally:
        strips.remove(scene, strip)
    seconds = time.monotonic() - t0
    report.update(path=str(result), seconds=round(seconds, 3),
                  seconds_per_frame=round(seconds / report["frames"], 4), audio=audio_path is not None)
    return result


def _encode(scene: Any, tmp: Path, out: Path, fps: float, audio_path: str | None, blender_audio: bool,
            report: dict[str, Any]) -> Path:
    """The preview file: Blender's own video writer (when Blender has the audio, or there is none),
    else PNG frames through the system ffmpeg (which muxes the audio), else a contact sheet."""
    if blender_audio or audio_path is None:
        try:
            movie = _render_video_blender(scene, tmp, blender_audio)
            result = out.with_suffix(".mp4")
            shutil.move(str(movie), result)
            report["method"] = "blender-ffmpeg"
            return result
        except (RuntimeError, TypeError) as exc:  # a build without FFMPEG, or a failed write
            report["blender_ffmpeg_error"] = str(exc)
    frames = _render_frames(scene, tmp)
    try:
        result = _mux_with_system_ffmpeg(frames, fps, audio_path, 0.0, out.with_suffix(".mp4"))
        report["method"] = "system-ffmpeg"
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        report["system_ffmpeg_error"] = str(exc)
        result = contact_sheet(frames, out.with_suffix(".png"))
        report["method"] = "contact-sheet"
    return result


def render_contact_sheet(scene: Any, frames: list[int], out_path: str | Path,
                         tile: tuple[int, int] = (240, 240)) -> Path:
    """Render ``frames`` of the animation as stills and tile them into one PNG (the preview's look)."""
    if not frames:
        raise ValueError("no frames for the contact sheet")
    out = Path(out_path).expanduser().resolve().with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    saved_frame = scene.frame_current
    with _preview_scene(scene, tile, {}), tempfile.TemporaryDirectory(prefix="stk_sheet_") as td:
        im = scene.render.image_settings
        if hasattr(im, "media_type"):
            im.media_type = "IMAGE"
        im.file_format, im.color_mode = "PNG", "RGB"
        stills = []
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            scene.render.filepath = str(Path(td) / f"still_{i:03d}.png")
            _render_still(scene)
            stills.append(Path(scene.render.filepath))
        contact_sheet(stills, out, max_tiles=len(stills))
    scene.frame_set(saved_frame)
    return out


def _render_still(scene: Any) -> None:
    import bpy

    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)


def _has(scene: Any, path: str) -> bool:
    owner = scene
    for p in path.split("."):
        if not hasattr(owner, p):
            return False
        owner = getattr(owner, p)
    return True
