"""The one on-disk dataset format every trainer input uses (numpy + json only).

A dataset is a folder::

    manifest.json   {"format": "streamingtalker-dataset", "version": 1,
                     "fps": 30, "sample_rate": 16000,
                     "channel_space": "arkit" | "vertex",
                     "channels": [K names],
                     "basis": "basis.npz" | null,      # vertex space only
                     "source": "...free text: how it was made...",
                     "utterances": [{"id", "file", "speaker", "split", "frames", "seconds", ...}]}
    <file>.npz      audio    float32 (N,) mono at sample_rate, peak <= 1
                    motion   float32 (T, K) at fps, T == round(N / sample_rate * fps)
                    [phonemes_start, phonemes_end] float32 seconds, [phonemes] str   (optional)
    basis.npz       basis float32 (K, V, 3), template float32 (V, 3)   (vertex space)

Why one format: the synthetic ARKit corpus, VOCASET and BIWI converters all
write it, so the trainer and the evaluator read one thing. ``split`` is
``train`` or ``val``; validation holds out whole speakers/voices.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FORMAT = "streamingtalker-dataset"
VERSION = 1


@dataclass
class Utterance:
    id: str
    speaker: str
    split: str
    audio: np.ndarray  # (N,) float32
    motion: np.ndarray  # (T, K) float32
    extra: dict[str, Any] = field(default_factory=dict)


class DatasetError(ValueError):
    pass


def frames_for(num_samples: int, sample_rate: int, fps: float) -> int:
    return int(round(num_samples / sample_rate * fps))


class DatasetWriter:
    """Write utterances one by one; ``close()`` writes the manifest (resumable)."""

    def __init__(self, root: str | Path, fps: float, sample_rate: int, channels: list[str],
                 channel_space: str = "arkit", source: str = "", resume: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "fps": fps, "sample_rate": sample_rate,
            "channel_space": channel_space, "channels": list(channels), "basis": None,
            "source": source, "utterances": [],
        }
        manifest = self.root / "manifest.json"
        if resume and manifest.exists():
            old = json.loads(manifest.read_text())
            self.meta["utterances"] = [u for u in old.get("utterances", [])
                                       if (self.root / u["file"]).exists()]
        self._ids = {u["id"] for u in self.meta["utterances"]}

    def has(self, utt_id: str) -> bool:
        return utt_id in self._ids

    def set_basis(self, basis: np.ndarray, template: np.ndarray) -> None:
        np.savez(self.root / "basis.npz", basis=basis.astype(np.float32),
                 template=template.astype(np.float32))
        self.meta["basis"] = "basis.npz"

    def add(self, utt: Utterance) -> None:
        if utt.motion.ndim != 2 or utt.motion.shape[1] != len(self.meta["channels"]):
            raise DatasetError(f"{utt.id}: motion shape {utt.motion.shape} does not match "
                               f"{len(self.meta['channels'])} channels")
        fname = f"{utt.id}.npz"
        arrays = {"audio": utt.audio.astype(np.float32), "motion": utt.motion.astype(np.float32)}
        for key, value in utt.extra.items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
        np.savez(self.root / fname, **arrays)
        entry = {"id": utt.id, "file": fname, "speaker": utt.speaker, "split": utt.split,
                 "frames": int(utt.motion.shape[0]),
                 "seconds": float(len(utt.audio) / self.meta["sample_rate"])}
        entry.update({k: v for k, v in utt.extra.items() if not isinstance(v, np.ndarray)})
        self.meta["utterances"].append(entry)
        self._ids.add(utt.id)

    def close(self) -> Path:
        path = self.root / "manifest.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, indent=1))
        tmp.replace(path)
        return path


class Dataset:
    """Read a dataset folder written by :class:`DatasetWriter`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.exists():
            raise DatasetError(f"{self.root} has no manifest.json: not a StreamingTalker dataset")
        self.meta = json.loads(path.read_text())
        if self.meta.get("format") != FORMAT:
            raise DatasetError(f"{path}: format {self.meta.get('format')!r} is not {FORMAT!r}")
        self.fps = float(self.meta["fps"])
        self.sample_rate = int(self.meta["sample_rate"])
        self.channels: list[str] = list(self.meta["channels"])
        self.channel_space: str = self.meta.get("channel_space", "arkit")

    def entries(self, split: str | None = None) -> list[dict[str, Any]]:
        return [u for u in self.meta["utterances"] if split is None or u["split"] == split]

    def speakers(self, split: str | None = None) -> list[str]:
        return sorted({u["speaker"] for u in self.entries(split)})

    def load(self, entry: dict[str, Any]) -> Utterance:
        with np.load(self.root / entry["file"], allow_pickle=False) as z:
            extra = {k: z[k] for k in z.files if k not in ("audio", "motion")}
            return Utterance(entry["id"], entry["speaker"], entry["split"],
                             z["audio"].astype(np.float32), z["motion"].astype(np.float32), extra)

    def iter(self, split: str | None = None) -> Iterator[Utterance]:
        for entry in self.entries(split):
            yield self.load(entry)

    def basis(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.meta.get("basis"):
            return None
        with np.load(self.root / self.meta["basis"], allow_pickle=False) as z:
            return z["basis"].astype(np.float32), z["template"].astype(np.float32)
