"""The demo head: a procedural face with the 52 ARKit shape keys, built in one click.

Pure data first, Blender last (numpy only, except :mod:`.blender`):

* :mod:`.design` — dimensions, materials, and the data classes the head is built into.
* :mod:`.fields` — the signed-distance sculpt, ray casting, smooth falloffs.
* :mod:`.topology` — the quad grid with mouth and eye slits, vertices named by keys.
* :mod:`.geometry` — :func:`~.geometry.build_head`: grid cast onto the sculpt, pockets, labels.
* :mod:`.expressions`, :mod:`.eye_keys` — the shape keys as displacement fields.
* :mod:`.looks` — normals, eyeballs, skin paint.
* :mod:`.blender` — objects, materials, gaze drivers and the preview camera (bpy).
"""
