"""StreamingTalker for Blender: speech → facial animation on ARKit shape keys.

Blender side only (no torch): the model runs in a separate Python started by
the add-on (see :mod:`.runtime`). Works as an extension (``bl_ext.<repo>.streamingtalker``)
and as a plain add-on from a checkout; nothing here hard-codes the module name.
"""

from __future__ import annotations

import importlib
from typing import Any

bl_info = {  # read only by Blender < 4.2 style loaders; the manifest is authoritative
    "name": "StreamingTalker",
    "author": "StreamingTalker contributors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D View > Sidebar > StreamingTalker",
    "description": "Speech-driven facial animation with a streaming diffusion model",
    "category": "Animation",
}


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return None


def _modules() -> list[Any]:
    from . import operators, panel, prefs, props

    return [props, prefs, operators, panel]


def register() -> None:
    import bpy

    from . import props

    props.register()
    for mod in _modules()[1:]:
        for cls in mod.CLASSES:
            bpy.utils.register_class(cls)
    flame = _optional("flame_ops")
    if flame is not None and hasattr(flame, "register"):
        flame.register()


def unregister() -> None:
    import bpy

    from . import jobs, props, runtime

    flame = _optional("flame_ops")
    if flame is not None and hasattr(flame, "unregister"):
        flame.unregister()
    job = jobs.CURRENT
    if job is not None:
        job.cancel()
        jobs.CURRENT = None
    runtime.SERVER.shutdown()
    for mod in reversed(_modules()[1:]):
        for cls in reversed(mod.CLASSES):
            bpy.utils.unregister_class(cls)
    props.unregister()
