"""Where the add-on may write (the torch runtime venv, logs): never the add-on folder."""

from __future__ import annotations

from pathlib import Path


def user_dir() -> Path:
    """The extension's user folder (``bl_ext``), the config folder for a plain add-on, else ~/.streamingtalker."""
    package = (__package__ or "").rpartition(".")[0]
    try:
        import bpy

        if package.startswith("bl_ext."):
            return Path(bpy.utils.extension_path_user(package, create=True))
        return Path(bpy.utils.user_resource("CONFIG", path="streamingtalker", create=True))
    except (ImportError, ValueError, AttributeError):
        d = Path.home() / ".streamingtalker"
        d.mkdir(parents=True, exist_ok=True)
        return d
