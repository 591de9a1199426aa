"""Map model channels to a mesh's shape keys (pure logic; no bpy).

A binding is a list of terms *channel → shape key × weight*. A plain name map has one
term per key with weight 1 (``jawOpen`` → ``Jaw_Open``); a small linear map lets a key
mix several channels (a viseme rig's ``Fcl_MTH_A`` from jawOpen, funnel and pucker) or
a channel feed several keys (``cheekPuff`` on both cheeks' halves). Which terms a mesh
gets is decided by the retarget presets (:mod:`.retarget`) or the user's edited list;
channels without a key are reported, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np


#: what a key driven by a mix of channels is clipped to (a shape key's usual slider range)
MIX_RANGE = (0.0, 1.0)


@dataclass
class Binding:
    #: (channel index, channel name, shape key name) for every term.
    pairs: list[tuple[int, str, str]] = field(default_factory=list)
    #: Model channels with no shape key.
    unmapped: list[str] = field(default_factory=list)
    #: Weight of each term (empty: every weight is 1).
    weights: list[float] = field(default_factory=list)
    #: The preset (or "edited mapping") the terms came from, for the user.
    source: str = ""
    #: Short notes for the user (e.g. channels sent to both halves of a split key).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.pairs)

    def weight(self, i: int) -> float:
        return self.weights[i] if self.weights else 1.0

    @property
    def keys(self) -> list[str]:
        """The driven shape keys, each once, in the order of their first term."""
        return list(dict.fromkeys(k for _, _, k in self.pairs))

    @property
    def channels_bound(self) -> list[str]:
        return list(dict.fromkeys(ch for _, ch, _ in self.pairs))

    @property
    def is_name_map(self) -> bool:
        """One term per key with weight 1: values are copied, never mixed or clipped."""
        return len(self.keys) == len(self.pairs) and all(self.weight(i) == 1.0 for i in range(len(self.pairs)))

    def values(self, frames: np.ndarray) -> np.ndarray:
        """``(m, K)`` model frames → ``(m, len(keys))`` shape-key values.

        A name map copies its channels' columns exactly; a linear map sums the weighted
        channels per key and clips the sum to :data:`MIX_RANGE` (weights may be negative,
        e.g. "open mouth, but not rounded"; a key is never driven below its rest).
        """
        frames = np.asarray(frames, np.float32)
        if self.is_name_map:
            return frames[:, [c for c, _, _ in self.pairs]]
        keys = {k: j for j, k in enumerate(self.keys)}
        w = np.zeros((frames.shape[1], len(keys)), np.float32)
        for i, (c, _, k) in enumerate(self.pairs):
            w[c, keys[k]] += self.weight(i)
        return np.clip(frames @ w, *MIX_RANGE).astype(np.float32)

    def summary(self, total: int) -> str:
        text = f"{len(self.channels_bound)}/{total} channels bound"
        if self.source:
            text += f" ({self.source})"
        if self.unmapped:
            shown = ", ".join(self.unmapped[:6]) + (" …" if len(self.unmapped) > 6 else "")
            text += f"; unmapped: {shown}"
        return text


def explicit_bind(channels: Sequence[str], mapping: Iterable[tuple[str, str, bool] | tuple[str, str, bool, float]],
                  shape_keys: Iterable[str]) -> Binding:
    """Bind from the user's edited list of (channel, shape key, enabled[, weight]) rows.

    Rows naming a channel the model lacks or a key the mesh lacks are ignored
    (the channel is reported unmapped), so a stale list never writes to the
    wrong curve. A channel may have several rows (one per key it feeds); a
    repeated (channel, key) row replaces the earlier one.
    """
    keys = set(shape_keys)
    index = {ch: i for i, ch in enumerate(channels)}
    chosen: dict[tuple[str, str], float] = {}
    for row in mapping:
        ch, key, enabled = row[0], row[1], row[2]
        weight = float(row[3]) if len(row) > 3 else 1.0  # type: ignore[misc]
        if enabled and ch in index and key in keys and weight == weight:  # NaN never binds
            chosen[(ch, key)] = weight
    out = Binding(source="edited mapping")
    for i, ch in enumerate(channels):
        terms = [(k, w) for (c, k), w in chosen.items() if c == ch]
        for k, w in terms:
            out.pairs.append((i, ch, k))
            out.weights.append(w)
        if not terms:
            out.unmapped.append(ch)
    return out


def refusal_message(mesh_name: str, n_keys: int, channel_space: str, n_vertices: int,
                    basis_vertices: int | None = None) -> str:
    """The message shown when a mesh can be driven neither by name nor by topology."""
    if channel_space == "vertex":
        return (f"'{mesh_name}' has {n_vertices} vertices but the model drives a "
                f"{basis_vertices}-vertex topology, and none of its {n_keys} shape keys match "
                "the model's channels. Use a mesh of the model's topology.")
    return (f"'{mesh_name}' has no shape keys named after the model's ARKit channels "
            f"(it has {n_keys} shape key(s)). Add ARKit-named shape keys (jawOpen, mouthClose, "
            "eyeBlinkLeft, …), edit the channel mapping, or click 'Add demo head'.")
