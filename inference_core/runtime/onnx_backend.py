"""The ONNX Runtime backend: the exported per-step graphs, numpy in and out, no torch.

Files beside a checkpoint ``M.safetensors`` (written by ``export-onnx``)::

    M.audio_encoder.onnx  M.condition.onnx            the graphs (structure only, ~100 KB each)
    M.head_modulation.onnx  M.head.onnx               the diffusion head, in two parts (see below)
    M.head_int8.onnx                                  the head with int8 weights (optional, CPU)
    M.onnx.json                                       manifest: weights digest, file hashes

The graphs hold no copy of the weights: their initializers are ONNX *external
data* pointing at byte ranges of ``M.safetensors`` itself (both store raw
little-endian float32), so a model ships once; the manifest records where the
tensor data starts, since a card of another size moves it (:func:`check_export`).
What is read here: the checkpoint (card, motion normalisation, style table, with
numpy by :mod:`.weights`; the weights' checksum is verified as the torch loader
does) and the manifest, whose ``weights_sha256`` must be
the checkpoint's and whose file hashes must match. Anything missing, damaged or
not importable raises :class:`BackendUnavailable` with the reason, so ``auto``
can fall back to torch.

The head runs as two graphs (:mod:`inference_core.model.onnx_graphs`): its modulations for
all the DDIM times of a step in one call (:meth:`OnnxBackend.denoiser`), then one denoising
call per time, so the weights of its conditioning path are read once per step. A guided step
(guidance != 1) runs both graphs on its two rows (with audio, null audio) as one batch: the head
is memory-bound, so the pair costs little more than one row.

The head's denoising pass is most of a step's time (a step runs it once per DDIM time: with the
upper face in 8 steps, 8 passes that each read its 8.7 MB of float weights). Exports also carry
``head_int8``: the same graph with int8 weights per output channel and activations quantised per
call (ONNX Runtime's dynamic quantisation), about twice as fast on a CPU, 1-2 % off the float
head. On the CPU it is used unless the backend is ``onnx-fp32``; each row then gets its own call,
and only at the times that row's DDIM grid reads (so a row's quantisation scale never depends on
the other chain, and the mouth's row is exactly what it is without the upper face's extra steps).
The float graphs stay the reference ``info --verify`` holds to the torch modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import numpy as np

from ..model.config import ModelConfig, config_from_card
from ..shared.hashing import file_sha256
from ..shared.model_card import ModelFileError, read_header
from ..shared.paths import open_regular
from .bundle import BackendUnavailable
from .threads import default_threads
from .weights import WeightsError, read_tensors, weights_digest

#: x_t, t -> predicted x0 (numpy)
Denoise = Callable[[np.ndarray, float], np.ndarray]

FORMAT = "streamingtalker-onnx"
#: Version of the graph set (2: the audio encoder streamed, the head split into head_mod + head;
#: 3: a dynamic batch axis on head_mod and head, for guided steps; 4: the manifest records where
#: the checkpoint's tensor data starts, see :func:`check_export`); older exports are refused.
FORMAT_VERSION = 4
MAX_MANIFEST_BYTES = 1 << 20
#: graph name -> (file suffix, input names, output names)
GRAPHS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "audio": ("audio_encoder.onnx", ("mel", "state"), ("features", "state_out")),
    "condition": ("condition.onnx", ("audio", "past", "style_vec", "keep"), ("cond",)),
    "head_mod": ("head_modulation.onnx", ("cond", "t"), ("mod",)),
    "head": ("head.onnx", ("x_t", "mod"), ("x0",)),
}
#: graphs an export may add (older exports lack them; a manifest that lists one must match it)
OPTIONAL_GRAPHS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "head_int8": ("head_int8.onnx", ("x_t", "mod"), ("x0",)),
}
ALL_GRAPHS = {**GRAPHS, **OPTIONAL_GRAPHS}


def audio_state_frames(cfg: ModelConfig) -> list[int]:
    """The streamed audio encoder's state: per conv layer after the first, how many past outputs
    of the layer below it still needs."""
    return [(k - 1) * d for k, d in zip(cfg.audio_kernels[1:], cfg.audio_dilations[1:])]


def audio_input_mels(cfg: ModelConfig) -> int:
    """Mel frames one streamed audio step reads: the step's new ones and the first conv's context."""
    return cfg.step_mels + (cfg.audio_kernels[0] - 1) * cfg.audio_dilations[0]


def audio_warmup_steps(cfg: ModelConfig) -> int:
    """Streamed audio steps after which nothing of the initial state is left in the output."""
    return -(-(cfg.receptive_field_mel - 1) // cfg.step_mels) + 1


def graph_input_shapes(cfg: ModelConfig) -> dict[str, list[tuple[int | None, ...]]]:
    """The input shapes of each graph for an architecture (batch 1, one step; None: a dynamic axis,
    among them the head's batch: 1, or 2 for a guided step), checked on load so that a card that
    does not describe its graphs is refused."""
    W, C, K, d = cfg.context_frames, cfg.chunk_frames, cfg.num_channels, cfg.model_dim
    n_mod = (3 * cfg.head_blocks + 2) * cfg.head_dim
    return {"audio": [(1, audio_input_mels(cfg), cfg.n_mels), (1, cfg.audio_state_channels, sum(audio_state_frames(cfg)))],
            "condition": [(1, W + C, d), (1, W, K), (1, cfg.style_dim), (1,)],
            "head_mod": [(None, C, d), (None,)],
            "head": [(None, C * K), (None, n_mod)]}


def graph_path(model_path: str | Path, key: str) -> Path:
    """``M.<graph>.onnx`` beside ``M.safetensors``."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}.{ALL_GRAPHS[key][0]}")


