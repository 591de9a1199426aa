"""Retarget preset operators: choose a mesh's preset, fill its mapping list, save and load preset files."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import EnumProperty, StringProperty

from .. import state
from .._typing import OpResult
from ..blender import preset_files
from ..client.core import ARKIT_52
from ..jobs import inputs
from ..logic import retarget
from .reporting import fail

AUTO = "AUTO"
#: Blender needs the strings of dynamic enum items kept alive while it shows them
_ITEMS: list[tuple[str, str, str]] = []


def preset_items(self: Any = None, context: Any = None) -> list[tuple[str, str, str]]:
    _ITEMS[:] = [(AUTO, "Automatic (from the key names)", "Pick the preset that binds the most channels")]
    _ITEMS.extend((p.id, p.name, p.description or p.name) for p in preset_files.all_presets())
    return _ITEMS


def _channels() -> list[str]:
    return list(state.get().card.get("channels") or ARKIT_52)


def _fill(op: Any, obj: Any, preset: retarget.Preset | None = None, prefix: str = "") -> OpResult:
    """Fill the mapping list from ``preset`` (default: the mesh's own) and report what it binds."""
    channels = _channels()
    b = inputs.fill_mapping(obj, channels, preset)
    op.report({"INFO"} if b.ok else {"WARNING"}, prefix + b.summary(len(channels)))
    return {"FINISHED"}


def _target(context: Any) -> Any:
    obj = context.scene.streamingtalker.target
    if obj is None or obj.type != "MESH":
        raise inputs.InputError("Choose a target mesh first")
    return obj


class STK_OT_choose_preset(bpy.types.Operator):
    """Choose how the model's channels map onto the target's shape keys (saved with the mesh)"""

    bl_idname = "streamingtalker.choose_preset"
    bl_label = "Retarget preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="Preset", items=preset_items)  # type: ignore[valid-type]

    def execute(self, context: Any) -> OpResult:
        try:
            obj = _target(context)
        except inputs.InputError as exc:
            return fail(self, exc)
        settings = obj.streamingtalker
        settings.preset = "" if self.preset == AUTO else self.preset
        settings.use_mapping = False  # the list shows the preset; editing it and ticking the box overrides
        return _fill(self, obj)


class _PresetFile(bpy.types.Operator):
    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: Any, event: Any) -> OpResult:
        if not self.filepath:
            obj = context.scene.streamingtalker.target
            stem = retarget.safe_file_stem(obj.name if obj else "preset")
            self.filepath = str(preset_files.presets_dir() / f"{stem}.json")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class STK_OT_save_preset(_PresetFile):
    """Save the target's mapping list as a retarget preset file (JSON) for other characters"""

    bl_idname = "streamingtalker.save_preset"
    bl_label = "Save preset…"

    def execute(self, context: Any) -> OpResult:
        try:
            obj = _target(context)
            if not self.filepath:
                raise inputs.InputError("Choose a file name")
            if not len(obj.streamingtalker.mapping):
                inputs.fill_mapping(obj, _channels())
            path = bpy.path.abspath(self.filepath)
            name = bpy.path.display_name_from_filepath(path) or obj.name
            preset = retarget.preset_from_mapping("", name, inputs.mapping_rows(obj),
                                                  description=f"Saved from '{obj.name}'")
            saved = preset_files.save_preset(preset, path)
        except (inputs.InputError, retarget.PresetError, OSError) as exc:
            return fail(self, exc)
        if saved.parent.resolve() == preset_files.presets_dir().resolve():
            obj.streamingtalker.preset = preset_files.USER_PREFIX + saved.stem
        self.report({"INFO"}, f"Saved {len(preset.rows)} rows to {saved}")
        return {"FINISHED"}


class STK_OT_load_preset(_PresetFile):
    """Load a retarget preset file (JSON), keep it with your presets and use it for the target"""

    bl_idname = "streamingtalker.load_preset"
    bl_label = "Load preset…"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        try:
            obj = _target(context)
            preset = preset_files.import_preset(bpy.path.abspath(self.filepath))
        except (inputs.InputError, retarget.PresetError, OSError) as exc:
            return fail(self, exc)
        obj.streamingtalker.preset = preset.id
        obj.streamingtalker.use_mapping = False
        return _fill(self, obj, preset, prefix=f"'{preset.name}': ")


class STK_OT_refresh_mapping(bpy.types.Operator):
    """Fill the target's channel → shape key list from its preset, and report unmapped channels"""

    bl_idname = "streamingtalker.refresh_mapping"
    bl_label = "Fill list from preset"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> OpResult:
        try:
            return _fill(self, _target(context))
        except inputs.InputError as exc:
            return fail(self, exc)


CLASSES = (STK_OT_choose_preset, STK_OT_save_preset, STK_OT_load_preset, STK_OT_refresh_mapping)
