"""StreamingTalker for Blender: speech → facial animation on ARKit shape keys.

Blender side only (no torch): the model runs in a child process the add-on starts,
by default with Blender's own Python and the bundled ONNX Runtime wheel. Works as
an extension (``bl_ext.<repo>.streamingtalker``) and as a plain add-on from a
checkout; nothing here hard-codes the module name.

Layers, each a package (lower ones never import higher ones):

* ``client/`` and ``logic/`` — no bpy: the bridge to the inference process (the one
  loader of ``inference_core``, the streaming/live drivers, which Python runs the
  server) and the pure logic (binding, frame-rate resampling, audio checks,
  vertex-basis maths).
* ``blender/`` — bpy glue: keyframe writer, takes (names, NLA, thinning), shape-key
  writer, strips shim, audio decoding with ``aud``, FBX export, preview render, preset files.
* ``jobs/`` — generation, live and follow-playback jobs, stepped on the main thread.
* ``ui/`` and ``flame/`` — properties, preferences, panel, operators.
* ``demo_head/`` — the demo head, the ICT FaceKit head (MIT) from a compact asset (numpy + its bpy glue).
* ``state.py`` — :class:`~.state.AddonState`, the one owner of the server, the
  running job and the last model card, created here in :func:`register`.
* ``bake.py`` — the headless entry point (``python -m streamingtalker_addon.bake``): many
  lines onto one character through the same jobs, writer and exporter; at the top, beside
  :func:`register`, because it drives every layer.
"""

from __future__ import annotations

bl_info = {  # read only by Blender < 4.2 style loaders; the manifest is authoritative
    "name": "StreamingTalker",
    "author": "StreamingTalker contributors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D View > Sidebar > StreamingTalker",
    "description": "Speech-driven facial animation with a streaming diffusion model",
    "category": "Animation",
}


def register() -> None:
    import bpy

    from . import state, ui
    from .blender.user_data import user_dir

    for cls in ui.classes():
        bpy.utils.register_class(cls)
    for owner, attr, group in ui.pointers():
        setattr(owner, attr, bpy.props.PointerProperty(type=group))
    state.start(user_dir())


def unregister() -> None:
    import bpy

    from . import state, ui

    state.stop()
    for owner, attr, _ in reversed(ui.pointers()):
        if hasattr(owner, attr):
            delattr(owner, attr)
    for cls in reversed(ui.classes()):
        bpy.utils.unregister_class(cls)
