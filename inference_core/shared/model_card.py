"""Read a checkpoint's header and model card without torch (stdlib only; used inside Blender).

A safetensors file starts with a little-endian u64 header length and a JSON
header (tensor offsets + ``__metadata__``, which holds our card), so the
add-on can learn a model's channels and channel space — and find tensors to
read with numpy — before any inference process exists.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

CARD_KEY = "streamingtalker.card"
FORMAT = "streamingtalker-checkpoint"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 2**20


class ModelFileError(ValueError):
    """The model file is missing, corrupt, tampered with or for another architecture."""


def check_card(card: dict[str, Any], name: str) -> dict[str, Any]:
    """``card`` if it is a StreamingTalker card this version can read, else ModelFileError."""
    if card.get("format") != FORMAT:
        raise ModelFileError(f"{name}: unknown checkpoint format {card.get('format')!r}")
    try:
        version = int(card.get("format_version", 0))
    except (TypeError, ValueError):
        version = FORMAT_VERSION + 1
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{name} was written by a newer StreamingTalker "
                             f"(format {card.get('format_version')}); update the add-on")
    return card


def read_header(path: str | Path) -> tuple[dict[str, Any], int]:
    """(JSON header, byte offset where tensor data starts); ValueError with a readable message."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError(f"{path.name} is not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", raw)
            if n <= 0 or n > min(size - 8, _MAX_HEADER):
                raise ValueError(f"{path.name} is not a safetensors file (bad header length)")
            header = json.loads(fh.read(n).decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path.name} has a corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a corrupt safetensors header")
    return header, 8 + n


def card_from_header(header: dict[str, Any], name: str) -> dict[str, Any]:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or CARD_KEY not in meta:
        raise ValueError(f"{name} is not a StreamingTalker checkpoint (no model card)")
    try:
        card = json.loads(meta[CARD_KEY])
    except json.JSONDecodeError:
        raise ValueError(f"{name}: the model card is not valid JSON") from None
    if not isinstance(card, dict):
        raise ValueError(f"{name}: the model card is not a JSON object")
    return card


def read_card_header(path: str | Path) -> dict[str, Any]:
    """The model card of ``path``; ValueError with a readable message if there is none."""
    header, _ = read_header(path)
    return card_from_header(header, Path(path).name)


# Stated once for the whole lineage (the corpus and its speakers) or the lineage itself; every
# other field of a training section says what that one run (a stage) did, so a field added to
# the training card later is kept in the stages without being listed here.
NOT_STAGE_FIELDS = ("trained", "data", "train_hours", "train_utterances", "train_speakers", "val_speakers",
                    "init", "earlier_stages")


def training_stages(training: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every stage that made a checkpoint, oldest first, each naming the checkpoint it started from.

    Reads both layouts: flat (``earlier_stages``) and the nested one of older cards,
    where each ``init`` carried its parent's whole training section."""
    if not training:
        return []
    init = training.get("init") or {}
    if isinstance(init.get("training"), dict):
        earlier = training_stages(init["training"])
    else:
        earlier = list(training.get("earlier_stages") or [])
    stage = {k: v for k, v in training.items() if k not in NOT_STAGE_FIELDS}
    if init:
        stage["from"] = init.get("from")
        stage["from_sha256"] = init.get("weights_sha256")
    return earlier + [stage]


def flat_training(training: dict[str, Any]) -> dict[str, Any]:
    """``training`` with its parents as a flat ``earlier_stages`` list instead of nested sections."""
    init = training.get("init") or {}
    if not isinstance(init.get("training"), dict):
        return training
    out = {k: v for k, v in training.items() if k != "init"}
    out["init"] = {"from": init.get("from"), "weights_sha256": init.get("weights_sha256")}
    out["earlier_stages"] = training_stages(init["training"])
    return out
