"""Frame-rate conversion of streamed model motion (numpy only, no bpy).

The model emits frames at its own rate (30 fps); the scene may run at 24, 25,
29.97 or 60 fps. Frames arrive in chunks, so the resampler keeps the last model
frame between pushes and emits each scene frame exactly once, as soon as both
model frames around it are known: streaming output equals offline output.
"""

from __future__ import annotations

import math

import numpy as np


def scene_frame_count(model_frames: int, model_fps: float, scene_fps: float) -> int:
    """Scene frames whose time lies within ``model_frames`` model frames (first at t=0)."""
    if model_frames <= 0:
        return 0
    last_t = (model_frames - 1) / model_fps
    return int(math.floor(last_t * scene_fps + 1e-6)) + 1


class StreamResampler:
    """Linear interpolation from ``src_fps`` to ``dst_fps``, fed chunk by chunk."""

    def __init__(self, src_fps: float, dst_fps: float, channels: int):
        if src_fps <= 0 or dst_fps <= 0:
            raise ValueError("frame rates must be positive")
        self.src_fps = float(src_fps)
        self.dst_fps = float(dst_fps)
        self.channels = int(channels)
        self.identity = abs(self.src_fps - self.dst_fps) < 1e-9
        self._ratio = self.src_fps / self.dst_fps  # source frames per output frame
        self._prev: np.ndarray | None = None
        self.received = 0
        self.emitted = 0

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add ``(n, K)`` model frames; return the ``(m, K)`` scene frames now complete."""
        frames = np.asarray(frames, dtype=np.float32).reshape(-1, self.channels)
        n = len(frames)
        if n == 0:
            return np.empty((0, self.channels), np.float32)
        if self.identity:
            self.received += n
            self.emitted += n
            return frames
        if self._prev is None:
            buf, base = frames, self.received
        else:
            buf, base = np.vstack([self._prev[None, :], frames]), self.received - 1
        self.received += n
        last = self.received - 1
        end = int(math.floor(last / self._ratio + 1e-6)) + 1
        js = np.arange(self.emitted, end, dtype=np.float64)
        t = js * self._ratio - base
        i0 = np.clip(np.floor(t + 1e-9).astype(np.int64), 0, len(buf) - 1)
        i1 = np.minimum(i0 + 1, len(buf) - 1)
        frac = np.clip(t - i0, 0.0, 1.0).astype(np.float32)[:, None]
        out = buf[i0] * (1.0 - frac) + buf[i1] * frac
        self._prev = frames[-1].copy()
        self.emitted = end
        return out.astype(np.float32, copy=False)


def resample(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Whole-array conversion (same result as pushing all frames through :class:`StreamResampler`)."""
    frames = np.asarray(frames, dtype=np.float32)
    return StreamResampler(src_fps, dst_fps, frames.shape[1]).push(frames)
