"""Read a checkpoint's header and model card without torch (stdlib only; used inside Blender).

A safetensors file starts with a little-endian u64 header length and a JSON
header (tensor offsets + ``__metadata__``, which holds our card), so the
add-on can learn a model's channels and channel space — and find tensors to
read with numpy — before any inference process exists.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

from .paths import NotARegularFile, open_regular

CARD_KEY = "streamingtalker.card"
FORMAT = "streamingtalker-checkpoint"
FORMAT_VERSION = 1
#: A safetensors header lists ~100 tensors and carries the card: a few hundred kB at most.
_MAX_HEADER = 16 * 2**20
#: The shipped card is 28 kB; a card must also fit the bridge's ``hello`` header (1 MiB).
MAX_CARD_BYTES = 256 * 2**10
#: Bounds of every integer architecture field a card may declare: (low, high). They only keep
#: values sane; the sizes are then bound exactly by the file's own tensors
#: (:func:`inference_core.model.layout.check_tensors`) before anything is built.
ARCH_FIELDS: dict[str, tuple[int, int]] = {
    "sample_rate": (4000, 192000), "fps": (1, 240), "hop": (1, 4096),
    "win_length": (1, 16384), "n_fft": (1, 16384), "n_mels": (1, 512),
    "chunk_frames": (1, 64), "lookahead_mel": (0, 256), "audio_dim": (1, 4096),
    "audio_branch_dim": (0, 4096), "phone_bottleneck": (0, 1024),
    "context_frames": (1, 1024), "model_dim": (1, 4096), "heads": (1, 256),
    "layers": (1, 64), "style_dim": (1, 4096), "num_styles": (1, 65536),
    "head_dim": (1, 16384), "head_blocks": (1, 64), "num_channels": (1, 4096),
    "diffusion_steps": (1, 100000),  # legacy field of older cards, ignored
    "feature_norm_frames": (0, 6000),
}
ARCH_LISTS = {"audio_kernels": (1, 64), "audio_dilations": (1, 4096)}
MAX_LIST = 64        # layers of the audio encoder
#: number lists: (most entries, largest magnitude); the normaliser's prior has one value per mel band
ARCH_NUMBER_LISTS = {"feature_norm_prior": (512, 100.0)}
MAX_NAME_CHARS = 200  # a channel or style name
#: the card's articulation gains (:mod:`inference_core.runtime.postfilter`): the entry's key, the
#: range a gain may take, and the running mean's time constant (default: about an utterance, the
#: span global variance is measured over; allowed range)
ARTICULATION_KEY = "articulation"
ARTICULATION_GAIN_LIMITS = (0.0, 10.0)
ARTICULATION_SECONDS = 1.0
ARTICULATION_SECONDS_LIMITS = (0.05, 60.0)
#: the card's phonetic gain (:class:`inference_core.runtime.postfilter.PhoneticGain`): its key, the
#: exponent's range and how many phone classes its read-out may have
PHONETIC_KEY = "phonetic_gain"
PHONETIC_BETA_LIMITS = (0.0, 4.0)
PHONETIC_MAX_CLASSES = 512


class ModelFileError(ValueError):
    """The model file is missing, corrupt, tampered with or for another architecture."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _names(value: Any, what: str, name: str, max_len: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_NAME_CHARS for v in value):
        raise ModelFileError(f"{name}: the card's {what} must be a list of names (strings of 1 to "
                             f"{MAX_NAME_CHARS} characters)")
    if len(value) > max_len:
        raise ModelFileError(f"{name}: the card lists {len(value)} {what}, more than {max_len}")
    return value


def _check_architecture(arch: Any, name: str) -> dict[str, Any]:
    if not isinstance(arch, dict):
        raise ModelFileError(f"{name}: the card's architecture must be an object")
    for key, value in arch.items():
        if key in ARCH_FIELDS:
            lo, hi = ARCH_FIELDS[key]
            if not _is_int(value) or not lo <= value <= hi:
                raise ModelFileError(f"{name}: architecture field {key} must be an integer in {lo}..{hi} "
                                     f"(got {_short(value)})")
        elif key in ARCH_LISTS:
            lo, hi = ARCH_LISTS[key]
            if not isinstance(value, list) or not 0 < len(value) <= MAX_LIST or not all(
                    _is_int(v) and lo <= v <= hi for v in value):
                raise ModelFileError(f"{name}: architecture field {key} must be a list of 1 to {MAX_LIST} "
                                     f"integers in {lo}..{hi}")
        elif key in ARCH_NUMBER_LISTS:
            most, bound = ARCH_NUMBER_LISTS[key]
            if not isinstance(value, list) or len(value) > most or not all(
                    _is_number(v) and abs(v) <= bound for v in value):
                raise ModelFileError(f"{name}: architecture field {key} must be a list of at most {most} "
                                     f"numbers within ±{bound:g}")
        elif not (isinstance(value, str) and len(value) <= MAX_NAME_CHARS or isinstance(value, bool)
                  or _is_int(value) and abs(value) <= 2**31):
            # a field this table does not know yet (ModelConfig decides whether it exists)
            raise ModelFileError(f"{name}: architecture field {_short(key)} has an invalid value")
    return arch


