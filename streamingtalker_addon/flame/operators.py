"""FLAME heads and vertex-space models in Blender: import a head, bind shape keys.

Thin bpy glue over the core's numpy-only :mod:`inference_core.flame` (safe loading,
forward pass, key construction) and :mod:`..logic.vertex_basis`; keys are written by
the add-on's one shape-key writer.

Mesh data stay in FLAME's own frame (metres, Y up); the imported object is rotated
90° about X so the head stands upright in Blender's Z-up world. Keys built on a mesh
stored in another frame are mapped through a fitted similarity transform.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import EnumProperty, IntProperty, StringProperty

from .._typing import OpResult
from ..blender.shape_keys import rest_positions, write_shape_keys
from ..client.core import flame_isolated, flame_loader, shapekeys
from ..logic.vertex_basis import TopologyError, VertexModelError, basis_keys, read_vertex_basis
from ..ui.prefs import runtime_settings
from ..ui.reporting import fail

HEAD_NAME = "FLAME head"


def create_head(context: Any, model: Any, name: str = HEAD_NAME) -> Any:
    """A mesh object with the FLAME template (identity shape), smooth shaded, with a Basis key."""
    me = bpy.data.meshes.new(name)
    me.from_pydata(model.v_template.astype(np.float32).tolist(), [], model.faces.tolist())
    me.update()
    if hasattr(me, "shade_smooth"):  # Blender 4.1+
        me.shade_smooth()
    obj = bpy.data.objects.new(name, me)
    context.scene.collection.objects.link(obj)
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.shape_key_add(name="Basis", from_mix=False)
    obj["flame_model"] = model.source
    return obj


def _target_mesh(context: Any) -> Any:
    """The active mesh, else the panel's target mesh, else None."""
    st = getattr(context.scene, "streamingtalker", None)
    obj = context.active_object
    if (obj is None or obj.type != "MESH") and st is not None:
        obj = st.target
    return obj if obj is not None and obj.type == "MESH" else None


def _load(path: str) -> Any:
    """The user's FLAME file, parsed in a child process: a hostile file cannot crash Blender."""
    return flame_isolated.load_isolated(bpy.path.abspath(path))


class STK_FlameSettings(bpy.types.PropertyGroup):
    model_path: StringProperty(name="FLAME model", subtype="FILE_PATH",
                               description="Your FLAME model file (.pkl or .npz; licensed, not shipped)")  # type: ignore[valid-type]
    bind_mode: EnumProperty(name="Keys", items=[
        ("FLAME", "FLAME", "Expression components (FLAME_exp_###) + linearised jaw (FLAME_jaw_open)"),
        ("ARKIT", "ARKit", "ARKit-named keys built from FLAME (jaw, eyes, eyelids; more with a recipe file)"),
    ], default="ARKIT")  # type: ignore[valid-type]
    n_expr: IntProperty(name="Expression keys", default=50, min=1, max=100)  # type: ignore[valid-type]
    recipe_path: StringProperty(name="ARKit recipe", subtype="FILE_PATH",
                                description="Optional JSON of ARKit channel -> FLAME expression/jaw/eye parameters")  # type: ignore[valid-type]
    vertex_model_path: StringProperty(name="Vertex model", subtype="FILE_PATH",
                                      description="Vertex-space checkpoint (.safetensors); empty = the add-on's model file")  # type: ignore[valid-type]
    report: StringProperty(name="Last result")  # type: ignore[valid-type]


