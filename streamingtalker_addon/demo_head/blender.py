"""Blender glue for the demo head: the ICT FaceKit head as objects, ready to animate.

Kept thin on purpose: the data and how it is split and coloured live in numpy modules
(:mod:`.asset`, :mod:`.looks`, tested without Blender); here we only create the head mesh
with its ARKit-named shape keys, materials that read well in Workbench and EEVEE, and
the eyeballs (children whose gaze follows the ``eyeLook*`` keys through drivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..blender.camera import FACE_CENTRE_PROP, face_centre, setup_preview_camera
from ..blender.keyframes import data_path_for
from ..blender.shape_keys import write_shape_keys
from . import looks
from .asset import load_head

COLOUR_ATTRIBUTE = "Col"
#: custom property on the head: where the asset came from (and its licence)
SOURCE_PROP = "streamingtalker_demo_head"
#: how far the eyeballs turn at a gaze channel's full value (radians)
GAZE_PITCH, GAZE_YAW = 0.45, 0.5


@dataclass
class _Key:
    name: str
    offsets: np.ndarray
    slider_min: float = 0.0
    slider_max: float = 1.0


def _material(name: str) -> Any:
    import bpy

    full = f"StreamingTalker {name}"
    mat: Any = bpy.data.materials.get(full)
    if mat is None:
        mat = bpy.data.materials.new(full)
    colour = looks.MATERIAL_COLOURS[name]
    rough = looks.ROUGHNESS[name]
    mat.diffuse_color = colour
    mat.roughness = rough
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True  # 5.0 always uses nodes (and deprecates the flag)
    tree: Any = getattr(mat, "node_tree", None)
    bsdf = tree.nodes.get("Principled BSDF") if tree is not None else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = colour
        bsdf.inputs["Roughness"].default_value = rough
        if name == "Skin":  # the painted lips and brows live in the colour attribute
            attr = tree.nodes.get("StreamingTalker Paint") or tree.nodes.new("ShaderNodeAttribute")
            attr.name = "StreamingTalker Paint"
            attr.attribute_name = COLOUR_ATTRIBUTE
            attr.location = (bsdf.location.x - 300, bsdf.location.y)
            tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
            if "Subsurface Weight" in bsdf.inputs:  # a little light through the skin (EEVEE, Cycles)
                bsdf.inputs["Subsurface Weight"].default_value = 0.15
    return mat


def _mesh(name: str, data: looks.MeshData, paint: np.ndarray | None = None) -> Any:
    """Mesh with material slots and a face-corner colour attribute, written in bulk.

    Corner colours give soft painted edges on the skin and hard edges where the
    material changes (teeth, eyes), so Workbench's *Attribute* colour mode shows the
    same look as the materials do in EEVEE.
    """
    import bpy

    me: Any = bpy.data.meshes.new(name)
    me.vertices.add(len(data.vertices))
    me.vertices.foreach_set("co", np.ascontiguousarray(data.vertices, np.float32).ravel())
    me.loops.add(len(data.corners))
    me.loops.foreach_set("vertex_index", data.corners)
    me.polygons.add(len(data.sizes))
    me.polygons.foreach_set("loop_start", np.r_[0, np.cumsum(data.sizes)[:-1]].astype(np.int32))
    me.update(calc_edges=True)
    for n in data.names:
        me.materials.append(_material(n))
    me.polygons.foreach_set("material_index", data.materials)
    me.shade_smooth()
    corner_mat = np.repeat(data.materials, data.sizes)
    cols = np.array([looks.MATERIAL_COLOURS[n] for n in data.names], np.float32)[corner_mat]
    if paint is not None:
        skin = corner_mat == data.names.index("Skin")
        cols[skin] = paint[data.corners[skin]]
    attr: Any = me.color_attributes.new(COLOUR_ATTRIBUTE, "FLOAT_COLOR", "CORNER")
    attr.data.foreach_set("color", cols.ravel())
    me.color_attributes.active_color = attr
    me.color_attributes.render_color_index = int(me.color_attributes.active_color_index or 0)
    me.validate(verbose=False)
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
            t.data_path = data_path_for(key_name + side)
    pitch.expression = f"(down - up) * {GAZE_PITCH}"        # +X rotation lowers the gaze
    yaw.expression = f"(out - inn) * {GAZE_YAW * sign:.2f}"  # +Z turns the front towards +X


def add_demo_head(context: Any, name: str = "StreamingTalker Head",
                  location: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Any:
    """Create the demo head (mesh + Basis + its ARKit-named keys, eyeballs as children); returns the head."""
    import bpy

    asset = load_head()
    look = looks.build_look(asset)
    obj: Any = bpy.data.objects.new(name, _mesh(name, look.head, look.paint))
    obj.location = location
    coll = context.collection if getattr(context, "collection", None) is not None else context.scene.collection
    coll.objects.link(obj)
    me = obj.data
    if len(me.vertices) != len(look.head.vertices):  # validate() must not have changed the topology
        raise RuntimeError("demo head mesh lost vertices during validation")
    write_shape_keys(obj, [_Key(n, look.shapes[n]) for n in look.shapes])
    me.shape_keys.use_relative = True
    me.shape_keys.name = f"{name} Keys"
    obj[FACE_CENTRE_PROP] = [float(c) for c in look.face_centre]
    obj[SOURCE_PROP] = "ICT FaceKit head (MIT licence, USC Institute for Creative Technologies)"

    for eye in look.eyes:
        eobj: Any = bpy.data.objects.new(f"{name} {eye.name}", _mesh(f"{name} {eye.name}", eye.mesh))
        coll.objects.link(eobj)
        eobj.parent = obj
        eobj.location = tuple(float(c) for c in eye.centre)
        eobj.rotation_mode = "XYZ"
        _gaze_drivers(eobj, me.shape_keys, eye.side)

    for o in context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


__all__ = ["COLOUR_ATTRIBUTE", "add_demo_head", "face_centre", "setup_preview_camera"]
