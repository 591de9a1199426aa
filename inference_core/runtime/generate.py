"""Whole-file generation (CLI, batch): decode in blocks, stream through a session."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.features import rms_db
from ..audio.io import probe, stream_file
from .bundle import ModelBundle
from .session import SessionOptions, StreamingSession

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


def generate_file(bundle: ModelBundle, path: str | Path, options: SessionOptions,
                  progress: bool = False) -> GenerationResult:
    """Stream a file of any length through a fresh session (flat memory)."""
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
                            session.audio_seconds, str(path), str(bundle.card.get("name")),
                            options.to_dict(), warnings)


def write_outputs(result: GenerationResult, stem: Path, formats: list[str]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if "npz" in formats:
        p = stem.with_suffix(".npz")
        np.savez(p, weights=result.weights.astype(np.float32), channels=np.array(result.channels),
                 fps=np.float32(result.fps), audio_seconds=np.float32(result.audio_seconds))
        written.append(p)
    if "json" in formats:
        p = stem.with_suffix(".json")
        p.write_text(json.dumps({
            "fps": result.fps, "channels": result.channels, "audio_seconds": result.audio_seconds,
            "source": result.source, "model": result.model, "options": result.options,
            "frames": np.round(result.weights.astype(float), 5).tolist()}))
        written.append(p)
    if "csv" in formats:
        p = stem.with_suffix(".csv")
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["frame", "time"] + result.channels)
            for i, row in enumerate(result.weights):
                w.writerow([i, f"{i / result.fps:.4f}"] + [f"{v:.5f}" for v in row])
        written.append(p)
    return written