class STK_OT_flame_import(bpy.types.Operator):
    """Create a FLAME head (identity shape) from your FLAME model file"""

    bl_idname = "streamingtalker.flame_import"
    bl_label = "Import FLAME head"
    bl_options = {"REGISTER", "UNDO"}
    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.pkl;*.npz", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: Any, event: Any) -> OpResult:
        fs = getattr(context.scene, "stk_flame", None)
        if not self.filepath and fs is not None and fs.model_path:
            self.filepath = bpy.path.abspath(fs.model_path)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: Any) -> OpResult:
        try:
            model = _load(self.filepath)
        except flame_loader.FlameFileError as exc:
            return fail(self, f"Cannot use this FLAME file: {exc}")
        obj = create_head(context, model)
        for o in context.selected_objects:
            o.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        context.scene.stk_flame.model_path = self.filepath
        st = getattr(context.scene, "streamingtalker", None)
        if st is not None:
            st.target = obj
        self.report({"INFO"}, f"Imported '{obj.name}' ({model.num_vertices} vertices)")
        return {"FINISHED"}


def _flame_keys(fs: Any, model: Any, rest: np.ndarray) -> tuple[list[Any], str]:
    """The keys of the chosen kind for a FLAME-topology rest shape, and a line saying what they are."""
    if fs.bind_mode == "FLAME":
        keys, rep = shapekeys.flame_keys(model, rest, fs.n_expr)
        jaw = rep["jaw"]
        return keys, (f"{len(keys)} FLAME keys; jaw linearised to {jaw['max'] * 1000:.2f} mm max over "
                      f"0-{jaw['theta_max']:.2f} rad")
    recipes = None
    if fs.recipe_path:
        text = Path(bpy.path.abspath(fs.recipe_path)).read_text()
        recipes = shapekeys.recipes_from_json(json.loads(text))
    keys, rep = shapekeys.arkit_keys(model, rest, recipes)
    worst = max((e["max"] for e in rep["errors"].values()), default=0.0)
    return keys, (f"{len(keys)} ARKit keys (max linearisation error {worst * 1000:.2f} mm); "
                  f"{len(rep['skipped'])} channels have no FLAME recipe")


class STK_OT_flame_bind(bpy.types.Operator):
    """Create shape keys from the FLAME model on the selected FLAME-topology mesh"""

    bl_idname = "streamingtalker.flame_bind"
    bl_label = "Bind FLAME mesh"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        fs, obj = context.scene.stk_flame, _target_mesh(context)
        if obj is None or not fs.model_path:
            return fail(self, "Choose your FLAME model file first" if obj else
                        "Select a FLAME-topology mesh (or import a FLAME head) first")
        try:
            model = _load(fs.model_path)
            rest = rest_positions(obj)
            if len(rest) != model.num_vertices:
                raise TopologyError(f"'{obj.name}' has {len(rest)} vertices; a FLAME mesh has "
                                    f"{model.num_vertices}. Bind a FLAME-topology mesh")
            keys, msg = _flame_keys(fs, model, rest)
        except (flame_loader.FlameFileError, TopologyError, ValueError, OSError) as exc:
            return fail(self, exc, fs, "report")
        write_shape_keys(obj, keys)
        fs.report = msg
        self.report({"INFO"}, msg)
        return {"FINISHED"}


class STK_OT_flame_bind_vertex_model(bpy.types.Operator):
    """Create one shape key per basis component of a vertex-space model (named as its channels)"""

    bl_idname = "streamingtalker.bind_vertex_model"
    bl_label = "Bind vertex-space model"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        fs, obj = context.scene.stk_flame, _target_mesh(context)
        path = bpy.path.abspath(fs.vertex_model_path) if fs.vertex_model_path else runtime_settings(context).model_path
        if obj is None or not path:
            return fail(self, "Choose a vertex-space model file" if obj else
                        "Select a mesh of the model's topology first")
        try:
            basis, template, card = read_vertex_basis(path)
            keys, _ = basis_keys(basis, template, list(card["channels"]), rest_positions(obj))
        except (VertexModelError, TopologyError, OSError) as exc:
            return fail(self, exc, fs, "report")
        write_shape_keys(obj, keys)
        fs.report = f"{len(keys)} basis keys from {Path(path).name}"
        self.report({"INFO"}, fs.report)
        return {"FINISHED"}


CLASSES = (STK_FlameSettings, STK_OT_flame_import, STK_OT_flame_bind, STK_OT_flame_bind_vertex_model)
