"""A loaded model: its card, its architecture and the backend that runs its networks.

Two backends run the same three per-step networks (audio encoder, condition
predictor, diffusion head) behind one small interface, :class:`Backend`,
with numpy arrays in and out, so the streaming session around them is
torch-free:

* ``onnx``: ONNX Runtime on the exported graphs (``<model>.onnx/`` beside the
  checkpoint). Needs only numpy and the onnxruntime wheel: this is what runs
  in Blender's own Python with nothing to install.
* ``torch``: the checkpoint's torch modules (training machines, CUDA, and the
  reference the ONNX graphs are checked against).

``auto`` takes onnx when onnxruntime imports and the model's ONNX files are
present and match its weights, else torch; when neither can run, the error
says what is missing and what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Protocol, Sequence

import numpy as np

from ..model.config import ModelConfig
from ..shared.options import style_index

log = logging.getLogger("inference_core.runtime")

#: onnx-fp32: ONNX Runtime with the float head even where the export has an int8 one (the reference)
BACKENDS = ("auto", "onnx", "onnx-fp32", "torch")


class Backend(Protocol):
    """The per-step networks on numpy float32 arrays (batch first)."""

    name: str
    device: str
    head_precision: str      # "fp32", or "int8" (the ONNX head with int8 weights)
    motion_mean: np.ndarray  # (K,)
    motion_std: np.ndarray   # (K,)

    def style_vector(self, index: int) -> np.ndarray: ...  # (1, style_dim)

    def audio_stream_start(self, floor: np.ndarray) -> tuple[Any, np.ndarray]:
        """(the audio encoder's state before a stream, whose past is the silence ``floor`` mel
        frame; the features of silence (1, d)). The state is the backend's own business."""
        ...

    def audio_stream(self, new_mel: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """(features (C, d) of the step whose new mel frames (n, n_mels) these are, next state)."""
        ...

    def condition(self, audio: np.ndarray, past: np.ndarray, style_vec: np.ndarray,
                  keep: float | np.ndarray) -> np.ndarray: ...  # -> (B, C, d); keep (a float or one per row) 1 = audio, 0 = null audio

    def head(self, x_t: np.ndarray, t: float, cond: np.ndarray) -> np.ndarray: ...  # -> x0 (B, C*K)

    def denoiser(self, cond: np.ndarray, times: list[float],
                 row_times: Sequence[Collection[float]] | None = None) -> Callable[[np.ndarray, float], np.ndarray]:
        """``denoise(x_t, t)`` = ``head(x_t, t, cond)``, prepared for the given times (a step's
        DDIM times are known in advance: the ONNX head computes their modulations in one call).
        ``row_times``: per row, the times the sampler reads it at; a backend may skip a row at the
        others (what it returns for that row there is not read)."""
        ...


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (a package, a file or a device is missing)."""


@dataclass
class ModelBundle:
    """A loaded model with what a session needs from its card."""
    card: dict[str, Any]
    cfg: ModelConfig
    backend: Backend
    value_range: tuple[float, float] | None = None
    styles: list[str] = field(default_factory=list)
    #: tensors stored beside the weights (a vertex-space model's basis and template)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""

    @property
    def channels(self) -> list[str]:
        return list(self.card.get("channels") or [])

    def style_index(self, style: int | str) -> int:
        return style_index(style, self.styles, self.cfg.num_styles)

    def normalise(self, motion: np.ndarray) -> np.ndarray:
        return ((motion - self.backend.motion_mean) / self.backend.motion_std).astype(np.float32)

    def denormalise(self, x: np.ndarray) -> np.ndarray:
        return (x * self.backend.motion_std + self.backend.motion_mean).astype(np.float32)


def _bundle(card: dict[str, Any], cfg: ModelConfig, backend: Backend, extra: dict[str, np.ndarray],
            path: str) -> ModelBundle:
    vr = card.get("value_range")
    return ModelBundle(card, cfg, backend, tuple(vr) if vr else None, list(card.get("styles") or []),
                       extra, path)


def load_bundle(path: str | Path | None = None, device: str = "cpu", backend: str = "auto",
                threads: int | None = None) -> ModelBundle:
    """Load a checkpoint (default: the bundled model) with the chosen backend.

    Raises :class:`~inference_core.model.checkpoint.ModelFileError`-like ``ValueError``\\ s
    for a bad model file and :class:`BackendUnavailable` when no backend can run it."""
    from ..shared.paths import DEFAULT_MODEL

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (got {backend!r})")
    path = Path(path or DEFAULT_MODEL)
    errors: list[str] = []
    if backend in ("auto", "onnx", "onnx-fp32"):
        try:
            return _load_onnx(path, device, threads, int8_head=backend != "onnx-fp32")
        except BackendUnavailable as exc:
            if backend != "auto":
                raise
            errors.append(f"ONNX Runtime: {exc}")
    try:
        return _load_torch(path, device, threads)
    except BackendUnavailable as exc:
        errors.append(f"torch: {exc}")
    raise BackendUnavailable(
        "No inference backend can run this model here. " + " ".join(errors) +
        " Install onnxruntime (and export the model's ONNX files with `python -m inference_core "
        "export-onnx MODEL`), or install torch.")


def _load_onnx(path: Path, device: str, threads: int | None, int8_head: bool = True) -> ModelBundle:
    from .onnx_backend import load_onnx

    backend, card, cfg, extra = load_onnx(path, device, threads, int8_head)
    log.info("backend: onnx (%s, %s head)", backend.device, backend.head_precision)
    return _bundle(card, cfg, backend, extra, str(path))


def _load_torch(path: Path, device: str, threads: int | None) -> ModelBundle:
    try:
        from .torch_backend import TorchBackend, set_threads
    except ImportError as exc:
        raise BackendUnavailable(f"torch does not import ({exc})") from None
    from ..model.checkpoint import load_checkpoint

    set_threads(threads)
    model, card, extra = load_checkpoint(path, device)
    log.info("backend: torch (%s)", device)
    return _bundle(card, model.cfg, TorchBackend(model), {k: v.numpy() for k, v in extra.items()}, str(path))


def random_bundle(seed: int = 0, **cfg_overrides: Any) -> ModelBundle:
    """A randomly initialised model of the shipped size on the torch backend (benchmarks, tests)."""
    import torch

    from ..model.checkpoint import base_card
    from ..model.network import StreamingTalker
    from ..shared.channels import ARKIT_52
    from .torch_backend import TorchBackend

    torch.manual_seed(seed)
    cfg = ModelConfig(**cfg_overrides)
    model = StreamingTalker(cfg).eval()
    channels = list(ARKIT_52) if cfg.num_channels == 52 else [f"ch{i:03d}" for i in range(cfg.num_channels)]
    card = base_card(cfg, channels)
    return _bundle(card, cfg, TorchBackend(model), {}, "")