def check_card(card: Any, name: str) -> dict[str, Any]:
    """``card`` if it is a StreamingTalker card this version can read, else ModelFileError.

    A schema, checked before anything is built from the card: every field the code reads has
    the right type and a sane range. That the fields stated twice (fps, sample rate, chunk)
    agree with the architecture is checked by ``config_from_card``, and the sizes are bound
    exactly by the file's tensors afterwards."""
    if not isinstance(card, dict):
        raise ModelFileError(f"{name}: the model card is not a JSON object")
    if card.get("format") != FORMAT:
        raise ModelFileError(f"{name}: unknown checkpoint format {_short(card.get('format'))}")
    version = card.get("format_version", 0)
    if not _is_int(version) or version < 0:
        raise ModelFileError(f"{name}: format_version must be an integer (got {_short(version)})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{name} was written by a newer StreamingTalker "
                             f"(format {version}); update the add-on")
    _check_architecture(card.get("architecture"), name)
    for key in ("fps", "sample_rate", "chunk_frames"):  # stated again beside the architecture
        lo, hi = ARCH_FIELDS[key]
        if key in card and not (_is_int(card[key]) and lo <= card[key] <= hi):
            raise ModelFileError(f"{name}: the card's {key} must be an integer in {lo}..{hi} "
                                 f"(got {_short(card[key])})")
    for key in ("lookahead_ms", "algorithmic_latency_ms"):
        if key in card and not _is_number(card[key]):
            raise ModelFileError(f"{name}: the card's {key} must be a number")
    channels = _names(card.get("channels"), "channels", name, ARCH_FIELDS["num_channels"][1])
    if len(set(channels)) != len(channels):
        raise ModelFileError(f"{name}: the card names a channel twice")
    _names(card.get("styles") or [], "styles", name, ARCH_FIELDS["num_styles"][1])
    vr = card.get("value_range")
    if vr is not None and not (isinstance(vr, list) and len(vr) == 2 and all(map(_is_number, vr))
                               and vr[0] < vr[1]):
        raise ModelFileError(f"{name}: value_range must be null or [low, high] with low < high "
                             f"(got {_short(vr)})")
    for key in ("name", "channel_space", "weights_sha256", "objective", "core_version"):
        if key in card and not (isinstance(card[key], str) and len(card[key]) <= MAX_NAME_CHARS):
            raise ModelFileError(f"{name}: the card's {key} must be a short string")
    for key in ("defaults", "training", "quality"):
        if card.get(key) is not None and not isinstance(card[key], dict):
            raise ModelFileError(f"{name}: the card's {key} must be an object")
    if card.get(ARTICULATION_KEY) is not None:
        problem = _articulation_problem(card[ARTICULATION_KEY], channels)
        if problem:
            raise ModelFileError(f"{name}: the card's articulation gains {problem}")
    if card.get(PHONETIC_KEY) is not None:
        problem = _phonetic_problem(card[PHONETIC_KEY], channels)
        if problem:
            raise ModelFileError(f"{name}: the card's phonetic gain {problem}")
    if card.get("defaults"):
        from .options import SessionError, SessionOptions

        try:
            SessionOptions.from_dict(card["defaults"])
        except SessionError as exc:
            raise ModelFileError(f"{name}: the card's default settings are invalid: {exc}") from None
    return card


