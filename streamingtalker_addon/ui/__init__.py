"""The add-on's UI: properties, preferences, panel and operators, and the one list to register.

* :mod:`.props` — scene/object settings (generation defaults and ranges from the core's
  ``SessionOptions``/``LIMITS``), and the plain values built from them for jobs.
* :mod:`.prefs` — preferences (optional runtime Python, device, model).
* :mod:`.operators` — generate, live, follow playback, stop, demo head, FBX.
* :mod:`.preset_ops` — retarget presets: choose one per mesh, fill the mapping list, save/load files.
* :mod:`.runtime_ops` — *Set up runtime* and *Test connection*.
* :mod:`.panel` — the sidebar tab; it draws state and starts nothing itself.
* :mod:`.reporting` — the one way an operator reports an error or an outcome.
"""

from __future__ import annotations

from typing import Any


def classes() -> list[Any]:
    """Every bpy class of the add-on, in registration order (property groups first)."""
    from ..flame import operators as flame_ops
    from . import operators, panel, prefs, preset_ops, props, runtime_ops

    return [*props.CLASSES, flame_ops.STK_FlameSettings, *prefs.CLASSES, *operators.CLASSES,
            *preset_ops.CLASSES, *runtime_ops.CLASSES, *flame_ops.CLASSES[1:], *panel.CLASSES]


def pointers() -> list[tuple[Any, str, Any]]:
    """(bpy type, attribute, property group) pairs attached on register."""
    import bpy

    from ..flame import operators as flame_ops
    from . import props

    return [*props.POINTERS, (bpy.types.Scene, "stk_flame", flame_ops.STK_FlameSettings)]
