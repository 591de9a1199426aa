"""Keep audio at sane levels before it reaches the features (numpy only).

Float audio (float WAV/FLAC, PCM from a client) may hold samples far outside
full scale [-1, 1] — a file written in integer scale, a gain bug, or a hostile
input of noise × 1e30. Such values do not break the maths at once, but they push
the log-mel far outside anything the model saw and, mixed or resampled in
float32, overflow to infinity. :class:`LevelGuard` clips every sample to full
scale and counts what it clipped, so the caller can say so in one warning.

Samples up to :data:`SILENT_OVERSHOOT` are clipped without a warning: a
resampler's ringing on a full-scale signal reaches about 1.05, and that is not
the user's fault. Streaming cannot normalise (the whole file's peak is unknown
when the first chunk must be processed), hence clipping.
"""

from __future__ import annotations

import numpy as np

#: Peak above which clipping is reported (below: resampling overshoot, clipped silently).
SILENT_OVERSHOOT = 1.1


class LevelGuard:
    """Clips samples to [-1, 1]; remembers how many were over :data:`SILENT_OVERSHOOT` and the peak."""

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self.samples = 0          # samples seen
        self.clipped = 0          # samples (rows) with a value over SILENT_OVERSHOOT
        self.peak = 0.0           # largest |sample| seen
        self.first_clip: float | None = None  # seconds into the stream

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` (finite floats, any shape; rows = time) clipped to full scale, as float32."""
        x = np.asarray(x)
        if x.size == 0:
            return x.astype(np.float32, copy=False)
        mag = np.abs(x)
        peak = float(mag.max())
        rows = x.shape[0]
        if peak > 1.0:
            over = (mag > SILENT_OVERSHOOT).reshape(rows, -1).any(axis=1)
            n = int(over.sum())
            if n and self.first_clip is None:
                self.first_clip = (self.samples + int(np.argmax(over))) / self.sample_rate
            self.clipped += n
            x = np.clip(x, -1.0, 1.0)
        self.peak = max(self.peak, peak)
        self.samples += rows
        return x.astype(np.float32, copy=False)

    def warning(self) -> str | None:
        """One line for the user when samples had to be clipped, else None."""
        if not self.clipped:
            return None
        share = 100.0 * self.clipped / max(self.samples, 1)
        return (f"the audio exceeds full scale (peak {self.peak:.3g}; {share:.3g}% of the samples, the "
                f"first at {self.first_clip:.2f} s): they were clipped to ±1; export the audio "
                "normalised for a faithful result")
