"""The 3D View sidebar tab *StreamingTalker* (draws state; runs nothing itself)."""

from __future__ import annotations

from typing import Any

import bpy

from .. import state
from ..blender import preset_files, strips
from ..client.core import ARKIT_52
from ..flame.panel import draw_panel as draw_flame
from ..jobs import inputs


class STK_UL_mapping(bpy.types.UIList):
    bl_idname = "STK_UL_mapping"

    def draw_item(self, context: Any, layout: Any, data: Any, item: Any, icon: Any, active_data: Any,
                  active_property: Any, index: Any = 0, flt_flag: Any = 0) -> None:
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=item.channel)
        obj = data.id_data
        key = obj.data.shape_keys if obj and obj.type == "MESH" else None
        if key is not None:
            row.prop_search(item, "shape_key", key, "key_blocks", text="")
        else:
            row.prop(item, "shape_key", text="")
        sub = row.row(align=True)
        sub.ui_units_x = 3
        sub.prop(item, "weight", text="")


class _Sidebar(bpy.types.Panel):
    """Where the add-on's panels live: the 3D View's sidebar (N), tab StreamingTalker."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "StreamingTalker"


class STK_PT_main(_Sidebar):
    bl_idname = "STK_PT_main"
    bl_label = "StreamingTalker"

    def draw(self, context: Any) -> None:
        layout = self.layout
        assert layout is not None
        props = context.scene.streamingtalker
        st = state.get()
        running = st.job is not None
        col = layout.column()
        col.enabled = not running
        col.prop(props, "target")
        col.operator("streamingtalker.add_demo_head", icon="USER")
        col.separator()
        col.prop(props, "audio_source", expand=True)
        if props.audio_source == "FILE":
            col.prop(props, "audio_file")
            col.prop(props, "frame_start")
            col.prop(props, "add_strip")
        else:
            sed = context.scene.sequence_editor
            if sed is not None:
                col.prop_search(props, "strip_name", sed, strips.all_strips_attr(sed), text="Strip")
            else:
                col.label(text="The scene has no sound strips", icon="INFO")
        sub = col.column(align=True)
        sub.prop(props, "intensity")
        art = sub.row(align=True)
        art.active = not st.card or bool(st.card.get("articulation"))  # greyed: this model has no gains
        art.prop(props, "articulation")
        pho = sub.row(align=True)
        pho.active = not st.card or bool(st.card.get("phonetic_gain"))  # greyed: this model has no phonetic gain
        pho.prop(props, "phonetic")
        sub.prop(props, "smoothing")
        sub.prop(props, "seed")
        sub.prop(props, "use_model_defaults")
        sampling = sub.column(align=True)
        sampling.enabled = not props.use_model_defaults
        sampling.prop(props, "steps")
        sampling.prop(props, "guidance")
        sampling.prop(props, "temperature")
        row = sampling.row(align=True)
        row.prop(props, "use_temperature_upper")
        sub_t = row.row(align=True)
        sub_t.enabled = props.use_temperature_upper
        sub_t.prop(props, "temperature_upper", text="")
        sub_s = sampling.row(align=True)
        sub_s.enabled = props.use_temperature_upper
        sub_s.prop(props, "steps_upper")
        row = sub.row(align=True)
        row.prop(props, "use_model_style")
        styles = st.card.get("styles") or []
        if props.use_model_style:
            d = (st.card.get("defaults") or {}).get("style", 0)
            row.label(text=str(styles[d]) if isinstance(d, int) and 0 <= d < len(styles) else str(d))
        else:
            row.prop(props, "style", text="")
            if 0 <= props.style < len(styles):
                row.label(text=str(styles[props.style]))
        col.prop(props, "take_mode", expand=True)
        row = col.row(align=True)
        row.prop(props, "take_nla")
        row.prop(props, "take_thin")
        sub_e = row.row(align=True)
        sub_e.enabled = props.take_thin
        sub_e.prop(props, "take_thin_error", text="")

        layout.operator("streamingtalker.generate", icon="PLAY_SOUND")
        box = layout.box()
        box.label(text="Live")
        box.enabled = not running
        box.prop(props, "live_input")
        box.prop(props, "live_record")
        row = box.row(align=True)
        row.operator("streamingtalker.live", icon="REC")
        row.operator("streamingtalker.follow_playback", icon="PLAY")
        box.prop(props, "follow_ahead")
        layout.operator("streamingtalker.stop", icon="CANCEL")
        layout.operator("streamingtalker.export_fbx", icon="EXPORT")

        if running and props.progress > 0:
            layout.progress(factor=props.progress, text=f"{props.progress * 100:.0f}%")
        if props.status:
            error = props.status.startswith(("Error", "Live error"))
            lines = props.status.splitlines()[:4]
            layout.label(text=lines[0], icon="ERROR" if error else "INFO")
            for line in lines[1:]:
                layout.label(text=line, icon="BLANK1")
        if st.stopping:
            layout.label(text="Stopping the last run: waiting for the inference process to confirm", icon="TIME")
        for line in st.runtime_lines()[:3]:
            layout.label(text=line[:160], icon="SETTINGS")
        draw_flame(layout.box(), context)


class STK_PT_mapping(_Sidebar):
    bl_idname = "STK_PT_mapping"
    bl_label = "Channel mapping"
    bl_parent_id = "STK_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: Any) -> None:
        layout = self.layout
        assert layout is not None
        obj = context.scene.streamingtalker.target
        if obj is None:
            layout.label(text="No target mesh")
            return
        s = obj.streamingtalker
        channels = list(state.get().card.get("channels") or ARKIT_52)
        row = layout.row(align=True)
        row.label(text="Preset")
        chosen = preset_files.preset_by_id(s.preset) if s.preset else None
        row.operator_menu_enum("streamingtalker.choose_preset", "preset",
                               text=chosen.name if chosen else "Automatic")
        layout.label(text=inputs.describe_binding(obj, channels)[:160], icon="INFO")
        row = layout.row(align=True)
        row.operator("streamingtalker.save_preset", icon="EXPORT")
        row.operator("streamingtalker.load_preset", icon="IMPORT")
        layout.prop(s, "use_mapping")
        layout.operator("streamingtalker.refresh_mapping", icon="FILE_REFRESH")
        layout.template_list("STK_UL_mapping", "", s, "mapping", s, "mapping_index", rows=6)
        unmapped = [r.channel for r in s.mapping if not r.enabled or not r.shape_key]
        if unmapped:
            layout.label(text=f"{len(unmapped)} unmapped: {', '.join(unmapped[:4])}…", icon="INFO")


CLASSES = (STK_UL_mapping, STK_PT_main, STK_PT_mapping)
