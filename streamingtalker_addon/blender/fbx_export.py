"""FBX export of a face mesh with its shape-key animation, with settings that survive.

Why a wrapper and not the stock operator: Blender 5.0's FBX exporter silently drops
shape-key-only animation with its default options (NLA strips / all actions), drops
shape keys outright when modifiers are applied, and thins keys with its simplify
pass. ``export_fbx`` picks the options that keep every frame of every shape key
(checked by an export → import round trip in the tests), exports only the face and
its children, and puts the user's selection, active object and frame range back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._typing import OpResult
from . import keyframes, takes


def _shape_key_curves(obj: Any) -> dict[str, Any]:
    """shape key name → F-curve animating its value (the active action's, else its NLA strips')."""
    key = getattr(obj.data, "shape_keys", None)
    if key is None:
        return {}
    out = {}
    for path, fc in takes.take_fcurves(key).items():
        if path.startswith('key_blocks["') and path.endswith('"].value'):
            out[path[len('key_blocks["'):-len('"].value')]] = fc
    return out


def _blocking_modifiers(obj: Any) -> list[Any]:
    return [m for m in obj.modifiers if m.type != "ARMATURE" and m.show_render]


def check_exportable(obj: Any) -> list[str]:
    """Problems the user must know about before exporting ``obj`` (empty list: all good)."""
    if obj is None:
        return ["No object to export: choose the face mesh"]
    if obj.type != "MESH":
        return [f"'{obj.name}' is a {obj.type.lower()}, not a mesh: only meshes carry shape keys"]
    problems: list[str] = []
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        problems.append(f"'{obj.name}' has no shape keys: the FBX will contain no facial animation")
        return problems
    if not key.use_relative:
        problems.append(f"'{obj.name}': shape keys are set to Absolute (Key.use_relative off); "
                        "FBX only carries relative blend shapes — turn 'Relative' on")
    mods = _blocking_modifiers(obj)
    if mods:
        names = ", ".join(f"'{m.name}' ({m.type.lower()})" for m in mods)
        problems.append(f"'{obj.name}' has modifiers {names}: applying them would make the exporter drop "
                        "the shape keys, so they are exported un-applied")
    curves = _shape_key_curves(obj)
    if not curves:
        problems.append(f"'{obj.name}' has no shape-key animation: only the shapes will be exported")
    elif all(len(fc.keyframe_points) == 0 for fc in curves.values()):
        problems.append(f"'{obj.name}': the shape-key action has no keyframes")
    return problems


def animation_range(obj: Any) -> tuple[int, int] | None:
    """First and last keyed frame of the shape-key animation (its NLA strips' without an active action)."""
    key = getattr(obj.data, "shape_keys", None)
    if key is not None and not keyframes.find_fcurves(key):
        return takes.nla_range(key)
    lo, hi = None, None
    for fc in _shape_key_curves(obj).values():
        if len(fc.keyframe_points) == 0:
            continue
        a, b = fc.range()
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    if lo is None or hi is None:
        return None
    return int(round(lo)), int(round(hi))


def _descendants(obj: Any) -> list[Any]:
    out = []
    for child in obj.children:
        out.append(child)
        out.extend(_descendants(child))
    return out


def _run_exporter(path: Path, apply_modifiers: bool) -> OpResult:
    """Blender's FBX exporter on the selection, with the options that keep every shape-key frame."""
    import bpy

    return bpy.ops.export_scene.fbx(
        filepath=str(path),
        check_existing=False,
        use_selection=True,
        use_visible=False,
        use_active_collection=False,
        object_types={"MESH", "ARMATURE", "EMPTY"},
        use_mesh_modifiers=apply_modifiers,
        mesh_smooth_type="FACE",
        add_leaf_bones=False,
        bake_anim=True,
        bake_anim_use_all_bones=True,
        bake_anim_use_nla_strips=False,
        bake_anim_use_all_actions=False,
        bake_anim_force_startend_keying=True,
        bake_anim_step=1.0,
        bake_anim_simplify_factor=0.0,
        path_mode="AUTO",
    )


def export_fbx(context: Any, obj: Any, filepath: str | os.PathLike[str], *,
               include_children: bool = True) -> dict[str, Any]:
    """Export ``obj`` (and its children) with shape-key animation; returns a report.

    Raises ValueError for an object that cannot be exported and OSError when the
    file cannot be written; the scene is left exactly as it was in every case.
    """
    import bpy

    if obj is None or obj.type != "MESH":
        raise ValueError("export_fbx needs a mesh object")
    path = Path(os.fspath(filepath)).expanduser()
    if path.suffix.lower() != ".fbx":
        path = path.with_name(path.name + ".fbx")
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise OSError(f"cannot write to {path.parent}")

    scene = context.scene
    view_layer = context.view_layer
    warnings = check_exportable(obj)
    objects = [obj] + (_descendants(obj) if include_children else [])
    view_layer.update()  # objects linked by a script appear in the layer only after a sync
    in_layer = set(view_layer.objects[:])
    objects = [o for o in objects if o in in_layer]
    if obj not in in_layer:
        raise ValueError(f"'{obj.name}' is not in the active view layer")
    rng = animation_range(obj)
    apply_modifiers = not _blocking_modifiers(obj)

    saved_sel = [o for o in view_layer.objects if o.select_get()]
    saved_active = view_layer.objects.active
    saved_range = (scene.frame_start, scene.frame_end, scene.frame_current)
    saved_hidden = {o.name: o.hide_get() for o in objects}
    try:
        for o in view_layer.objects:
            o.select_set(False)
        for o in objects:
            o.hide_set(False)  # hidden objects cannot be selected, and would be skipped
            o.select_set(True)
        view_layer.objects.active = obj
        if rng is not None:
            scene.frame_start, scene.frame_end = rng[0], max(rng[1], rng[0] + 1)
        result = _run_exporter(path, apply_modifiers)
    except RuntimeError as exc:  # the operator reports its own errors this way
        raise RuntimeError(f"FBX export failed: {exc}") from exc
    finally:
        scene.frame_start, scene.frame_end = saved_range[0], saved_range[1]
        scene.frame_set(saved_range[2])
        for o in objects:
            if o in in_layer:
                o.hide_set(saved_hidden[o.name])
        for o in view_layer.objects:
            o.select_set(o in saved_sel)
        view_layer.objects.active = saved_active
    if result != {"FINISHED"} or not path.is_file():
        raise RuntimeError(f"FBX export did not write {path}")
    key = obj.data.shape_keys
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "objects": [o.name for o in objects],
        "frame_start": rng[0] if rng else None,
        "frame_end": rng[1] if rng else None,
        "fps": scene.render.fps / scene.render.fps_base,
        "shape_keys": (len(key.key_blocks) - 1) if key is not None else 0,
        "animated_shape_keys": len(_shape_key_curves(obj)),
        "apply_modifiers": apply_modifiers,
        "warnings": warnings,
    }
