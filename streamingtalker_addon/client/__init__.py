"""The add-on's side of the bridge, with no bpy: talking to the inference process.

* :mod:`.core` — the one loader of ``inference_core`` (the copy bundled in the
  extension, else a checkout's) and its stdlib/numpy-only modules, typed.
* :mod:`.driver` — one streaming or live session over the bridge as a
  non-blocking state machine (stepped by a timer in the UI, by a loop in
  background mode).
* :mod:`.runtime` — which Python runs the server (Blender's own with the
  bundled ONNX Runtime wheel, or a torch runtime), and the one long-lived
  server process; :mod:`.setup` creates the optional torch venv.

Nothing here touches Blender data, so all of it runs (and is tested) outside
Blender; the ``blender``/``jobs``/``ui`` packages call into it.
"""
