"""FLAME-topology heads and vertex-space models in Blender (UI level: operators, properties, panel).

* :mod:`.operators` — import a FLAME head from the user's licensed model file, bind
  FLAME or ARKit shape keys on a FLAME-topology mesh, bind a vertex-space model's basis.
* :mod:`.panel` — the FLAME section the main panel draws.

The maths is the core's numpy-only ``inference_core.flame`` and :mod:`..logic.vertex_basis`.
"""
