"""What a job is given, checked before anything starts: audio, target mesh, model card.

Everything the user chose arrives as plain values (:class:`AudioChoice`,
:class:`~..client.runtime.RuntimeSettings`, an options dict): jobs never read the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..blender import audio, preset_files, strips
from ..client.core import ARKIT_52, BridgeError, model_card
from ..client.runtime import RuntimeSettings, resolve_model
from ..logic import binding, retarget
from ..state import AddonState


class InputError(ValueError):
    """Bad user input (audio, mesh, settings); the message is for the user."""


@dataclass(frozen=True)
class AudioChoice:
    """Where the speech comes from: a file (keys from ``frame_start``) or a sound strip."""

    source: str = "FILE"  # FILE | STRIP
    file: str = ""        # absolute path
    strip_name: str = ""
    frame_start: int = 1


def scene_fps(scene: Any) -> float:
    return scene.render.fps / scene.render.fps_base


def refuse_if_busy(state: AddonState) -> None:
    job = state.busy()
    if job is not None:
        raise InputError(f"A {job.kind} job is running; press Stop first.")
    if state.settle():
        raise InputError("The last run is still stopping: the inference process has not confirmed yet "
                         "(one that stopped answering is ended after the stall timeout). Try again in a moment.")


def resolve_audio(scene: Any, choice: AudioChoice, sample_rate: int = 16000) -> tuple[np.ndarray, int, str]:
    """(pcm, start frame, path) for the chosen audio; raises AudioError/InputError."""
    fps = scene_fps(scene)
    if choice.source == "STRIP":
        strip = next((s for s in strips.all_strips(scene) if s.name == choice.strip_name), None)
        if strip is None:
            raise InputError(f"Sound strip '{choice.strip_name}' is not in the scene's sequencer."
                             if choice.strip_name else "Choose a sound strip.")
        if strip.type != "SOUND" or strip.sound is None:
            raise InputError(f"Strip '{strip.name}' is not a sound strip.")
        path = audio.sound_path(strip.sound)
        offset = (strip.frame_final_start - strip.frame_start) / fps + float(getattr(strip, "sound_offset", 0.0))
        pcm = audio.decode_file(path, sample_rate, start_s=offset, duration_s=strip.frame_final_duration / fps)
        return pcm, int(strip.frame_final_start), path
    if not choice.file:
        raise InputError("Choose an audio file.")
    return audio.decode_file(choice.file, sample_rate), int(choice.frame_start), choice.file


def ensure_sound_strip(scene: Any, path: str, frame_start: int) -> str:
    """Put the audio file in the sequencer at ``frame_start`` (once) so playback stays in sync.

    Returns a warning for the user where no strip can be made (Blender without
    Audaspace): the keys never depend on the strip, so that is not an error.
    """
    strip = strips.find_sound(scene, os.path.abspath(path), own_only=True)
    if strip is not None:
        strip.frame_start = frame_start
        return ""
    try:
        strips.add_sound(scene, Path(path).stem, path, frame_start)
    except strips.SoundStripError as exc:
        return str(exc)
    scene.sync_mode = "AUDIO_SYNC"
    return ""


def shape_key_names(obj: Any) -> list[str]:
    key = obj.data.shape_keys
    return [kb.name for kb in key.key_blocks if kb != key.reference_key] if key else []


def check_mesh(obj: Any) -> None:
    if obj is None:
        raise InputError("Choose a target mesh (or click 'Add demo head').")
    if obj.type != "MESH":
        raise InputError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh.")


def chosen_preset(obj: Any, key_names: list[str], channels: list[str]) -> tuple[retarget.Preset, binding.Binding]:
    """The mesh's saved preset choice, or (none, or its file is gone) the best one for its key names."""
    preset = preset_files.preset_by_id(obj.streamingtalker.preset) if obj.streamingtalker.preset else None
    if preset is not None:
        return preset, retarget.bind_preset(preset, channels, key_names)
    chosen, b = retarget.detect(preset_files.all_presets(), channels, key_names)
    if obj.streamingtalker.preset:
        b.notes.append(f"preset '{obj.streamingtalker.preset}' not found; chosen by key names")
    return chosen, b


def resolve_binding(obj: Any, channels: list[str], channel_space: str = "arkit") -> binding.Binding:
    """The channel → shape key binding of ``obj`` (its edited list, or its preset); InputError if none."""
    check_mesh(obj)
    names = shape_key_names(obj)
    settings = obj.streamingtalker
    if settings.use_mapping and len(settings.mapping):
        b = binding.explicit_bind(channels, mapping_rows(obj), names)
    else:
        b = chosen_preset(obj, names, channels)[1]
    if not b.ok:
        raise InputError(binding.refusal_message(obj.name, len(names), channel_space, len(obj.data.vertices)))
    return b


def fill_mapping(obj: Any, channels: list[str], preset: retarget.Preset | None = None) -> binding.Binding:
    """Fill the object's editable mapping list from a preset (default: its own choice), one row per term.

    Channels the preset leaves unmapped get an empty, disabled row for the user to fill.
    """
    names = shape_key_names(obj)
    b = retarget.bind_preset(preset, channels, names) if preset else chosen_preset(obj, names, channels)[1]
    rows = obj.streamingtalker.mapping
    rows.clear()
    for i, (_, ch, key) in enumerate(b.pairs):
        row = rows.add()
        row.channel, row.shape_key, row.weight, row.enabled = ch, key, b.weight(i), True
    for ch in b.unmapped:
        row = rows.add()
        row.channel, row.shape_key, row.weight, row.enabled = ch, "", 1.0, False
    return b


def mapping_rows(obj: Any) -> list[tuple[str, str, bool, float]]:
    return [(r.channel, r.shape_key, r.enabled, r.weight) for r in obj.streamingtalker.mapping]


def describe_binding(obj: Any, channels: list[str]) -> str:
    """One line for the panel: what drives the mesh (its edited list or its preset) and what it binds."""
    names = shape_key_names(obj)
    settings = obj.streamingtalker
    b = (binding.explicit_bind(channels, mapping_rows(obj), names) if settings.use_mapping and len(settings.mapping)
         else chosen_preset(obj, names, channels)[1])
    return b.summary(len(channels)) + "".join(f"; {n}" for n in b.notes)


def expected_card(state: AddonState, settings: RuntimeSettings) -> dict[str, Any]:
    """The configured model's card, read from its file header (no server needed).

    Lets a job refuse a bad mesh before anything starts, for ARKit and vertex-space
    models alike; falls back to the last card a server sent.
    """
    try:
        return dict(model_card.read_card_header(resolve_model(settings.model_path)))
    except (BridgeError, ValueError, OSError):
        return state.card or {"channels": list(ARKIT_52), "channel_space": "arkit"}


def precheck_target(obj: Any, card: dict[str, Any]) -> None:
    """Refuse a target the model cannot drive, before the server is asked for anything."""
    if card.get("channel_space", "arkit") != "vertex":
        resolve_binding(obj, list(card["channels"]))
    else:
        check_mesh(obj)
