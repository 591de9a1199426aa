"""Preview render in the real Blender: video with muxed audio, frame count, fallbacks."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from streamingtalker_addon.blender import preview, strips  # noqa: E402
from streamingtalker_addon.demo_head import blender as demo_head  # noqa: E402

from addon_helpers import make_speech  # noqa: E402


def _probe(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,nb_read_frames,duration", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def _scene_with_head(n_frames: int = 12):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = demo_head.add_demo_head(bpy.context)
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_start, scene.frame_end = 1, n_frames
    kb = head.data.shape_keys.key_blocks["jawOpen"]
    for f in range(1, n_frames + 1):
        kb.value = 0.5 + 0.5 * np.sin(f)
        kb.keyframe_insert("value", frame=f)
    return scene, head


@pytest.mark.bpy_matrix
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe to read the video back")
def test_video_with_audio(tmp_path):
    scene, head = _scene_with_head(12)
    speech = make_speech(tmp_path / "speech.wav", "Preview test.")
    before = (scene.render.engine, scene.render.filepath, scene.render.resolution_x, scene.frame_end)
    report: dict = {}
    out = preview.render_preview(scene, tmp_path / "preview", audio_path=str(speech), resolution=(160, 160),
                                 report=report)
    assert out.suffix == ".mp4" and out.is_file()
    info = _probe(out)
    assert int(info["video"]["nb_read_frames"]) == 12
    assert float(info["video"]["duration"]) == pytest.approx(0.5, abs=0.05)
    assert "audio" in info
    # settings, the sequencer and the frame range are as they were
    assert (scene.render.engine, scene.render.filepath, scene.render.resolution_x, scene.frame_end) == before
    assert len(list(strips.all_strips(scene))) == 0
    assert scene.camera is not None  # the framing camera stays for the user
    if bpy.app.build_options.audaspace:
        assert report["method"] == "blender-ffmpeg"
    else:  # no sound strip without Audaspace (bpy 4.2 wheels): the system ffmpeg muxes the audio
        assert report["method"] == "system-ffmpeg" and "Audaspace" in report["sound_strip_error"]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe to read the video back")
def test_frame_range_and_no_audio(tmp_path):
    scene, _ = _scene_with_head(12)
    out = preview.render_preview(scene, tmp_path / "clip.mp4", resolution=(96, 96), frame_range=(3, 7))
    info = _probe(out)
    assert int(info["video"]["nb_read_frames"]) == 5 and "audio" not in info


def test_frames_differ_and_head_is_lit(tmp_path):
    """Rendered PNG frames (the fallback path) show a lit head whose mouth moves."""
    scene, head = _scene_with_head(4)
    demo_head.setup_preview_camera(bpy.context, head)
    preview._set_engine(scene, "BLENDER_WORKBENCH")
    preview._workbench_look(scene)
    scene.render.resolution_x = scene.render.resolution_y = 96
    frames = preview._render_frames(scene, tmp_path)
    assert len(frames) == 4
    sheet = preview.contact_sheet(frames, tmp_path / "sheet.png")
    img = bpy.data.images.load(str(sheet))
    assert tuple(img.size) == (192, 192)  # 2×2 tiles
    px = np.empty(192 * 192 * 4, np.float32)
    img.pixels.foreach_get(px)
    px = px.reshape(192, 192, 4)[..., :3]
    tiles = [px[:96, :96], px[:96, 96:], px[96:, :96], px[96:, 96:]]
    for t in tiles:  # the face fills the middle of every frame, lit, with skin tones (red > blue)
        face = t[30:66, 30:66]
        assert face.mean() > 0.3 and face[..., 0].mean() > face[..., 2].mean() + 0.05
    assert max(np.abs(tiles[0] - t).mean() for t in tiles[1:]) > 1e-3  # the jaw moved


def test_bad_inputs(tmp_path):
    scene, _ = _scene_with_head(3)
    with pytest.raises(FileNotFoundError):
        preview.render_preview(scene, tmp_path / "x", audio_path=str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError):
        preview.render_preview(scene, tmp_path / "x", frame_range=(5, 2))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with pytest.raises(ValueError):
        preview.render_preview(bpy.context.scene, tmp_path / "x")
