"""Follow playback: generate just ahead of the playhead while the timeline plays the scene's audio."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..client.driver import StreamingDriver
from ..client.runtime import RuntimeSettings
from ..state import AddonState
from .generation import GenerationJob
from .inputs import scene_fps


class FollowController:
    """Runs one generation job at a time from the playhead; a scrub outside the generated
    window restarts generation there. Steppable without a UI (tests move ``frame_current``)."""

    kind = "follow"

    def __init__(self, state: AddonState, scene: Any, obj: Any, pcm: np.ndarray, audio_frame_start: int,
                 options: dict[str, Any], settings: RuntimeSettings, ahead: float, sample_rate: int = 16000):
        self.state = state
        self.scene, self.obj, self.pcm = scene, obj, pcm
        self.audio_frame_start = audio_frame_start
        self.options, self.settings, self.ahead = options, settings, ahead
        self.sr = sample_rate
        self.fps = scene_fps(scene)
        self.job: GenerationJob | None = None
        self.restarts = 0
        self.stopped = False
        self._start_at(scene.frame_current)

    def _start_at(self, frame: int) -> None:
        offset_frames = max(0, frame - self.audio_frame_start)
        first = int(round(offset_frames / self.fps * self.sr))
        if first >= len(self.pcm) - self.sr // 10:
            self.job = None
            return
        start_frame = self.audio_frame_start + offset_frames
        scene, fps, ahead = self.scene, self.fps, self.ahead
        self.job = GenerationJob(self.state, scene, self.obj, self.pcm[first:], start_frame, self.options,
                                 "REPLACE", self.settings,
                                 audio_limit=lambda: (scene.frame_current - start_frame) / fps + ahead)

    @property
    def driver(self) -> StreamingDriver | None:
        return self.job.driver if self.job else None

    @property
    def active(self) -> bool:
        return not self.stopped

    @property
    def written(self) -> int:
        return self.job.written if self.job else 0

    def _last_frame(self, job: GenerationJob) -> int:
        return job.writer.last_frame if job.writer and job.writer.written else job.frame_start

    def step(self, budget: float = 0.02) -> bool:
        if self.stopped:
            return False
        job = self.job
        frame = self.scene.frame_current
        if job is None:
            if frame < self.audio_frame_start + len(self.pcm) / self.sr * self.fps:
                self._start_at(frame)
            return True
        last = self._last_frame(job)
        if job.active:
            if frame < job.frame_start or frame > last + self.fps * (self.ahead + 1.0):
                job.cancel()  # scrubbed away: restart at the playhead once cancelled
            job.step(budget)
        else:
            if job.driver.state == "error":
                self.stopped = True
                return False
            if frame < job.frame_start or (job.driver.state == "cancelled" and frame > last):
                self.restarts += 1
                self._start_at(frame)
        return True

    def cancel(self) -> None:
        """Stop for the user at once; never wait on the server here (it may be hung).

        The keys written so far become the take now, inside the operator's undo step; the
        session's cancel confirmation is awaited by :meth:`AddonState.settle` (the UI's timer),
        which writes nothing and ends within the stall timeout, killing a hung server.
        """
        job = self.job
        if job is not None and job.active:
            job.cancel()  # ask the server to drop the session: one small write, no wait
            job.finish()
            if job.driver.active:
                self.state.hand_off(job.driver)
        self.stopped = True
        if self.state.job is self:
            self.state.job = None

    def status_text(self) -> str:
        if self.job is None:
            return "Follow playback: waiting (playhead outside the audio)"
        if self.stopped and self.job.driver.state != "error":
            return f"Follow playback stopped: {self.written} frames kept"
        return f"Follow playback: {self.job.status_text()}"
