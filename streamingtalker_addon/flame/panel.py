"""The FLAME section of the main StreamingTalker panel."""

from __future__ import annotations

from typing import Any


def draw_panel(layout: Any, context: Any) -> None:
    fs = getattr(context.scene, "stk_flame", None)
    if fs is None:
        return
    layout.label(text="FLAME", icon="USER")
    col = layout.column(align=True)
    col.operator("streamingtalker.flame_import", icon="IMPORT")
    col.prop(fs, "model_path")
    row = col.row(align=True)
    row.prop(fs, "bind_mode", expand=True)
    if fs.bind_mode == "FLAME":
        col.prop(fs, "n_expr")
    else:
        col.prop(fs, "recipe_path")
    col.operator("streamingtalker.flame_bind", icon="SHAPEKEY_DATA")
    col.separator()
    col.prop(fs, "vertex_model_path")
    col.operator("streamingtalker.bind_vertex_model", icon="MESH_DATA")
    if fs.report:
        layout.label(text=fs.report[:120], icon="ERROR" if fs.report.startswith("Error") else "INFO")
