"""Whole-file generation (CLI, batch): decode in blocks, stream through a session.

Outputs are written so that a batch can trust them: each file appears whole or not at
all (written beside, then renamed), and the same result gives the same bytes wherever
and whenever it is written (the ``.npz`` zip carries a fixed timestamp), so runs with
any ``--jobs`` or on Ray can be compared byte for byte and ``--skip-existing`` never
takes a half-written file for a finished one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.features import rms_db
from ..audio.io import probe, stream_file
from ..shared.options import SessionOptions
from .bundle import ModelBundle
from .session import StreamingSession

SILENCE_DBFS = -60.0


@dataclass
class GenerationResult:
    weights: np.ndarray          # (T, K) float32
    channels: list[str]
    fps: float
    audio_seconds: float
    source: str
    model: str
    options: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class OutputError(OSError):
    """An output cannot be written; the message (one line) is meant for the user."""


def generate_file(bundle: ModelBundle, path: str | Path, options: SessionOptions,
                  progress: bool = False, source: str | None = None) -> GenerationResult:
    """Stream a file of any length through a fresh session (flat memory).

    ``source`` names the input in the result when ``path`` is a local copy of it
    (a Ray worker on another machine reads the bytes it was sent)."""
    cfg = bundle.cfg
    info = probe(path)
    session = StreamingSession(bundle, options)
    chunks: list[np.ndarray] = []
    peak_db = -math.inf
    notes: list[str] = []  # what decoding had to clip or could not read
    bar = None
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:  # a minimal runtime (numpy + onnxruntime): no progress bar
            tqdm = None
        if tqdm is not None:
            bar = tqdm(total=round(info.seconds, 1), unit="s", desc=Path(path).name, leave=False)
    try:
        for block in stream_file(path, cfg.sample_rate, warnings=notes):
            peak_db = max(peak_db, rms_db(block))
            chunks.append(session.push(block))
            if bar is not None:
                bar.update(round(block.size / cfg.sample_rate, 1))
        chunks.append(session.flush())
    finally:
        if bar is not None:
            bar.close()
    weights = np.concatenate(chunks) if chunks else np.zeros((0, cfg.num_channels), np.float32)
    warnings = notes + [w for w in (session.level.warning(),) if w]
    if peak_db < SILENCE_DBFS:
        warnings.append(f"the audio is silent (level {peak_db:.0f} dBFS): the face stays neutral")
    if info.sample_rate != cfg.sample_rate or info.channels != 1:
        warnings.append(f"converted {info.channels} channel(s) at {info.sample_rate} Hz to mono "
                        f"{cfg.sample_rate} Hz")
    return GenerationResult(weights, list(bundle.card["channels"]), float(cfg.fps),
                            session.audio_seconds, source or str(path), str(bundle.card.get("name")),
                            options.to_dict(), warnings)


def _npz_bytes(arrays: dict[str, Any]) -> bytes:
    """``np.savez`` content with a fixed member timestamp: same arrays, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def _csv_text(result: GenerationResult) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["frame", "time"] + result.channels)
    for i, row in enumerate(result.weights):
        w.writerow([i, f"{i / result.fps:.4f}"] + [f"{v:.5f}" for v in row])
    return buf.getvalue()


def _json_text(result: GenerationResult) -> str:
    return json.dumps({
        "fps": result.fps, "channels": result.channels, "audio_seconds": result.audio_seconds,
        "source": result.source, "model": result.model, "options": result.options,
        "frames": np.round(result.weights.astype(float), 5).tolist()})


def check_target(path: Path) -> None:
    """OutputError unless ``path`` can be a regular output file (not a folder or a device)."""
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():
        raise OutputError(f"cannot write {path}: it is not a regular file")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a hidden file beside ``path``, then rename it over ``path``."""
    check_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and parents); OutputError saying why not."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot use {folder} as the output folder: it is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None


def output_paths(stem: Path, formats: list[str]) -> list[Path]:
    return [stem.with_name(stem.name + "." + f) for f in formats]


def write_outputs(result: GenerationResult, stem: Path, formats: list[str]) -> list[Path]:
    """Write the result as ``stem.npz`` / ``.json`` / ``.csv``; OutputError for one that cannot be."""
    make_folder(stem.parent)
    written = []
    for p, fmt in zip(output_paths(stem, formats), formats):
        if fmt == "npz":
            data = _npz_bytes({"weights": result.weights.astype(np.float32), "channels": np.array(result.channels),
                               "fps": np.float32(result.fps), "audio_seconds": np.float32(result.audio_seconds)})
        elif fmt == "json":
            data = _json_text(result).encode()
        else:
            data = _csv_text(result).encode()
        write_atomic(p, data)
        written.append(p)
    return written
