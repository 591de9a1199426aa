"""The torch backend: the checkpoint's modules behind the numpy :class:`~.bundle.Backend` interface.

Every input is moved to the model's device at this one boundary and every
output comes back to numpy here, so nothing else in the runtime creates a
tensor: a CUDA model cannot meet a CPU tensor (``to_numpy`` is a seam the
device test replaces to run a step on torch's ``meta`` device).
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Sequence

import numpy as np

from .threads import default_threads, passive_waiting

passive_waiting()  # before torch loads libgomp: its waiting threads must not spin (see .threads)

import torch  # noqa: E402

from ..model.network import StreamingTalker  # noqa: E402


def set_threads(threads: int | None) -> None:
    """``threads``, or the default of :mod:`.threads` (one per free core, at most what helps the small per-step tensors)."""
    torch.set_num_threads(threads or default_threads())


class TorchBackend:
    name = "torch"
    head_precision = "fp32"

    def __init__(self, model: StreamingTalker):
        self.model = model.eval()
        self.cfg = model.cfg
        self.device = str(model.motion_mean.device)
        self.motion_mean = model.motion_mean.detach().cpu().numpy() if self.device != "meta" else \
            np.zeros(model.cfg.num_channels, np.float32)
        self.motion_std = model.motion_std.detach().cpu().numpy() if self.device != "meta" else \
            np.ones(model.cfg.num_channels, np.float32)

    def _in(self, a: Any) -> torch.Tensor:
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32))
        return t.to(self.model.motion_mean.device)

    def _batch(self, value: float, like: torch.Tensor) -> torch.Tensor:
        return torch.full((like.shape[0],), float(value), device=like.device)

    def to_numpy(self, t: torch.Tensor) -> Any:
        return t.detach().cpu().numpy()

    def style_vector(self, index: int) -> np.ndarray:
        with torch.inference_mode():
            idx = torch.tensor([int(index)], device=self.model.motion_mean.device)
            return self.to_numpy(self.model.style_vector(idx))

    def audio(self, mel: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.to_numpy(self.model.audio(self._in(mel)))

    def audio_stream_start(self, floor: np.ndarray) -> tuple[Any, np.ndarray]:
        """(state: the past mel frames a window needs, all silence floor; features of silence (1, d))."""
        cfg = self.cfg
        window = np.repeat(np.asarray(floor, np.float32)[None], cfg.step_mels + cfg.receptive_field_mel - 1, 0)
        return window[cfg.step_mels:], self.audio(window[None])[0, :1]

    def audio_stream(self, new_mel: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """The whole-window encoder on the past mel frames and these new ones (the reference)."""
        cfg = self.cfg
        window = np.concatenate([state, new_mel])[-(cfg.step_mels + cfg.receptive_field_mel - 1):]
        return self.audio(window[None])[0], window[cfg.step_mels:]

    def condition(self, audio: np.ndarray, past: np.ndarray, style_vec: np.ndarray,
                  keep: float | np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            a = self._in(audio)
            k = self._in(np.array(np.broadcast_to(np.asarray(keep, np.float32), (a.shape[0],))))
            return self.to_numpy(self.model.predictor(a, self._in(past), self._in(style_vec), k))

    def head(self, x_t: np.ndarray, t: float, cond: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = self._in(x_t)
            return self.to_numpy(self.model.head(x, self._batch(t, x), self._in(cond)))

    def denoiser(self, cond: np.ndarray, times: list[float],
                 row_times: Sequence[Collection[float]] | None = None) -> Callable[[np.ndarray, float], np.ndarray]:
        return lambda x_t, t: self.head(x_t, t, cond)  # the module as it is, every row: the reference
