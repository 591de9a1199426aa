"""Scene and object settings shown in the panel (bpy property groups).

Generation defaults and their ranges come from the core's ``SessionOptions`` and
``LIMITS`` (stdlib-only), the same source the server, the CLI and new model cards
read, so the panel cannot disagree with them.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from ..blender.takes import TakeOptions, take_name
from ..client.core import LIMITS, SessionOptions
from ..jobs.inputs import AudioChoice

_D = SessionOptions()


def _range(name: str) -> dict[str, Any]:
    lo, hi = LIMITS[name]
    return {"min": lo, "max": hi}


def _is_mesh(self: object, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


class STK_MappingItem(bpy.types.PropertyGroup):
    """One row of the editable channel → shape key mapping."""

    channel: StringProperty(name="Channel")  # type: ignore[valid-type]
    shape_key: StringProperty(name="Shape key", description="Shape key driven by this channel")  # type: ignore[valid-type]
    enabled: BoolProperty(name="Enabled", default=True)  # type: ignore[valid-type]
    weight: FloatProperty(name="Weight", default=1.0, soft_min=-2.0, soft_max=2.0,
                          description="How much of the channel goes to the key; a key fed by several rows "
                                      "gets their weighted sum, clipped to 0..1")  # type: ignore[valid-type]


class STK_ObjectSettings(bpy.types.PropertyGroup):
    """Per mesh: its retarget preset and its editable mapping (saved in the .blend with the mesh)."""

    mapping: CollectionProperty(type=STK_MappingItem)  # type: ignore[valid-type]
    mapping_index: IntProperty()  # type: ignore[valid-type]
    use_mapping: BoolProperty(
        name="Use edited mapping", default=False,
        description="Drive the shape keys listed below instead of the preset")  # type: ignore[valid-type]
    preset: StringProperty(
        name="Retarget preset", default="",
        description="Id of the preset that maps the model's channels onto this mesh's keys "
                    "(empty: chosen from the key names)")  # type: ignore[valid-type]


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
    intensity: FloatProperty(name="Intensity", default=_D.intensity, soft_max=min(2.0, LIMITS["intensity"][1]),
                             **_range("intensity"))  # type: ignore[valid-type]
    articulation: FloatProperty(
        name="Articulation", default=_D.articulation, **_range("articulation"),
        description="How much of the mouth's range of motion, lost where the model averages over what an "
                    "unfamiliar voice might be saying, is given back (gains fitted per model, in its card): "
                    "0 = the model's own output, 1 = the fitted gains")  # type: ignore[valid-type]
    phonetic: FloatProperty(
        name="Phonetic", default=_D.phonetic, **_range("phonetic"),
        description="How far the mouth opens as the phones heard in the audio ask (the phonetic gain in the "
                    "model's card): 0 = off, 1 = as fitted. Sharper on real voices, less exact on "
                    "synthetic ones")  # type: ignore[valid-type]
    smoothing: FloatProperty(name="Smoothing", default=_D.smoothing, **_range("smoothing"))  # type: ignore[valid-type]
    seed: IntProperty(name="Seed", default=_D.seed, min=0)  # type: ignore[valid-type]
    use_model_defaults: BoolProperty(
        name="Model's tuned sampling", default=True,
        description="Use the steps, guidance and temperatures the model card was tuned with; "
                    "off: set them here")  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=_D.steps, min=int(LIMITS["steps"][0]), max=int(LIMITS["steps"][1]),
                       description="Denoising steps per frame chunk (more = slower)")  # type: ignore[valid-type]
    guidance: FloatProperty(name="Guidance", default=_D.guidance, soft_max=min(5.0, LIMITS["guidance"][1]),
                            description="How strongly the audio drives the motion (1 = plain conditional)",
                            **_range("guidance"))  # type: ignore[valid-type]
    temperature: FloatProperty(name="Temperature", default=_D.temperature, soft_max=1.0,
                               description="Sampling noise on the mouth: 0 = the same take for every seed",
                               **_range("temperature"))  # type: ignore[valid-type]
    use_temperature_upper: BoolProperty(
        name="Upper face", default=False,
        description="A separate temperature and step count for the upper face (blinks, gaze, brows: not "
                    "in the audio, so low noise stills them); off: the same as the mouth's")  # type: ignore[valid-type]
    temperature_upper: FloatProperty(name="Upper-face temperature", default=_D.upper_temperature,
                                     soft_max=LIMITS["temperature_upper"][1],  # tuned defaults sit above 1 (card)
                                     description="Sampling noise on the eyes, brows, cheeks and nose "
                                                 "(drawn as a chain of its own: it does not move the lips)",
                                     **_range("temperature_upper"))  # type: ignore[valid-type]
    steps_upper: IntProperty(name="Upper-face steps", default=_D.upper_steps, min=int(LIMITS["steps_upper"][0]),
                             max=int(LIMITS["steps_upper"][1]),
                             description="Denoising steps of the upper face's chain: more give fuller blinks "
                                         "and cost one network pass each")  # type: ignore[valid-type]
    use_model_style: BoolProperty(
        name="Model's style", default=True,
        description="The speaking style the model card recommends (chosen on held-out voices); "
                    "off: pick one of the styles the model was trained with")  # type: ignore[valid-type]
    style: IntProperty(
        name="Style", default=int(_D.style), min=0,
        description="Index of a trained speaking style (the model card lists them)")  # type: ignore[valid-type]
    take_mode: EnumProperty(name="Take", items=[
        ("REPLACE", "Replace", "Re-running replaces the previous take's curves"),
        ("NEW", "New action", "Each run writes a new action; older takes are kept"),
    ], default="REPLACE")  # type: ignore[valid-type]
    take_nla: BoolProperty(
        name="NLA strip", default=False,
        description="Put each take on an NLA track as a strip named after the audio (to blend, "
                    "move or mute takes)")  # type: ignore[valid-type]
    take_thin: BoolProperty(
        name="Thin keys", default=False,
        description="After a take, remove keys with Blender's F-curve decimation while the curve "
                    "stays within the error bound (fewer keys to edit by hand)")  # type: ignore[valid-type]
    take_thin_error: FloatProperty(
        name="Max error", default=0.01, min=0.0001, max=0.2, precision=4,
        description="Largest change of a shape-key value the thinning may cause")  # type: ignore[valid-type]
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


def session_options(props: Any) -> dict[str, Any]:
    """Options for a session; the style and the sampling settings only when the user overrides the
    model card's."""
    opts = {"seed": props.seed, "intensity": props.intensity, "articulation": props.articulation,
            "phonetic": props.phonetic, "smoothing": props.smoothing}
    if not props.use_model_style:
        opts["style"] = props.style
    if not props.use_model_defaults:
        separate = props.use_temperature_upper
        opts.update(steps=props.steps, guidance=props.guidance, temperature=props.temperature,
                    temperature_upper=props.temperature_upper if separate else props.temperature,
                    steps_upper=props.steps_upper if separate else props.steps)
    return opts


def take_options(props: Any, audio_path: str) -> TakeOptions:
    """How the take is kept: named after the audio, on the NLA when asked, thinned when asked."""
    return TakeOptions(name=take_name(audio_path), nla=props.take_nla,
                       thin_error=props.take_thin_error if props.take_thin else 0.0)


def audio_choice(props: Any) -> AudioChoice:
    return AudioChoice(props.audio_source, bpy.path.abspath(props.audio_file) if props.audio_file else "",
                       props.strip_name, props.frame_start)


CLASSES = (STK_MappingItem, STK_ObjectSettings, STK_SceneSettings)
#: (owner, attribute, property group) set by register()
POINTERS = ((bpy.types.Scene, "streamingtalker", STK_SceneSettings),
            (bpy.types.Object, "streamingtalker", STK_ObjectSettings))
