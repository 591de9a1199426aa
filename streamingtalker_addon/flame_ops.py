"""FLAME heads and vertex-space models in Blender: import, bind (shape keys), panel section.

Thin bpy glue over :mod:`inference_core.flame` (numpy-only maths) and
:mod:`.flame_binding`. The main panel calls :func:`draw_panel`; the add-on's
``register()`` calls :func:`register` when this module is present.

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
from bpy.props import EnumProperty, IntProperty, PointerProperty, StringProperty
from . import flame_binding
from ._typing import OpResult

HEAD_NAME = "FLAME head"


# -- pure-ish helpers (bpy data access only) -------------------------------------------------
def rest_positions(obj: Any) -> np.ndarray:
    """The mesh's rest shape: the Basis key if it has shape keys, else its vertices."""
    me = obj.data
    n = len(me.vertices)
    co = np.empty(n * 3, np.float32)
    key = me.shape_keys
    if key is not None and key.reference_key is not None:
        key.reference_key.data.foreach_get("co", co)
    else:
        me.vertices.foreach_get("co", co)
    return co.reshape(n, 3).astype(np.float64)


def write_shape_keys(obj: Any, keys: list[Any]) -> int:
    """Create or overwrite shape keys (rest + offsets); other keys on the mesh are untouched."""
    if obj.data.shape_keys is None:
        obj.shape_key_add(name="Basis", from_mix=False)
    rest = rest_positions(obj)
    blocks = obj.data.shape_keys.key_blocks
    for k in keys:
        kb = blocks.get(k.name)
        if kb is None:
            kb = obj.shape_key_add(name=k.name, from_mix=False)
            kb.value = 0.0  # new keys start inactive (bpy 5.0 creates them at 1.0)
        kb.slider_min, kb.slider_max = max(-10.0, k.slider_min), min(10.0, k.slider_max)
        kb.data.foreach_set("co", (rest + k.offsets).astype(np.float32).ravel())
    # foreach_set does not tag the Key for re-evaluation: without this the viewport and
    # exporters keep showing the previous key shapes until something else changes
    obj.data.shape_keys.update_tag()
    obj.data.update()
    return len(keys)


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


def _target(context: Any) -> Any:
    st = getattr(context.scene, "streamingtalker", None)
    obj = context.active_object
    if (obj is None or obj.type != "MESH") and st is not None:
        obj = st.target
    return obj


def _load(path: str) -> Any:
    loader = flame_binding.flame("loader")
    return loader.load_flame(bpy.path.abspath(path))


# -- properties --------------------------------------------------------------------------------
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


# -- operators ---------------------------------------------------------------------------------
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
        loader = flame_binding.flame("loader")
        try:
            model = _load(self.filepath)
        except loader.FlameFileError as exc:
            self.report({"ERROR"}, f"Cannot use this FLAME file: {exc}")
            return {"CANCELLED"}
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


