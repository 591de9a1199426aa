"""The one Blender 4/5 shim for sequencer strips (bpy data access only).

Blender 5.0 renamed ``SequenceEditor.sequences``/``sequences_all`` to
``strips``/``strips_all``; 4.2–4.4 only have the old names. Everything in the
add-on that lists or adds strips goes through here.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

#: Custom property marking the sound strips this add-on added.
OWN_STRIP = "streamingtalker"


class SoundStripError(RuntimeError):
    """No sound strip could be added; the message is a warning for the user (the keys do not need one)."""


def all_strips_attr(ed: Any) -> str:
    """Name of the editor's collection of every strip (for ``prop_search`` in the panel)."""
    return "strips_all" if hasattr(ed, "strips_all") else "sequences_all"


def all_strips(scene: Any) -> Iterable[Any]:
    """Every strip of the scene, meta-strip contents included (nothing without an editor)."""
    ed = scene.sequence_editor
    return [] if ed is None else getattr(ed, all_strips_attr(ed))


def top_level(ed: Any) -> Any:
    """The editor's top-level strips collection (the one that has ``new_sound``/``remove``)."""
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def find_sound(scene: Any, path: str, own_only: bool = False) -> Any:
    """A sound strip of the scene that plays ``path`` (only the add-on's own with ``own_only``), or None."""
    import bpy

    for s in all_strips(scene):
        if s.type == "SOUND" and s.sound is not None and (not own_only or s.get(OWN_STRIP)) and \
                _same_file(bpy.path.abspath(s.sound.filepath), path):
            return s
    return None


def add_sound(scene: Any, name: str, path: str, frame_start: int) -> Any:
    """A new sound strip on a free channel above the others, marked as the add-on's.

    Raises :class:`SoundStripError` where Blender cannot make one, for example a
    build without Audaspace (the ``bpy`` 4.2 wheels), whose ``new_sound`` refuses.
    """
    import bpy

    if not getattr(bpy.app.build_options, "audaspace", True):
        raise SoundStripError("No sound strip was added: this Blender is built without audio support "
                              "(Audaspace), so the timeline plays without sound.")
    ed = scene.sequence_editor or scene.sequence_editor_create()
    channel = min(128, 1 + max((s.channel for s in all_strips(scene)), default=0))
    try:
        strip = top_level(ed).new_sound(name, path, channel, frame_start)
    except RuntimeError as exc:
        raise SoundStripError(f"No sound strip was added ({str(exc).strip()}).") from None
    strip[OWN_STRIP] = True
    return strip


def remove(scene: Any, strip: Any) -> None:
    """Remove a strip and, if nothing else uses it, its sound datablock."""
    import bpy

    if strip is None or scene.sequence_editor is None:
        return
    sound = strip.sound
    top_level(scene.sequence_editor).remove(strip)
    if sound is not None and sound.users == 0:
        bpy.data.sounds.remove(sound)
