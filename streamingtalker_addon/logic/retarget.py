"""Retarget presets: how the model's ARKit channels reach a rig's shape keys, whatever their names (no bpy).

A :class:`Preset` is a list of :class:`Row` terms *channel → key × weight*: a name map when
every key has one channel at weight 1, a small linear map when keys mix channels (viseme
rigs). Rows whose key the mesh lacks are skipped; a *fallback* row is used only when its
channel has no other row on the mesh (so ``cheekPuff`` goes to ``cheekPuffLeft`` and
``cheekPuffRight`` only on a rig without a single ``cheekPuff``, and a Ready Player Me
avatar's ``viseme_*`` keys move only when it has no ARKit keys). :func:`detect` picks the
preset that binds the most channels of a mesh, and users can save a mapping as a JSON
preset file (:func:`preset_to_json` / :func:`preset_from_json`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..client.core import normalise_name
from .binding import Binding

FORMAT = "streamingtalker-retarget-preset"
VERSION = 1
MAX_ROWS = 5000
#: numbered prefixes some exporters put before ARKit names (Character Creator's "A25_Jaw_Open")
_NUMBER_PREFIX = re.compile(r"^[A-Za-z]\d{2}_")


class PresetError(ValueError):
    """A preset file that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class Row:
    channel: str
    key: str
    weight: float = 1.0
    fallback: bool = False


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    rows: tuple[Row, ...]
    description: str = ""
    #: match key names ignoring case, separators, side-suffix spelling and numbered prefixes
    loose: bool = False
    #: every model channel also binds to a key of its own name (ARKit names, a vertex model's components)
    by_name: bool = False
    #: regular expressions; keys matching them mark a rig of this kind (breaks ties in :func:`detect`)
    signature: tuple[str, ...] = ()
    builtin: bool = False
    rank: int = 100  # among equal scores, lower wins (more specific presets first)
    notes: tuple[str, ...] = field(default=(), compare=False)


def loose_name(name: str) -> str:
    """``A38_Mouth_Smile_Left``, ``mouthSmile.L``, ``MouthSmile_L`` → ``mouthsmileleft``."""
    return normalise_name(_NUMBER_PREFIX.sub("", name.strip()))


def _key_lookup(preset: Preset, key_names: Iterable[str]) -> dict[str, str]:
    """How a row's key is spelled in the preset → the mesh's key of that name (first one wins)."""
    out: dict[str, str] = {}
    for name in key_names:
        out.setdefault(loose_name(name) if preset.loose else name, name)
    return out


def bind_preset(preset: Preset, channels: Sequence[str], key_names: Iterable[str]) -> Binding:
    """The terms of ``preset`` that exist on a mesh with ``key_names``, for a model with ``channels``."""
    lookup = _key_lookup(preset, key_names)
    index = {ch: i for i, ch in enumerate(channels)}

    def mesh_key(row: Row) -> str | None:
        return lookup.get(loose_name(row.key) if preset.loose else row.key)

    rows = [Row(ch, ch) for ch in channels] + list(preset.rows) if preset.by_name else list(preset.rows)
    primary = {r.channel for r in rows if not r.fallback and mesh_key(r) is not None}
    terms: dict[tuple[str, str], float] = {}
    for r in rows:
        key = mesh_key(r)
        if key is None or r.channel not in index or (r.fallback and r.channel in primary):
            continue
        terms.setdefault((r.channel, key), r.weight)  # two spellings of one key: the first row counts
    out = Binding(source=preset.name)
    for ch in channels:
        mine = [(k, w) for (c, k), w in terms.items() if c == ch]
        for k, w in mine:
            out.pairs.append((index[ch], ch, k))
            out.weights.append(w)
        if not mine:
            out.unmapped.append(ch)
    routed = [ch for ch in out.channels_bound if ch not in primary]
    if routed:
        shown = [f"{ch} → {' + '.join(k for _, c, k in out.pairs if c == ch)}" for ch in routed[:3]]
        out.notes.append("; ".join(shown) + (f"; {len(routed) - 3} more" if len(routed) > 3 else ""))
    return out


