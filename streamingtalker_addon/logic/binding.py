"""Map model channels to a mesh's shape keys (pure logic; no bpy).

Names are matched with :func:`inference_core.shared.channels.normalise_name`, so
``jawOpen``, ``JawOpen`` and ``jaw_open`` bind alike. The result is a list the
user can edit in the panel; channels without a key are reported, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..client.core import normalise_name


@dataclass
class Binding:
    #: (channel index, channel name, shape key name) for every bound channel.
    pairs: list[tuple[int, str, str]] = field(default_factory=list)
    #: Model channels with no shape key.
    unmapped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.pairs)

    def summary(self, total: int) -> str:
        text = f"{len(self.pairs)}/{total} channels bound"
        if self.unmapped:
            shown = ", ".join(self.unmapped[:6]) + (" …" if len(self.unmapped) > 6 else "")
            text += f"; unmapped: {shown}"
        return text


def auto_bind(channels: Sequence[str], shape_keys: Iterable[str]) -> Binding:
    """Bind each channel to the shape key whose normalised name equals its own."""
    by_norm: dict[str, str] = {}
    for name in shape_keys:
        by_norm.setdefault(normalise_name(name), name)
    out = Binding()
    for i, ch in enumerate(channels):
        key = by_norm.get(normalise_name(ch))
        if key is None:
            out.unmapped.append(ch)
        else:
            out.pairs.append((i, ch, key))
    return out


def explicit_bind(channels: Sequence[str], mapping: Iterable[tuple[str, str, bool]],
                  shape_keys: Iterable[str]) -> Binding:
    """Bind from the user's edited list of (channel, shape key, enabled) rows.

    Rows naming a channel the model lacks or a key the mesh lacks are ignored
    (the channel is reported unmapped), so a stale list never writes to the
    wrong curve.
    """
    keys = set(shape_keys)
    index = {ch: i for i, ch in enumerate(channels)}
    chosen: dict[str, str] = {}
    for ch, key, enabled in mapping:
        if enabled and ch in index and key in keys:
            chosen[ch] = key
    out = Binding()
    for i, ch in enumerate(channels):
        if ch in chosen:
            out.pairs.append((i, ch, chosen[ch]))
        else:
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
