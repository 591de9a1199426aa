"""Blender glue for the demo head: turns :mod:`.geometry` data into objects.

Kept thin on purpose: every shape and deformation lives in the numpy module (tested
without Blender); here we only create the mesh, its 52 ARKit shape keys, materials
that read well in Workbench and EEVEE, the eyeballs (children whose gaze follows the
``eyeLook*`` keys through drivers); :func:`setup_preview_camera` frames the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..blender.camera import face_centre, setup_preview_camera
from ..blender.shape_keys import write_shape_keys
from . import geometry as head_geometry

@dataclass
class _Key:
    name: str
    offsets: np.ndarray
    slider_min: float = 0.0
    slider_max: float = 1.0


_ROUGHNESS = {"Skin": 0.55, "MouthInside": 0.6, "Teeth": 0.25, "EyeSocket": 0.6,
              "Sclera": 0.15, "Iris": 0.1, "Pupil": 0.05}
COLOUR_ATTRIBUTE = "Col"


def _material(name: str) -> Any:
    import bpy

    full = f"StreamingTalker {name}"
    mat: Any = bpy.data.materials.get(full)
    if mat is None:
        mat = bpy.data.materials.new(full)
    colour = head_geometry.MATERIAL_COLOURS[name]
    rough = _ROUGHNESS[name]
    mat.diffuse_color = colour
    mat.roughness = rough
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True  # 5.0 always uses nodes (and deprecates the flag)
    tree: Any = getattr(mat, "node_tree", None)
    bsdf = tree.nodes.get("Principled BSDF") if tree is not None else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = rough
        if name == "Skin":  # the painted lips, brows and hair live in the colour attribute
            attr = tree.nodes.get("StreamingTalker Paint") or tree.nodes.new("ShaderNodeAttribute")
            attr.name = "StreamingTalker Paint"
            attr.attribute_name = COLOUR_ATTRIBUTE
            attr.location = (bsdf.location.x - 300, bsdf.location.y)
            tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _mesh(name: str, verts: np.ndarray, faces: list, mats: np.ndarray, names: tuple[str, ...],
          paint: np.ndarray | None = None) -> Any:
    """Mesh with material slots and a face-corner colour attribute.

    Corner colours give soft painted edges on the skin (vertex paint) and hard edges
    where the material changes (teeth, eyes), so Workbench's *Attribute* colour mode
    shows the same look as the materials do in EEVEE.
    """
    import bpy

    me = bpy.data.meshes.new(name)
    me.from_pydata(verts.astype(float).tolist(), [], [list(f) for f in faces])
    for n in names:
        me.materials.append(_material(n))
    me.polygons.foreach_set("material_index", np.asarray(mats, np.int32))
    me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), bool))
    me.validate(verbose=False)
    corner_vert = np.empty(len(me.loops), np.int32)
    me.loops.foreach_get("vertex_index", corner_vert)
    loop_total = np.empty(len(me.polygons), np.int32)
    me.polygons.foreach_get("loop_total", loop_total)
    corner_mat = np.repeat(np.asarray(mats, np.int32), loop_total)
    flat = np.array([head_geometry.MATERIAL_COLOURS[n] for n in names], np.float32)
    cols = flat[corner_mat]
    if paint is not None:
        skin = corner_mat == names.index("Skin")
        cols[skin] = paint[corner_vert[skin]]
    attr: Any = me.color_attributes.new(COLOUR_ATTRIBUTE, "FLOAT_COLOR", "CORNER")
    attr.data.foreach_set("color", cols.ravel())
    me.color_attributes.active_color = attr
    me.color_attributes.render_color_index = int(me.color_attributes.active_color_index or 0)
    me.update()
    return me


def _gaze_drivers(eye: Any, key: Any, side: str) -> None:
    """Eyeball rotation follows the eyeLook* shape keys (the model animates those keys)."""
    sign = 1.0 if side == "Left" else -1.0
    pitch = eye.driver_add("rotation_euler", 0).driver
    yaw = eye.driver_add("rotation_euler", 2).driver
    for drv, terms in ((pitch, (("up", "eyeLookUp"), ("down", "eyeLookDown"))),
                       (yaw, (("out", "eyeLookOut"), ("inn", "eyeLookIn")))):
        drv.type = "SCRIPTED"
        for var_name, key_name in terms:
            v = drv.variables.new()
            v.name = var_name
            v.type = "SINGLE_PROP"
            t = v.targets[0]
            t.id_type = "KEY"
            t.id = key
            t.data_path = f'key_blocks["{key_name}{side}"].value'
    pitch.expression = "(down - up) * 0.45"          # radians; +X rotation lowers the gaze
    yaw.expression = f"(out - inn) * {0.5 * sign:.2f}"  # +Z turns the front towards +X


def add_demo_head(context: Any, name: str = "StreamingTalker Head",
                  location: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Any:
    """Create the demo head (mesh + Basis + 52 ARKit keys, eyeballs as children); returns the head."""
    import bpy

    data = head_geometry.build_head()
    me = _mesh(name, data.vertices, data.faces, data.face_materials, data.materials, data.colours)
    obj = bpy.data.objects.new(name, me)
    obj.location = location
    coll = context.collection if getattr(context, "collection", None) is not None else context.scene.collection
    coll.objects.link(obj)

    basis = obj.shape_key_add(name="Basis", from_mix=False)
    base = data.vertices.astype(np.float32)
    if len(me.vertices) != len(base):  # validate() must not have changed the topology
        raise RuntimeError("demo head mesh lost vertices during validation")
    basis.data.foreach_set("co", base.ravel())
    write_shape_keys(obj, [_Key(n, data.shape_keys[n]) for n in head_geometry.ARKIT_52])
    me.shape_keys.use_relative = True
    me.shape_keys.name = f"{name} Keys"

    for group, (idx, w) in data.vertex_groups.items():
        vg = obj.vertex_groups.new(name=group)
        for i, wi in zip(idx.tolist(), w.tolist()):
            vg.add([i], wi, "REPLACE")
    for lm, vi in data.landmarks.items():  # single-vertex groups so scripts can find landmarks
        obj.vertex_groups.new(name=f"lm_{lm}").add([int(vi)], 1.0, "REPLACE")

    for eye in data.eyes:
        side = "Left" if eye.centre[0] > 0 else "Right"
        eme = _mesh(f"{name} {eye.name}", eye.vertices, eye.faces, eye.face_materials,
                    head_geometry.EYE_MATERIALS)
        eobj = bpy.data.objects.new(f"{name} {eye.name}", eme)
        coll.objects.link(eobj)
        eobj.parent = obj
        eobj.location = tuple(float(c) for c in eye.centre)
        eobj.rotation_mode = "XYZ"
        _gaze_drivers(eobj, me.shape_keys, side)

    for o in context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


__all__ = ["COLOUR_ATTRIBUTE", "add_demo_head", "face_centre", "setup_preview_camera"]
