"""The demo head: the ICT FaceKit head with its 53 ARKit-named expressions, built in one click.

Pure data first, Blender last (numpy only, except :mod:`.blender`):

* :mod:`.asset` — decodes ``ict_face.npz`` (written by ``scripts/build_demo_head_asset.py`` from
  the ICT FaceKit head; MIT licence, ``LICENSE-ICT-FaceKit.txt`` beside it).
* :mod:`.looks` — the head mesh and the two eyeballs split apart, materials, painted lips and brows.
* :mod:`.blender` — objects, materials, shape keys and the gaze drivers (bpy).
"""
