"""Export the per-step networks to ONNX: ``python -m inference_core export-onnx MODEL [-o DIR]``.

Four graphs with fixed shapes (batch 1, one autoregressive step; the head's batch B is dynamic:
1, or 2 for a guided step's rows with and without audio in one call), the calls the streaming
session makes; the DDIM loop, guidance, temperature and noise stay outside the graphs, in numpy
(:mod:`inference_core.model.diffusion`). What each graph computes is in :mod:`.onnx_graphs`
(the modules' maths arranged for a step: the audio encoder streamed, the predictor's last
layer pruned to the tokens it returns, the head split so that its conditioning runs once per
step):

* ``M.audio_encoder.onnx``    mel (1, step_mels + the first conv's context, n_mels),
                              state (1, audio_dim + audio_branch_dim, P) -> features (1, C, d), state
* ``M.condition.onnx``        audio (1, W + C, d), past (1, W, K), style_vec (1, s), keep (1,) -> (1, C, d)
* ``M.head_modulation.onnx``  cond (B, C, d), t (S,) -> mod (B * S, M)   (S: a step's DDIM times)
* ``M.head.onnx``             x_t (B, C*K), mod (B, M) -> x0 (B, C*K)
* ``M.head_int8.onnx``        the same with int8 weights (see below)

The graphs are exported without ONNX-level optimisation, so every weight stays
the very tensor of the checkpoint (ONNX Runtime folds slices and transposes when it
loads them); each such initializer is then turned into *external data* pointing at
its byte range inside ``M.safetensors``. The graphs are ~100 KB, the weights
ship once. ``M.onnx.json`` records the weights' digest, each graph's SHA-256
and the largest difference from the torch modules measured at export.

The head's denoising pass, run once per DDIM time, is most of a step's CPU time, so the
export also writes it quantised by ONNX Runtime's own tool (``quantize_dynamic``: weights int8
per output channel, stored in the graph, ~2.4 MB; activations quantised per call). On the CPU it
runs about twice as fast as the float head, 1-2 % of the output's range off it (the manifest
records the figure measured at export); the float graphs stay the reference.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..runtime.onnx_backend import (ALL_GRAPHS, FORMAT, FORMAT_VERSION, GRAPHS, OPTIONAL_GRAPHS, file_sha256,
                                    graph_path, manifest_path)
from ..shared.model_card import read_header
from .checkpoint import load_checkpoint
from .network import StreamingTalker
from .onnx_graphs import MODULES, example_inputs, streamed_audio_error

#: 20: GELU is one ONNX operator (``Gelu``) instead of five
OPSET = 20


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare_with_torch(model: StreamingTalker, model_path: Path, seed: int = 0) -> dict[str, float]:
    """Largest |ONNX - torch module| per network on random inputs: the audio encoder (streamed
    step by step, against ``model.audio`` on each step's window), the condition predictor, and
    the head (``head_mod`` then ``head``, at each of two times) against ``model.head`` itself;
    the int8 head too where the export has one (one row per call, as the backend runs it)."""
    ins = example_inputs(model, seed)
    keys = [*GRAPHS, *(k for k in OPTIONAL_GRAPHS if graph_path(model_path, k).is_file())]
    run = {key: _session(graph_path(model_path, key)) for key in keys}

    def outputs(key: str, *arrays: torch.Tensor) -> list[np.ndarray]:
        return run[key].run(None, {n: a.numpy() for n, a in zip(ALL_GRAPHS[key][1], arrays)})

    def graph(key: str, *arrays: torch.Tensor) -> np.ndarray:
        return outputs(key, *arrays)[0]

    out = {"audio": streamed_audio_error(model, lambda mel, state: outputs("audio", mel, state), seed=seed)}
    with torch.no_grad():
        ref = model.predictor(*ins["condition"]).numpy()
        out["condition"] = float(np.abs(graph("condition", *ins["condition"]) - ref).max())
        cond, t = ins["head_mod"]
        x_t = ins["head"][0]
        b, n = len(cond), len(t)
        mods = graph("head_mod", cond, t)  # row b * n + i: condition b at time i
        refs = [model.head(x_t, t[i:i + 1].expand(b), cond).numpy() for i in range(n)]
        out["head"] = max(float(np.abs(graph("head", x_t, torch.from_numpy(mods[i::n])) - refs[i]).max())
                          for i in range(n))
        if "head_int8" in run:
            out["head_int8"] = max(float(np.abs(graph("head_int8", x_t[r:r + 1], torch.from_numpy(mods[i::n][r:r + 1]))
                                                - refs[i][r:r + 1]).max()) for i in range(n) for r in range(b))
            out["head_int8_relative"] = out["head_int8"] / max(float(np.abs(np.stack(refs)).max()), 1e-12)
    return out


def write_int8_head(head: Any, path: Path) -> None:
    """The float head graph ``head`` (an ONNX model with its weights inline) quantised by ONNX
    Runtime's dynamic quantisation: int8 weights per output channel, in the graph."""
    import logging
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    head = onnx.ModelProto.FromString(head.SerializeToString())
    head.graph.ClearField("value_info")  # torch's intermediate shapes trip the quantiser's own shape inference
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for image models
    try:
        with tempfile.TemporaryDirectory(prefix="stk_int8_") as tmp:
            src = Path(tmp) / "head.onnx"
            onnx.save(head, str(src))
            quantize_dynamic(str(src), str(path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().setLevel(quiet)


def _point_at_checkpoint(graph: Any, model_path: Path) -> int:
    """Replace every initializer that is a checkpoint tensor, byte for byte, by external data
    at that tensor's range of the checkpoint file; returns how many were replaced."""
    import onnx
    from onnx import numpy_helper

    header, data_start = read_header(model_path)
    with open(model_path, "rb") as fh:
        fh.seek(data_start)
        blob = fh.read()
    ranges = {}
    for name, info in header.items():
        if name != "__metadata__" and info.get("dtype") == "F32":
            b, e = info["data_offsets"]
            ranges[blob[b:e]] = (data_start + b, e - b)
    n = 0
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        hit = ranges.get(np.ascontiguousarray(arr).tobytes()) if arr.dtype == np.float32 else None
        if hit is None:
            continue
        init.ClearField("raw_data")
        del init.float_data[:]
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for key, value in (("location", model_path.name), ("offset", str(hit[0])), ("length", str(hit[1]))):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
        n += 1
    return n


def _dynamic_axes(key: str, names: tuple[str, ...]) -> dict[str, Any] | None:
    """torch.export's dynamic shapes of a graph's inputs: the head's batch axis (the audio encoder
    streams one voice; the condition predictor is compute-bound, batching it saves nothing) and
    head_mod's time axis."""
    if key not in ("head_mod", "head"):
        return None
    batch = torch.export.Dim("batch", min=1, max=2)
    axes: dict[str, Any] = {n: {0: batch} for n in names}
    if key == "head_mod":
        axes["t"] = {0: torch.export.Dim("times", min=1, max=64)}
    return axes


def export_onnx(model_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the graphs and the manifest beside the checkpoint (or beside a copy of it
    in ``out_dir``); returns the manifest's path."""
    import onnx

    src = Path(model_path)
    model, card, _ = load_checkpoint(src)
    target = src
    if out_dir is not None:
        target = Path(out_dir) / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.resolve() != src.resolve():
            shutil.copy2(src, target)
            if src.with_suffix(".json").exists():  # the card's human-readable mirror
                shutil.copy2(src.with_suffix(".json"), target.with_suffix(".json"))
    inputs = example_inputs(model)
    files: dict[str, Any] = {}
    t0 = time.time()
    for key, (_, names, output_names) in GRAPHS.items():
        path = graph_path(target, key)
        tmp = path.with_name(path.name + ".tmp")
        # the head's batch axis is dynamic (1, or 2 for a guided step), and head_mod's time axis:
        # one call prepares however many DDIM steps a session uses
        dynamic = _dynamic_axes(key, names)
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(MODULES[key](model).eval(), inputs[key], str(tmp), input_names=list(names),
                              output_names=list(output_names), opset_version=OPSET, dynamo=True, optimize=False,
                              external_data=False, dynamic_shapes=dynamic)
        proto = onnx.load(str(tmp))
        if key == "head":
            write_int8_head(proto, tmp.with_name(tmp.name + ".int8"))
        external = _point_at_checkpoint(proto.graph, target)
        proto.doc_string = f"StreamingTalker {key} network of {target.name} (weights {card.get('weights_sha256')})"
        onnx.save(proto, str(tmp))
        tmp.replace(path)
        files[key] = {"file": path.name, "sha256": file_sha256(path), "inputs": list(names),
                      "shapes": [list(a.shape) for a in inputs[key]], "outputs": list(output_names),
                      "weights_in_checkpoint": external, "bytes": path.stat().st_size}
        if key == "head":
            import onnxruntime

            int8 = graph_path(target, "head_int8")
            tmp.with_name(tmp.name + ".int8").replace(int8)
            files["head_int8"] = {
                "file": int8.name, "sha256": file_sha256(int8), "inputs": list(names), "outputs": list(output_names),
                "shapes": files[key]["shapes"], "weights_in_checkpoint": 0, "bytes": int8.stat().st_size,
                "quantized_from": "head", "quantization": "onnxruntime.quantization.quantize_dynamic: weights int8 "
                f"per output channel, activations uint8 per call (onnxruntime {onnxruntime.__version__})"}
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "model": target.name, "weights_sha256": card.get("weights_sha256"),
        "checkpoint_data_start": read_header(target)[1],  # the offsets the graphs read the weights at
        "core_version": __version__, "torch": torch.__version__, "opset": OPSET, "files": files,
        "export_seconds": round(time.time() - t0, 1),
        "max_abs_diff_vs_torch": compare_with_torch(model, target),
    }
    manifest_path(target).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path(target)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m inference_core export-onnx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=None, help="checkpoint (default: the bundled model)")
    ap.add_argument("-o", "--out", default=None,
                    help="folder for a copy of the checkpoint with its graphs (default: beside the model)")
    args = ap.parse_args(argv)
    from ..shared.paths import DEFAULT_MODEL

    path = export_onnx(args.model or DEFAULT_MODEL, args.out)
    print(json.dumps(json.loads(path.read_text())["max_abs_diff_vs_torch"]))
    print(path)
    return 0
