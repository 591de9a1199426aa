"""A numpy-only streaming resampler, for Pythons without soxr (Blender's own).

soxr is the resampler wherever it is installed. Blender's Python has only numpy,
and the ``bpy`` 4.2 wheels lack Blender's own audio library too, so a WAV file at
22.05 or 48 kHz would otherwise be refused there. This is a windowed-sinc
(Kaiser) interpolator: zero phase, anti-aliased when downsampling, exact at the
rational ratio of the two rates, and stateful, so a stream resampled in blocks
equals the whole signal resampled at once. It is slower than soxr (about 0.1 s
per minute of speech) and a little less steep, which speech features never notice.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np

#: Zero crossings of the sinc kernel on each side (at the output's bandwidth).
ZERO_CROSSINGS = 16
#: The pass band ends at this fraction of the lower of the two Nyquist frequencies.
ROLLOFF = 0.94
KAISER_BETA = 8.0
_BLOCK = 8192  # output samples computed per vectorised step (bounds the temporary arrays)


class SincResampler:
    """``in_rate`` → ``out_rate`` mono float32, block by block (``soxr.ResampleStream``'s call shape)."""

    def __init__(self, in_rate: int, out_rate: int):
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, not {in_rate} → {out_rate}")
        g = gcd(int(in_rate), int(out_rate))
        self.up, self.down = int(out_rate) // g, int(in_rate) // g  # output n sits at input n·down/up
        fc = min(1.0, self.up / self.down) * ROLLOFF  # cut-off, in cycles per 2 input samples
        self.half = int(ceil(ZERO_CROSSINGS / fc))  # kernel half-width in input samples
        taps = np.arange(-self.half + 1, self.half + 1)  # input offsets around floor(t)
        tau = np.arange(self.up)[:, None] / self.up - taps[None, :]  # t − k for each phase and tap
        window = np.i0(KAISER_BETA * np.sqrt(np.clip(1.0 - (tau / self.half) ** 2, 0.0, None))) / np.i0(KAISER_BETA)
        table = fc * np.sinc(fc * tau) * window
        self._table = (table / table.sum(axis=1, keepdims=True)).astype(np.float32)  # unit gain at DC
        self._taps = taps
        # input held back for the kernel's reach; zeros stand for the silence before the stream
        self._buf = np.zeros(self.half, np.float32)
        self._buf_start = -self.half  # absolute input index of _buf[0]
        self._next = 0  # next output index
        self._done = False

    def resample_chunk(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self._done:
            raise ValueError("the stream was already closed with last=True")
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, block])
        end = self._buf_start + len(self._buf)  # inputs seen so far
        if last:  # every output before the last input, with silence after it
            stop = -(-end * self.up // self.down)
            self._buf = np.concatenate([self._buf, np.zeros(self.half + 1, np.float32)])
            self._done = True
        else:  # only outputs whose kernel lies wholly inside what has arrived
            stop = max(self._next, -(-(end - self.half) * self.up // self.down))
        out = np.empty(stop - self._next, np.float32)
        for a in range(self._next, stop, _BLOCK):
            n = np.arange(a, min(stop, a + _BLOCK), dtype=np.int64)
            base, phase = np.divmod(n * self.down, self.up)
            rows = self._buf[(base - self._buf_start)[:, None] + self._taps[None, :]]
            out[a - self._next:a - self._next + len(n)] = np.einsum("ij,ij->i", rows, self._table[phase])
        self._next = stop
        keep_from = self._next * self.down // self.up - self.half + 1 - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out
