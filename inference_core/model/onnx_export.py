"""Export the per-step networks to ONNX: ``python -m inference_core export-onnx MODEL [-o DIR]``.

Three graphs with fixed shapes (batch 1, one autoregressive step), exactly the
calls the streaming session makes; the DDIM loop, guidance, temperature and
noise stay outside the graphs, in numpy (:mod:`inference_core.model.diffusion`):

* ``M.audio_encoder.onnx``  mel (1, step_mels + RF - 1, n_mels) -> features (1, C, d)
* ``M.condition.onnx``      audio (1, W + C, d), past (1, W, K), style_vec (1, s), keep (1,) -> (1, C, d)
* ``M.head.onnx``           x_t (1, C*K), t (1,), cond (1, C, d) -> x0 (1, C*K)

The graphs are exported without ONNX-level optimisation, so every weight stays
the very tensor of the checkpoint (ONNX Runtime folds transposes when it loads
them); each such initializer is then turned into *external data* pointing at
its byte range inside ``M.safetensors``. The graphs are ~100 KB, the weights
ship once. ``M.onnx.json`` records the weights' digest, each graph's SHA-256
and the largest difference from torch measured at export.
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
from torch import nn

from .. import __version__
from ..runtime.onnx_backend import FORMAT, GRAPHS, file_sha256, graph_input_shapes, graph_path, manifest_path
from ..shared.model_card import read_header
from .checkpoint import load_checkpoint
from .network import StreamingTalker

OPSET = 18


class _Call(nn.Module):
    """One of the model's per-step calls as a module of its own (what gets exported)."""

    def __init__(self, model: StreamingTalker, which: str):
        super().__init__()
        self.model, self.which = model, which

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.which == "audio":
            return m.audio(args[0])
        if self.which == "condition":
            return m.predictor(*args)
        return m.head(*args)


def example_inputs(model: StreamingTalker, seed: int = 0) -> dict[str, tuple[torch.Tensor, ...]]:
    """Random inputs of the exported shapes (also what export and ``info --verify`` compare on)."""
    g = torch.Generator().manual_seed(seed)
    shapes = graph_input_shapes(model.cfg)
    a, c, h = shapes["audio"], shapes["condition"], shapes["head"]
    return {
        "audio": (torch.randn(*a[0], generator=g),),
        "condition": (torch.randn(*c[0], generator=g), torch.randn(*c[1], generator=g),
                      torch.randn(*c[2], generator=g), torch.ones(*c[3])),
        "head": (torch.randn(*h[0], generator=g), torch.rand(*h[1], generator=g),
                 torch.randn(*h[2], generator=g)),
    }


def compare_with_torch(model: StreamingTalker, model_path: Path, seed: int = 0) -> dict[str, float]:
    """Largest |ONNX - torch| per graph on random inputs."""
    import onnxruntime as ort

    out = {}
    inputs = example_inputs(model, seed)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    for key, (_, names, _) in GRAPHS.items():
        sess = ort.InferenceSession(str(graph_path(model_path, key)), opts, providers=["CPUExecutionProvider"])
        feeds = {n: a.numpy() for n, a in zip(names, inputs[key])}
        with torch.no_grad():
            ref = _Call(model, key)(*inputs[key]).numpy()
        out[key] = float(np.abs(sess.run(None, feeds)[0] - ref).max())
    return out


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


def export_onnx(model_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the three graphs and the manifest beside the checkpoint (or beside a copy of it
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
    for key, (_, names, output) in GRAPHS.items():
        path = graph_path(target, key)
        tmp = path.with_name(path.name + ".tmp")
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(_Call(model, key).eval(), inputs[key], str(tmp), input_names=list(names),
                              output_names=[output], opset_version=OPSET, dynamo=True, optimize=False,
                              external_data=False)
        proto = onnx.load(str(tmp))
        external = _point_at_checkpoint(proto.graph, target)
        proto.doc_string = f"StreamingTalker {key} network of {target.name} (weights {card.get('weights_sha256')})"
        onnx.save(proto, str(tmp))
        tmp.replace(path)
        files[key] = {"file": path.name, "sha256": file_sha256(path), "inputs": list(names),
                      "shapes": [list(a.shape) for a in inputs[key]], "output": output,
                      "weights_in_checkpoint": external, "bytes": path.stat().st_size}
    manifest = {
        "format": FORMAT, "model": target.name, "weights_sha256": card.get("weights_sha256"),
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
