"""Live input → shape-key values now, optionally recorded as keys from the current frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..blender import keyframes
from ..client.driver import LiveDriver
from ..client.runtime import RuntimeSettings
from ..logic import framerate
from ..state import AddonState
from .base import BoundJob


class LiveJob(BoundJob):
    kind = "live"
    driver: LiveDriver

    def __init__(self, state: AddonState, scene: Any, obj: Any, live_input: str, options: dict[str, Any],
                 record: bool, settings: RuntimeSettings | None = None):
        super().__init__(state, scene, obj, settings or RuntimeSettings())
        self.record = record
        self.frame_start = scene.frame_current
        self.writer: keyframes.TakeWriter | None = None
        self.resampler: framerate.StreamResampler | None = None
        self.frames = 0
        self.latest: np.ndarray | None = None
        server = state.request_server(self.settings)
        self.driver = LiveDriver(server, live_input, options, self._on_frames,
                                 stall_timeout=self.settings.stall_timeout, on_ready=self.on_ready)

    def bound(self, card: dict[str, Any]) -> None:
        assert self.binding is not None
        if self.record:
            self.writer = keyframes.TakeWriter(self.obj, self.binding, self.frame_start, "REPLACE",
                                               take_name=f"{self.obj.name}_StreamingTalker_live")
            self.resampler = framerate.StreamResampler(float(card.get("fps", 30)), self.fps,
                                                       len(card.get("channels", [])))

    def _on_frames(self, frames: np.ndarray, start: int) -> None:
        assert self.binding is not None
        self.latest = frames[-1]
        self.frames += len(frames)
        if self.writer is not None and self.resampler is not None:
            self.writer.append(self.resampler.push(frames))
        else:
            blocks = self.obj.data.shape_keys.key_blocks
            for name, value in zip(self.binding.keys, self.binding.values(frames[-1:])[0].tolist()):
                blocks[name].value = value

    def cancel(self) -> None:
        self.driver.stop()

    def finish(self) -> int:
        self._release()
        return self.writer.finish() if self.writer else 0

    @property
    def written(self) -> int:
        return self.writer.written if self.writer else 0

    def status_text(self) -> str:
        d = self.driver
        if d.state == "error":
            return f"Live error: {d.error}"
        if d.state == "stopped":
            return f"Live stopped ({d.frames_received} frames" + (f", {self.written} recorded)" if self.record else ")")
        if d.state in ("launching", "preparing"):
            return "Starting the inference runtime…"
        return f"Live: {d.description or d.live_input} — {d.frames_received} frames" + (
            f", recording from frame {self.frame_start}" if self.record else "")