def manifest_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.stem + ".onnx.json")


def check_export(model_path: Path, weights_sha256: str | None, data_start: int | None = None) -> dict[str, Any]:
    """The manifest of the model's ONNX export if it belongs to these weights, still finds them
    where they were, and no graph was altered; BackendUnavailable saying what is wrong otherwise.

    ``data_start`` is where the checkpoint's tensor data begins now. The graphs read the weights
    by byte offset, so a card that grew or shrank (``finalize-model`` rewrites it) moves every
    tensor under them: the same weights, the same checksums, and graphs that would compute
    garbage. The manifest records the offset the graphs were written for."""
    mpath = manifest_path(model_path)
    try:
        with open_regular(mpath) as fh:
            manifest = json.loads(fh.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, ValueError, RecursionError) as exc:
        raise BackendUnavailable(f"{mpath} is unreadable: {str(exc)[:200]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(
            manifest.get("files"), dict):
        raise BackendUnavailable(f"{mpath} is not a StreamingTalker ONNX manifest")
    if manifest.get("version", 1) != FORMAT_VERSION:
        raise BackendUnavailable(f"the ONNX graphs of {model_path.name} were written by another version of "
                                 "export-onnx; export them again (python -m inference_core export-onnx MODEL)")
    if weights_sha256 and manifest.get("weights_sha256") != weights_sha256:
        raise BackendUnavailable(f"the ONNX graphs of {model_path.name} were exported from other weights; "
                                 "export them again (python -m inference_core export-onnx MODEL)")
    if data_start is not None and manifest.get("checkpoint_data_start") != data_start:
        raise BackendUnavailable(f"the ONNX graphs of {model_path.name} read its weights at byte offsets that have "
                                 "moved (its model card changed size since they were exported); export them again "
                                 "(python -m inference_core export-onnx MODEL)")
    for key in [*GRAPHS, *(k for k in OPTIONAL_GRAPHS if k in manifest["files"])]:
        entry = manifest["files"].get(key)
        entry = entry if isinstance(entry, dict) else {}
        f = graph_path(model_path, key)
        if not f.is_file():
            raise BackendUnavailable(f"{f} is missing")
        if entry.get("sha256") != file_sha256(f):
            raise BackendUnavailable(f"{f.name} does not match its checksum in {mpath.name} (damaged or replaced)")
    return manifest


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("device cuda was asked for, but this onnxruntime has no CUDA "
                                     "provider (install onnxruntime-gpu, or use the torch runtime)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxBackend:
    name = "onnx"

    def __init__(self, cfg: ModelConfig, tensors: dict[str, np.ndarray], model_path: Path,
                 device: str = "cpu", threads: int | None = None, int8_head: bool = False):
        try:
            import onnxruntime as ort
        except Exception as exc:  # ImportError, or a broken wheel raising OSError at import
            raise BackendUnavailable(f"onnxruntime does not import ({exc})") from None
        self.cfg = cfg
        self.device = device
        self.motion_mean = np.asarray(tensors["motion_mean"], np.float32)
        self.motion_std = np.asarray(tensors["motion_std"], np.float32)
        self.style_table = np.asarray(tensors["predictor.style.weight"], np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()  # one per free core (see .threads)
        opts.inter_op_num_threads = 1
        # waiting threads sleep: a spinning one takes the only free core from its sibling
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: constant-folding notes are not for users
        providers = providers_for(device)
        #: "int8" when the quantised head runs the denoising passes (CPU only: see the module doc)
        self.head_precision = "int8" if int8_head and device == "cpu" else "fp32"
        try:
            # the float head is not loaded where the int8 one runs (its 8.7 MB would be read for nothing)
            keys = [k for k in GRAPHS if k != "head"] + ["head_int8" if self.head_precision == "int8" else "head"]
            self._sessions = {k: ort.InferenceSession(str(graph_path(model_path, k)), opts, providers=providers)
                              for k in keys}
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise BackendUnavailable(f"onnxruntime cannot load the graphs of {model_path.name}: {exc}") from None
        self._inputs = {k: [i.name for i in s.get_inputs()] for k, s in self._sessions.items()}
        for key, shapes in graph_input_shapes(cfg).items():
            session = self._sessions["head_int8" if key == "head" and self.head_precision == "int8" else key]
            got = [tuple(n if isinstance(n, int) else None for n in i.shape) for i in session.get_inputs()]
            if got != shapes:
                raise ModelFileError(f"{model_path.name}: its {key} graph takes inputs of shapes {got}, the "
                                     f"architecture in its card needs {shapes} (the card does not describe "
                                     "these graphs)")
        self._mel_in = audio_input_mels(cfg)
        self._mel_tail = self._mel_in - cfg.step_mels

    def _outputs(self, key: str, *arrays: np.ndarray) -> list[np.ndarray]:
        feeds = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self._inputs[key], arrays)}
        return self._sessions[key].run(None, feeds)

    def _run(self, key: str, *arrays: np.ndarray) -> np.ndarray:
        return self._outputs(key, *arrays)[0]

    def style_vector(self, index: int) -> np.ndarray:
        return self.style_table[int(index)][None].copy()

    def audio_stream_start(self, floor: np.ndarray) -> tuple[Any, np.ndarray]:
        """(state before the stream, features of silence (1, d)).

        The graph takes ``step_mels`` new mel frames at a time (after the first conv's context)
        and carries each later conv's past input as a state. Before the stream every frame is the
        silence ``floor``: the state is the graph run from zeros on the floor until nothing of
        the zeros is left. The state is (last frames fed, conv state, floor, frames fed so far)."""
        cfg = self.cfg
        floor = np.asarray(floor, np.float32)
        mel = np.repeat(floor[None], self._mel_in, 0)
        state = np.zeros((1, cfg.audio_state_channels, sum(audio_state_frames(cfg))), np.float32)
        for _ in range(audio_warmup_steps(cfg)):
            feat, state = self._outputs("audio", mel[None], state)
        return (mel[self._mel_in - self._mel_tail:], state, floor, 0), feat[0, :1]

    def audio_stream(self, new_mel: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """The features (C, d) of the step whose new mel frames these are, and the next state.

        The first step also brings the look-ahead's frames: it is run as the graph's steps that
        end on its last frame, the pre-stream floor filling the first one."""
        tail, conv_state, floor, fed = state
        pad = -len(new_mel) % self.cfg.step_mels
        if pad and fed:
            raise ValueError(f"a streamed audio step after the first takes a multiple of "
                             f"{self.cfg.step_mels} mel frames (got {len(new_mel)})")
        mel = np.concatenate([tail, np.repeat(floor[None], pad, 0), new_mel])
        for start in range(0, len(mel) - self._mel_tail, self.cfg.step_mels):
            feat, conv_state = self._outputs("audio", mel[None, start:start + self._mel_in], conv_state)
        return feat[0], (mel[len(mel) - self._mel_tail:], conv_state, floor, fed + len(new_mel))

    def condition(self, audio: np.ndarray, past: np.ndarray, style_vec: np.ndarray,
                  keep: float | np.ndarray) -> np.ndarray:
        """The condition (B, C, d), one graph call per row: the predictor is compute-bound, so a
        batch would cost as much as the calls (and its batch-1 graph is the faster one)."""
        keeps = np.broadcast_to(np.asarray(keep, np.float32), (audio.shape[0],))  # one per row
        rows = [self._run("condition", audio[i:i + 1], past[i:i + 1], style_vec[i:i + 1], keeps[i:i + 1])
                for i in range(len(keeps))]
        return rows[0] if len(rows) == 1 else np.concatenate(rows)

    def denoiser(self, cond: np.ndarray, times: list[float],
                 row_times: Sequence[Collection[float]] | None = None) -> Denoise:
        """``denoise(x_t, t)`` for this condition (B, C, d) and x_t (B, C*K), prepared for
        ``times``: one ``head_mod`` call computes the modulations of all of them for every row
        (another time is prepared when it is asked for).

        ``row_times``: per row, the times at which the sampler reads that row's prediction (the
        int8 head skips a row at the other times and returns its x_t there; None: every time)."""
        n = len(times)
        mods = self._run("head_mod", cond, np.asarray(times, np.float32))  # row b * n + i
        rows = {float(t): mods[i::n] for i, t in enumerate(times)}

        def denoise(x_t: np.ndarray, t: float) -> np.ndarray:
            row = rows.get(float(t))
            if row is None:
                row = rows[float(t)] = self._run("head_mod", cond, np.full((1,), t, np.float32))
            if self.head_precision == "fp32":
                return self._run("head", x_t, row)
            out = np.array(x_t, np.float32)
            for i in range(len(out)):  # one call per row: its own quantisation scale
                if row_times is None or float(t) in row_times[i]:
                    out[i:i + 1] = self._run("head_int8", x_t[i:i + 1], row[i:i + 1])
            return out

        return denoise

    def head(self, x_t: np.ndarray, t: float, cond: np.ndarray) -> np.ndarray:
        return self.denoiser(cond, [t])(x_t, t)


def load_onnx(path: Path, device: str = "cpu", threads: int | None = None, int8_head: bool = True
              ) -> tuple[OnnxBackend, dict[str, Any], ModelConfig, dict[str, np.ndarray]]:
    """(backend, card, config, extra tensors) for a checkpoint with its ONNX export
    (``int8_head``: use the export's int8 head on the CPU where it has one).

    The cheap reasons not to use ONNX (no onnxruntime, no export) are checked before
    the weights are read, so ``auto`` falls back to torch without reading them twice.
    The card and the file's tensors are checked as strictly as the torch loader does."""
    from ..model.layout import checked_config, read_layout, tensor_shapes

    card, header, data_bytes = read_layout(path)
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # ImportError, or a broken wheel raising OSError at import
        raise BackendUnavailable(f"onnxruntime does not import ({exc})") from None
    if not manifest_path(path).is_file():
        raise BackendUnavailable(f"no ONNX export of this model ({manifest_path(path).name} is missing; run "
                                 "`python -m inference_core export-onnx MODEL`)")
    cfg = checked_config(path.name, card, header, data_bytes)
    try:
        tensors, _ = read_tensors(path)
    except WeightsError as exc:
        raise ModelFileError(str(exc)) from None
    if card.get("weights_sha256") and weights_digest(tensors) != card["weights_sha256"]:
        raise ModelFileError(f"{path.name}: the weights do not match the checksum in the model card "
                             "(the file was modified or damaged after it was written)")
    for name, t in tensors.items():
        if not np.isfinite(t).all():
            raise ModelFileError(f"{path.name}: tensor {name} contains NaN or infinite values")
    manifest = check_export(path, card.get("weights_sha256"), read_header(path)[1])
    backend = OnnxBackend(cfg, tensors, path, device, threads,
                          int8_head=int8_head and "head_int8" in manifest["files"])
    network = tensor_shapes(cfg)  # the rest (a basis, a phonetic gain's read-out) was checked against the card
    extra = {k: np.asarray(v, np.float32) for k, v in tensors.items() if k not in network}
    return backend, card, cfg, extra