def _articulation_problem(spec: Any, channels: list[str]) -> str | None:
    """What is wrong with a card's articulation entry (None: nothing)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("gains"), dict):
        return "must be an object with gains, an object of channel: gain"
    lo, hi = ARTICULATION_GAIN_LIMITS
    for channel, gain in spec["gains"].items():
        if channel not in channels:
            return f"name a channel the model does not have ({_short(channel)})"
        if not _is_number(gain) or not lo <= gain <= hi:
            return f"must be numbers in {lo:g}..{hi:g} (got {_short(gain)} for {channel})"
    return _mean_seconds_problem(spec, "need")


def _phonetic_problem(spec: Any, channels: list[str]) -> str | None:
    """What is wrong with a card's phonetic gain entry (None: nothing); its tensors' shapes are
    checked against ``classes`` by :func:`inference_core.model.layout.check_tensors`."""
    if not isinstance(spec, dict):
        return "must be an object"
    classes, chans = spec.get("classes"), spec.get("channels")
    if not (isinstance(classes, list) and 0 < len(classes) <= PHONETIC_MAX_CLASSES
            and all(isinstance(c, str) and len(c) <= MAX_NAME_CHARS for c in classes)):
        return f"needs classes, a list of 1..{PHONETIC_MAX_CLASSES} phone names"
    if not (isinstance(chans, list) and chans and all(isinstance(c, str) for c in chans)):
        return "needs channels, a list of channel names"
    for c in chans:
        if c not in channels:
            return f"names a channel the model does not have ({_short(c)})"
    lo, hi = PHONETIC_BETA_LIMITS
    beta: Any = spec.get("beta")
    if not _is_number(beta) or not lo <= beta <= hi:
        return f"needs beta in {lo:g}..{hi:g} (got {_short(beta)})"
    if spec.get("mode", "absolute") not in ("absolute", "relative"):
        return f"needs mode absolute or relative (got {_short(spec.get('mode'))})"
    if spec.get("mode") == "relative" and "jawOpen" not in channels:
        return "in relative mode needs the model's jawOpen channel"
    floor, ceiling = spec.get("floor", 0.5), spec.get("ceiling", 2.0)
    if not (_is_number(floor) and _is_number(ceiling) and 0 < floor <= 1 <= ceiling <= 10):
        return f"needs 0 < floor <= 1 <= ceiling <= 10 (got {_short(floor)}, {_short(ceiling)})"
    return _mean_seconds_problem(spec, "needs")


def _mean_seconds_problem(spec: dict[str, Any], verb: str) -> str | None:
    """A post-filter's running-mean time constant out of range (None: fine or absent)."""
    seconds = spec.get("mean_seconds", ARTICULATION_SECONDS)
    lo, hi = ARTICULATION_SECONDS_LIMITS
    if not _is_number(seconds) or not lo <= seconds <= hi:
        return f"{verb} mean_seconds in {lo:g}..{hi:g} (got {_short(seconds)})"
    return None


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def read_header(path: str | Path) -> tuple[dict[str, Any], int]:
    """(JSON header, byte offset where tensor data starts); ValueError with a readable message."""
    path = Path(path)
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError(f"{path.name} is not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", raw)
            if n <= 0 or n > min(size - 8, _MAX_HEADER):
                raise ValueError(f"{path.name} is not a safetensors file (bad header length)")
            header = json.loads(fh.read(n).decode("utf-8"), parse_constant=_refuse_constant)
    except NotARegularFile as exc:
        raise ModelFileError(str(exc)) from None
    except FileNotFoundError:
        raise ModelFileError(f"Model file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{path.name} has a corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a corrupt safetensors header")
    return header, 8 + n


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def card_from_header(header: dict[str, Any], name: str) -> dict[str, Any]:
    """The checked model card (:func:`check_card`) in a safetensors header's metadata."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or CARD_KEY not in meta:
        raise ModelFileError(f"{name} is not a StreamingTalker checkpoint (no model card)")
    return parse_card(meta[CARD_KEY], name)


def parse_card(raw: Any, name: str) -> dict[str, Any]:
    """The card's JSON text → the checked card; bounded in size, no NaN, no deep nesting."""
    if not isinstance(raw, str):
        raise ModelFileError(f"{name}: the model card is not text")
    if len(raw.encode("utf-8")) > MAX_CARD_BYTES:
        raise ModelFileError(f"{name}: the model card is {len(raw.encode('utf-8')) / 2**10:.0f} KiB; "
                             f"the limit is {MAX_CARD_BYTES // 2**10} KiB (the file is damaged or not ours)")
    try:
        card = json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{name}: the model card is not valid JSON") from None
    return check_card(card, name)


def read_card_header(path: str | Path) -> dict[str, Any]:
    """The model card of ``path``; ValueError with a readable message if there is none."""
    header, _ = read_header(path)
    return card_from_header(header, Path(path).name)


# Stated once for the whole lineage (the corpus and its speakers) or the lineage itself; every
# other field of a training section says what that one run (a stage) did, so a field added to
# the training card later is kept in the stages without being listed here.
NOT_STAGE_FIELDS = ("trained", "data", "train_hours", "train_utterances", "train_speakers", "val_speakers",
                    "init", "earlier_stages", "voice_credits")


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