def signature_hits(preset: Preset, key_names: Sequence[str]) -> int:
    pats = [re.compile(p) for p in preset.signature]
    return sum(1 for k in key_names if any(p.search(k) for p in pats))


def detect(presets: Sequence[Preset], channels: Sequence[str], key_names: Sequence[str]) -> tuple[Preset, Binding]:
    """The preset that binds the most channels of this mesh (then: most signature keys, lowest rank)."""
    if not presets:
        raise ValueError("no presets to choose from")
    scored = []
    for p in presets:
        b = bind_preset(p, channels, key_names)
        scored.append(((-len(b.channels_bound), -signature_hits(p, key_names), p.rank), p, b))
    scored.sort(key=lambda t: t[0])
    return scored[0][1], scored[0][2]


# -- files ----------------------------------------------------------------------------------------------------
def preset_to_json(preset: Preset) -> str:
    data: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "name": preset.name, "description": preset.description,
        "loose": preset.loose, "by_name": preset.by_name, "signature": list(preset.signature),
        "rows": [{"channel": r.channel, "key": r.key, "weight": r.weight, **({"fallback": True} if r.fallback else {})}
                 for r in preset.rows],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def _text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value:
        raise PresetError(f"row {row!r}: '{name}' must be a name")
    return value


def _number(row: dict[str, Any], name: str, default: float) -> float:
    value = row.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"row {row!r}: '{name}' must be a finite number")
    return float(value)


def preset_from_json(text: str, preset_id: str, where: str = "preset") -> Preset:
    """Parse a preset file; :class:`PresetError` with a one-line reason when it is not one."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"{where} is not JSON ({exc.msg} at line {exc.lineno})"
                          if isinstance(exc, json.JSONDecodeError) else f"{where} is not UTF-8 text") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PresetError(f"{where} is not a StreamingTalker retarget preset (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise PresetError(f"{where} has version {data.get('version')!r}; this add-on reads version {VERSION}")
    rows_in = data.get("rows", [])
    by_name = bool(data.get("by_name", False))
    if not isinstance(rows_in, list) or not (rows_in or by_name):
        raise PresetError(f"{where} has no rows")
    if len(rows_in) > MAX_ROWS:
        raise PresetError(f"{where} has {len(rows_in)} rows (at most {MAX_ROWS})")
    rows = []
    for r in rows_in:
        if not isinstance(r, dict):
            raise PresetError(f"{where}: every row must be an object with channel, key and weight")
        try:
            rows.append(Row(_text(r, "channel"), _text(r, "key"), _number(r, "weight", 1.0),
                            bool(r.get("fallback", False))))
        except PresetError as exc:
            raise PresetError(f"{where}: {exc}") from None
    signature = data.get("signature", [])
    if not isinstance(signature, list) or not all(isinstance(s, str) for s in signature):
        raise PresetError(f"{where}: 'signature' must be a list of regular expressions")
    for s in signature:
        try:
            re.compile(s)
        except re.error as exc:
            raise PresetError(f"{where}: bad signature pattern {s!r} ({exc})") from None
    name = data.get("name") or preset_id
    return Preset(id=preset_id, name=str(name), rows=tuple(rows), description=str(data.get("description", "")),
                  loose=bool(data.get("loose", False)), by_name=by_name, signature=tuple(signature))


def preset_from_mapping(preset_id: str, name: str, rows: Iterable[tuple[str, str, bool, float]],
                        description: str = "") -> Preset:
    """A preset from the panel's mapping list (enabled rows with a key), exact key names."""
    kept = tuple(Row(ch, key, float(w)) for ch, key, enabled, w in rows if enabled and ch and key)
    if not kept:
        raise PresetError("the mapping list has no enabled row with a shape key: nothing to save")
    return Preset(id=preset_id, name=name, rows=kept, description=description)


def safe_file_stem(name: str) -> str:
    """A file name for a preset called ``name`` (letters, digits, - and _)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")
    return stem[:64] or "preset"
