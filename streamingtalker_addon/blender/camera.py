"""A portrait camera and lights that frame a face mesh (the demo head, or any head of its proportions)."""

from __future__ import annotations

from typing import Any

#: custom property (object-local x, y, z) a head can carry to say where its face is
FACE_CENTRE_PROP = "streamingtalker_face_centre"


def face_centre(obj: Any) -> tuple[float, float, float]:
    """World position between the eyes and the mouth, where a portrait camera should aim.

    The head's own :data:`FACE_CENTRE_PROP` when it has one (the demo head does); else
    the front of its bounding box, two fifths down from the top: about where the
    eyes and the mouth are on a head-and-neck mesh that looks down -Y.
    """
    from mathutils import Vector

    local = obj.get(FACE_CENTRE_PROP)
    if local is not None and len(local) == 3:
        return tuple(obj.matrix_world @ Vector([float(c) for c in local]))  # type: ignore[return-value]
    box = [Vector(c) for c in obj.bound_box]
    lo = Vector([min(c[i] for c in box) for i in range(3)])
    hi = Vector([max(c[i] for c in box) for i in range(3)])
    p = Vector((0.5 * (lo.x + hi.x), lo.y, hi.z - 0.4 * (hi.z - lo.z)))
    return tuple(obj.matrix_world @ p)  # type: ignore[return-value]


def setup_preview_camera(context: Any, obj: Any) -> Any:
    """A 3/4 front portrait camera plus key/fill/rim lights (used by EEVEE; Workbench uses its studio light)."""
    import bpy
    from mathutils import Vector

    scene = context.scene
    target = Vector(face_centre(obj))
    scale = max(obj.matrix_world.to_scale())
    cam_data = bpy.data.cameras.get("StreamingTalker Camera") or bpy.data.cameras.new("StreamingTalker Camera")
    cam_data.lens = 80.0
    cam_data.sensor_width = 36.0
    cam_data.clip_start = 0.01 * scale
    cam = bpy.data.objects.get("StreamingTalker Camera")
    if cam is None:
        cam = bpy.data.objects.new("StreamingTalker Camera", cam_data)
        scene.collection.objects.link(cam)
    offset = Vector((0.17, -0.43, 0.03)) * scale  # ~22° to the character's left, slightly above
    cam.location = target + offset
    cam.rotation_mode = "QUATERNION"
    cam.rotation_quaternion = (target - cam.location).to_track_quat("-Z", "Y")
    scene.camera = cam
    for lname, energy, pos in (("Key", 60.0, (0.5, -0.6, 0.5)), ("Fill", 20.0, (-0.6, -0.5, 0.1)),
                               ("Rim", 30.0, (0.0, 0.6, 0.4))):
        full = f"StreamingTalker {lname}"
        light: Any = bpy.data.objects.get(full)
        if light is None:
            light = bpy.data.objects.new(full, bpy.data.lights.new(full, "AREA"))
            scene.collection.objects.link(light)
        light.data.energy = energy * scale * scale
        light.data.size = 0.5 * scale
        light.location = target + Vector(pos) * scale
        light.rotation_mode = "QUATERNION"
        light.rotation_quaternion = (target - light.location).to_track_quat("-Z", "Y")
    layer = getattr(context, "view_layer", None)
    if layer is not None:
        layer.update()  # so cam.matrix_world is valid for callers right away
    return cam
