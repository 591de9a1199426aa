"""Retarget preset files: the user's own presets, stored as JSON in the extension's user folder.

Built-in presets live in :mod:`..logic.presets`; a user saves the mapping list of a mesh as a
preset file (``<user dir>/retarget_presets/<name>.json``, or any path they choose) and loads
one from anywhere (it is copied into that folder, so the mesh's choice stays valid). A
mesh stores the id of its preset (:func:`preset_by_id`); a file that went missing falls
back to choosing by key names, and the job says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..logic import presets as builtin
from ..logic.retarget import Preset, PresetError, preset_from_json, preset_to_json, safe_file_stem
from .user_data import user_dir

USER_PREFIX = "user:"


def presets_dir(create: bool = True) -> Path:
    d = user_dir() / "retarget_presets"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


def read_preset(path: Path) -> Preset:
    """One preset file; :class:`PresetError` with a one-line reason when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"cannot read {path.name}: {exc}") from exc
    return preset_from_json(text, USER_PREFIX + path.stem, where=path.name)


def user_presets() -> tuple[list[Preset], list[str]]:
    """The presets in the user folder, and a line for each file that could not be read."""
    found, problems = [], []
    d = presets_dir(create=False)
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            found.append(read_preset(path))
        except PresetError as exc:
            problems.append(str(exc))
    return found, problems


def all_presets() -> list[Preset]:
    return list(builtin.BUILTIN) + user_presets()[0]


def preset_by_id(preset_id: str) -> Preset | None:
    if preset_id in builtin.BY_ID:
        return builtin.BY_ID[preset_id]
    if preset_id.startswith(USER_PREFIX):
        path = presets_dir(create=False) / f"{preset_id[len(USER_PREFIX):]}.json"
        if path.is_file():
            try:
                return read_preset(path)
            except PresetError:
                return None
    return None


def save_preset(preset: Preset, path: str | Path | None = None) -> Path:
    """Write ``preset`` as JSON (to the user folder unless ``path`` is given); returns the file."""
    target = Path(path) if path else presets_dir() / f"{safe_file_stem(preset.name)}.json"
    if target.suffix.lower() != ".json":
        target = target.with_name(target.name + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(preset_to_json(preset), encoding="utf-8")
    return target


def import_preset(path: str | Path) -> Preset:
    """Check a preset file and copy it into the user folder (if it is not there already); returns it."""
    src = Path(path)
    read_preset(src)  # a bad file is refused before anything is copied
    dest = presets_dir() / f"{safe_file_stem(src.stem)}.json"
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    return read_preset(dest)
