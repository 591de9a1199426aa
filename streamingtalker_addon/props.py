"""Scene and object settings shown in the panel (bpy property groups)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)


def _is_mesh(self: object, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


class STK_MappingItem(bpy.types.PropertyGroup):
    """One row of the editable channel → shape key mapping."""

    channel: StringProperty(name="Channel")  # type: ignore[valid-type]
    shape_key: StringProperty(name="Shape key", description="Shape key driven by this channel")  # type: ignore[valid-type]
    enabled: BoolProperty(name="Enabled", default=True)  # type: ignore[valid-type]


class STK_ObjectSettings(bpy.types.PropertyGroup):
    mapping: CollectionProperty(type=STK_MappingItem)  # type: ignore[valid-type]
    mapping_index: IntProperty()  # type: ignore[valid-type]
    use_mapping: BoolProperty(
        name="Use edited mapping", default=False,
        description="Drive the shape keys listed below instead of matching names automatically")  # type: ignore[valid-type]


class STK_SceneSettings(bpy.types.PropertyGroup):
    target: PointerProperty(type=bpy.types.Object, poll=_is_mesh, name="Target mesh",
                            description="Mesh whose shape keys are animated")  # type: ignore[valid-type]
    audio_source: EnumProperty(name="Audio", items=[
        ("FILE", "File", "An audio file; a sound strip is added so playback stays in sync"),
        ("STRIP", "Sound strip", "A sound strip already in the scene's sequencer"),
    ], default="FILE")  # type: ignore[valid-type]
    audio_file: StringProperty(name="Audio file", subtype="FILE_PATH")  # type: ignore[valid-type]
    strip_name: StringProperty(name="Sound strip")  # type: ignore[valid-type]
    frame_start: IntProperty(name="Start frame", default=1,
                             description="Frame of the first key (file source)")  # type: ignore[valid-type]
    add_strip: BoolProperty(name="Add sound strip", default=True,
                            description="Add the file as a sound strip at the start frame")  # type: ignore[valid-type]
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, soft_max=2.0)  # type: ignore[valid-type]
    smoothing: FloatProperty(name="Smoothing", default=0.0, min=0.0, max=1.0)  # type: ignore[valid-type]
    seed: IntProperty(name="Seed", default=0, min=0)  # type: ignore[valid-type]
    use_model_defaults: BoolProperty(
        name="Model's tuned sampling", default=True,
        description="Use the steps, guidance and temperature the model card was tuned with; "
                    "off: set them here")  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=2, min=1, max=50,
                       description="Denoising steps per frame chunk (more = slower)")  # type: ignore[valid-type]
    guidance: FloatProperty(name="Guidance", default=1.0, min=0.0, soft_max=5.0,
                            description="How strongly the audio drives the motion (1 = plain conditional)")  # type: ignore[valid-type]
    temperature: FloatProperty(name="Temperature", default=0.1, min=0.0, soft_max=1.0,
                               description="Sampling noise: 0 = the same take for every seed")  # type: ignore[valid-type]
    style: IntProperty(name="Style", default=0, min=0)  # type: ignore[valid-type]
    take_mode: EnumProperty(name="Take", items=[
        ("REPLACE", "Replace", "Re-running replaces the previous take's curves"),
        ("NEW", "New action", "Each run writes a new action; older takes are kept"),
    ], default="REPLACE")  # type: ignore[valid-type]
    live_input: EnumProperty(name="Live input", items=[
        ("MICROPHONE", "Microphone", "Capture the default input device in the runtime process"),
        ("FILE", "Audio file", "Play the audio file in real time (rehearsal without a microphone)"),
    ], default="MICROPHONE")  # type: ignore[valid-type]
    live_record: BoolProperty(name="Record", default=False,
                              description="Record live motion into keyframes from the current frame")  # type: ignore[valid-type]
    follow_ahead: FloatProperty(name="Ahead (s)", default=1.0, min=0.2, max=10.0,
                                description="How far ahead of the playhead Follow playback generates")  # type: ignore[valid-type]
    # status (written by the operators)
    status: StringProperty(name="Status", default="")  # type: ignore[valid-type]
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    running: StringProperty(default="")  # type: ignore[valid-type]


CLASSES = (STK_MappingItem, STK_ObjectSettings, STK_SceneSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.streamingtalker = PointerProperty(type=STK_SceneSettings)  # type: ignore[attr-defined]
    bpy.types.Object.streamingtalker = PointerProperty(type=STK_ObjectSettings)  # type: ignore[attr-defined]


def unregister() -> None:
    del bpy.types.Object.streamingtalker  # type: ignore[attr-defined]
    del bpy.types.Scene.streamingtalker  # type: ignore[attr-defined]
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
