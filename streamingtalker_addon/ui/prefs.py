"""Add-on preferences: runtime (optional), device, model; the runtime in use and the model card."""

from __future__ import annotations

import json
from typing import Any

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from .. import state
from ..client.runtime import BUILTIN, RuntimeSettings, venv_python

#: The add-on's module name (``bl_ext.<repo>.streamingtalker`` as an extension).
ADDON_ID = (__package__ or "streamingtalker_addon.ui").rpartition(".")[0]


def preferences(context: Any) -> Any:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def runtime_settings(context: Any = None) -> RuntimeSettings:
    """Plain copy of the preferences, paths made absolute (the defaults when not enabled as such)."""
    p = preferences(context or bpy.context)
    if p is None:
        return RuntimeSettings()
    return RuntimeSettings(bpy.path.abspath(p.python_path) if p.python_path else "", p.device.lower(),
                           bpy.path.abspath(p.model_path) if p.model_path else "", p.threads, p.stall_timeout)


def _draw_card(col: Any, text: str) -> None:
    try:
        card = json.loads(text)
    except ValueError:
        return
    box = col.box()
    box.label(text=f"Model: {card.get('name')}  {card.get('fps')} fps  "
                   f"{len(card.get('channels', []))} {card.get('channel_space', 'arkit')} channels")
    box.label(text=f"Look-ahead {card.get('lookahead_ms')} ms, styles: "
                   f"{', '.join(map(str, card.get('styles', [])))}")


class STK_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Runtime Python", subtype="FILE_PATH",
        description="Optional Python (with torch, for CUDA or training) that runs the model; empty = "
                    "Blender's own Python with the bundled ONNX Runtime, else the runtime made by "
                    "'Set up runtime'")  # type: ignore[valid-type]
    device: EnumProperty(name="Device", items=[("CPU", "CPU", ""), ("CUDA", "CUDA", "NVIDIA GPU (needs a torch "
                                                                                  "runtime)")],
                         default="CPU")  # type: ignore[valid-type]
    model_path: StringProperty(name="Model file", subtype="FILE_PATH",
                               description="Checkpoint (.safetensors); empty = the bundled model")  # type: ignore[valid-type]
    threads: IntProperty(name="CPU threads", default=0, min=0, max=64,
                         description="0 = the runtime's default")  # type: ignore[valid-type]
    stall_timeout: FloatProperty(name="Timeout (s)", default=30.0, min=1.0, max=600.0,
                                 description="Give up on a runtime that sends nothing for this long")  # type: ignore[valid-type]
    status: StringProperty(default="")  # type: ignore[valid-type]
    model_card: StringProperty(default="")  # type: ignore[valid-type]

    def draw(self, context: Any) -> None:
        layout = self.layout
        assert layout is not None
        st = state.get()
        col = layout.column()
        col.prop(self, "python_path")
        if not self.python_path:
            venv = venv_python(st.venv_dir)
            col.label(text=f"Default: {BUILTIN}" + (f"; torch runtime {venv}" if venv.is_file() else ""),
                      icon="INFO")
        row = col.row(align=True)
        row.operator("streamingtalker.setup_runtime", icon="CONSOLE")
        row.operator("streamingtalker.test_connection", icon="PLUGIN")
        col.prop(self, "device")
        col.prop(self, "model_path")
        col.prop(self, "threads")
        col.prop(self, "stall_timeout")
        job = st.setup
        if job is not None and job.status == "running":
            col.progress(factor=job.progress, text=f"{job.title}… {job.last_line[:60]}")
        for line in st.runtime_lines()[:3]:
            col.label(text=line[:160], icon="SETTINGS")
        if self.status:
            for line in self.status.splitlines()[:6]:
                col.label(text=line)
        if self.model_card:
            _draw_card(col, self.model_card)


CLASSES = (STK_AddonPreferences,)
