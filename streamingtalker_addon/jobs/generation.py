"""Audio → keyframes on a mesh, one chunk at a time, while the rest of Blender runs."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..blender import keyframes, takes
from ..client.driver import StreamingDriver
from ..client.runtime import RuntimeSettings
from ..logic import framerate
from ..state import AddonState
from .base import BoundJob


class GenerationJob(BoundJob):
    kind = "generate"
    driver: StreamingDriver

    def __init__(self, state: AddonState, scene: Any, obj: Any, pcm: np.ndarray, frame_start: int,
                 options: dict[str, Any], take_mode: str = "REPLACE", settings: RuntimeSettings | None = None,
                 audio_limit: Callable[[], float] | None = None, t_click: float | None = None,
                 take: takes.TakeOptions | None = None):
        self.t_click = t_click if t_click is not None else time.monotonic()
        super().__init__(state, scene, obj, settings or RuntimeSettings())
        self.frame_start = frame_start
        self.take_mode = take_mode
        self.take = take or takes.TakeOptions()
        #: what :func:`~..blender.takes.finish_take` did (action, keys, thinning, NLA strip)
        self.take_report: dict[str, Any] = {}
        self.writer: keyframes.TakeWriter | None = None
        self.resampler: framerate.StreamResampler | None = None
        self.t_first_keys: float | None = None
        self.latest: np.ndarray | None = None
        server = state.request_server(self.settings)
        self.driver = StreamingDriver(server, pcm, options, self._on_frames, stall_timeout=self.settings.stall_timeout,
                                      audio_limit=audio_limit, on_ready=self.on_ready)

    def bound(self, card: dict[str, Any]) -> None:
        assert self.binding is not None
        model_fps = float(card.get("fps", 30))
        expected = framerate.scene_frame_count(int(self.driver.duration * model_fps) + 1, model_fps, self.fps)
        self.writer = keyframes.TakeWriter(self.obj, self.binding, self.frame_start, self.take_mode,
                                           take_name=self.take.name or f"{self.obj.name}_StreamingTalker",
                                           expected_frames=expected)
        self.resampler = framerate.StreamResampler(model_fps, self.fps, len(card.get("channels", [])))

    def _on_frames(self, frames: np.ndarray, start: int) -> None:
        assert self.writer is not None and self.resampler is not None
        out = self.resampler.push(frames)
        if len(out):
            self.writer.append(out)
            self.latest = out[-1]
            if self.t_first_keys is None:
                self.t_first_keys = time.monotonic()

    def cancel(self) -> None:
        self.driver.cancel()

    def finish(self) -> int:
        self._release()
        if self.writer is None:
            return 0
        n = self.writer.finish()
        if n and self.scene.frame_end < self.writer.last_frame:
            self.scene.frame_end = self.writer.last_frame
        if n and not self.take_report:
            try:
                self.take_report = takes.finish_take(self.obj, self.writer, self.take,
                                                     replace=self.take_mode == "REPLACE")
            except RuntimeError as exc:  # the keys stay as written; only the thinning/NLA step failed
                self.take_report = {"error": str(exc)}
        return n

    @property
    def written(self) -> int:
        return self.writer.written if self.writer else 0

    @property
    def first_motion_seconds(self) -> float | None:
        return None if self.t_first_keys is None else self.t_first_keys - self.t_click

    def status_text(self) -> str:
        d = self.driver
        if d.state == "launching":
            return "Starting the inference runtime…"
        if d.state == "preparing":
            return "Creating the model's shape keys…"
        if d.state == "error":
            return f"Error: {d.error}" + (f" ({self.written} frames kept)" if self.written else "")
        if d.state == "cancelled":
            return f"Cancelled: {self.written} frames kept"
        if d.state == "done":
            text = f"Done: {self.written} frames keyed from {self.frame_start}"
            r = self.take_report
            if "keys_before_thinning" in r:
                text += f", thinned to {r['keys']} keys from {r['keys_before_thinning']}"
            if "error" in r:
                text += f" ({r['error']})"
            if self.binding is not None and self.binding.unmapped:
                text += f"; no key for {', '.join(self.binding.unmapped[:4])}"
            text += "".join(f"; warning: {w}" for w in d.warnings)
            return text
        return f"Generating… {self.written} frames ({d.progress * 100:.0f}%)"

    def run_sync(self, timeout: float | None = None, **kw: Any) -> str:
        """Background mode: step to the end (timers do not run without a UI)."""
        state = self.driver.run_sync(timeout, **kw)
        self.finish()
        return state