class STK_OT_flame_bind(bpy.types.Operator):
    """Create shape keys from the FLAME model on the selected FLAME-topology mesh"""

    bl_idname = "streamingtalker.flame_bind"
    bl_label = "Bind FLAME mesh"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        fs = context.scene.stk_flame
        obj = _target(context)
        loader, sk = flame_binding.flame("loader"), flame_binding.flame("shapekeys")
        if obj is None or obj.type != "MESH":
            self.report({"ERROR"}, "Select a FLAME-topology mesh (or import a FLAME head) first")
            return {"CANCELLED"}
        if not fs.model_path:
            self.report({"ERROR"}, "Choose your FLAME model file first")
            return {"CANCELLED"}
        try:
            model = _load(fs.model_path)
            rest = rest_positions(obj)
            if len(rest) != model.num_vertices:
                raise sk.TopologyError(f"'{obj.name}' has {len(rest)} vertices; a FLAME mesh has "
                                       f"{model.num_vertices}. Bind a FLAME-topology mesh")
            if fs.bind_mode == "FLAME":
                keys, rep = sk.flame_keys(model, rest, fs.n_expr)
                jaw = rep["jaw"]
                msg = (f"{len(keys)} FLAME keys; jaw linearised to {jaw['max'] * 1000:.2f} mm max over "
                       f"0-{jaw['theta_max']:.2f} rad")
            else:
                recipes = None
                if fs.recipe_path:
                    text = Path(bpy.path.abspath(fs.recipe_path)).read_text()
                    recipes = sk.recipes_from_json(json.loads(text))
                keys, rep = sk.arkit_keys(model, rest, recipes)
                worst = max((e["max"] for e in rep["errors"].values()), default=0.0)
                msg = (f"{len(keys)} ARKit keys (max linearisation error {worst * 1000:.2f} mm); "
                       f"{len(rep['skipped'])} channels have no FLAME recipe")
        except (loader.FlameFileError, sk.TopologyError, ValueError, OSError) as exc:
            fs.report = f"Error: {exc}"
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
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
        fs = context.scene.stk_flame
        obj = _target(context)
        if obj is None or obj.type != "MESH":
            self.report({"ERROR"}, "Select a mesh of the model's topology first")
            return {"CANCELLED"}
        path = fs.vertex_model_path
        if not path:
            from . import prefs
            path = prefs.settings(context).model_path
        if not path:
            self.report({"ERROR"}, "Choose a vertex-space model file")
            return {"CANCELLED"}
        sk = flame_binding.flame("shapekeys")
        try:
            basis, template, card = flame_binding.read_vertex_basis(bpy.path.abspath(path))
            keys, frame = flame_binding.basis_keys(basis, template, list(card["channels"]), rest_positions(obj))
        except (flame_binding.VertexModelError, sk.TopologyError, OSError) as exc:
            fs.report = f"Error: {exc}"
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        write_shape_keys(obj, keys)
        _remember_card(context, path, card)
        fs.report = f"{len(keys)} basis keys from {Path(path).name}"
        self.report({"INFO"}, fs.report)
        return {"FINISHED"}


def _remember_card(context: Any, path: str, card: dict[str, Any]) -> None:
    """If this is the model generation will use, let the add-on know its card before the
    server's hello (its pre-flight binding check otherwise assumes ARKit channels)."""
    from . import jobs, prefs
    model = prefs.settings(context).model_path
    try:
        same = bool(model) and Path(bpy.path.abspath(model)).resolve() == Path(bpy.path.abspath(path)).resolve()
    except OSError:
        same = False
    if same and not jobs.LAST_CARD:
        jobs.LAST_CARD.update(card)


def draw_panel(layout: Any, context: Any) -> None:
    """The FLAME section of the main StreamingTalker panel."""
    fs = getattr(context.scene, "stk_flame", None)
    if fs is None:
        return
    layout.label(text="FLAME", icon="USER")
    col = layout.column(align=True)
    col.operator(STK_OT_flame_import.bl_idname, icon="IMPORT")
    col.prop(fs, "model_path")
    row = col.row(align=True)
    row.prop(fs, "bind_mode", expand=True)
    if fs.bind_mode == "FLAME":
        col.prop(fs, "n_expr")
    else:
        col.prop(fs, "recipe_path")
    col.operator(STK_OT_flame_bind.bl_idname, icon="SHAPEKEY_DATA")
    col.separator()
    col.prop(fs, "vertex_model_path")
    col.operator(STK_OT_flame_bind_vertex_model.bl_idname, icon="MESH_DATA")
    if fs.report:
        layout.label(text=fs.report[:120], icon="ERROR" if fs.report.startswith("Error") else "INFO")


CLASSES = (STK_FlameSettings, STK_OT_flame_import, STK_OT_flame_bind, STK_OT_flame_bind_vertex_model)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.stk_flame = PointerProperty(type=STK_FlameSettings)  # type: ignore[attr-defined]


def unregister() -> None:
    if hasattr(bpy.types.Scene, "stk_flame"):
        del bpy.types.Scene.stk_flame  # type: ignore[attr-defined]
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
