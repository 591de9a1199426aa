"""``info --verify``: check a checkpoint and its ONNX export end to end.

The weights must load and match their checksum; an ONNX export beside them
must belong to these weights (manifest digest), be unaltered (file hashes)
and, where torch is installed, compute what the torch modules compute: each
float graph on random inputs (≤ 1e-4) and a whole streamed clip through both
backends with the same seed (≤ 1e-3 on every channel and frame); the int8 head
within 5 % of the output's range (it is an approximation: 1-2 % measured).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GRAPH_TOLERANCE = 1e-4
STREAM_TOLERANCE = 1e-3
INT8_RELATIVE_TOLERANCE = 0.05


def stream_difference(a: Any, b: Any, seconds: float = 3.0, seed: int = 0) -> float:
    """Largest |a - b| over a streamed clip of speech-like noise, same options and seed."""
    from ..shared.options import SessionOptions
    from .session import StreamingSession

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * a.cfg.sample_rate)) / a.cfg.sample_rate
    audio = (rng.standard_normal(t.size) * 0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    outs = []
    for bundle in (a, b):
        s = StreamingSession(bundle, SessionOptions.resolve(bundle.card, {"seed": seed}))
        outs.append(np.concatenate([s.push(audio), s.flush()]))
    return float(np.abs(outs[0] - outs[1]).max())


def verify_model(path: str | Path) -> dict[str, Any]:
    from .bundle import BackendUnavailable, load_bundle
    from .onnx_backend import manifest_path

    path = Path(path)
    report: dict[str, Any] = {}
    torch_bundle = onnx_bundle = None
    try:
        torch_bundle = load_bundle(path, backend="torch")
        report["weights"] = "loaded with torch, checksum ok"
    except BackendUnavailable:
        report["weights"] = "torch not installed: checked by the ONNX loader only"
    if not manifest_path(path).is_file():
        report["onnx"] = "no ONNX export beside the model"
        if torch_bundle is None:
            raise ValueError(f"{path.name}: neither torch nor an ONNX export is available to verify it")
        return report
    onnx_bundle = load_bundle(path, backend="onnx-fp32")  # raises on a digest or hash mismatch
    report["onnx"] = {"files": "checksums ok, exported from these weights",
                      "head_precision": load_bundle(path, backend="onnx").backend.head_precision}
    if torch_bundle is not None:
        from ..model.onnx_export import compare_with_torch

        graphs = compare_with_torch(torch_bundle.backend.model, path)  # type: ignore[attr-defined]
        stream = stream_difference(torch_bundle, onnx_bundle)
        report["onnx"].update(max_abs_diff_graphs=graphs, max_abs_diff_stream=stream)
        bad = {k: v for k, v in graphs.items() if not k.startswith("head_int8") and v > GRAPH_TOLERANCE}
        if graphs.get("head_int8_relative", 0.0) > INT8_RELATIVE_TOLERANCE:
            bad["head_int8_relative"] = graphs["head_int8_relative"]
        if bad or stream > STREAM_TOLERANCE:
            raise ValueError(f"{path.name}: the ONNX graphs do not compute what the weights compute "
                             f"(graphs {graphs}, streamed clip {stream:.2e})")
    return report
