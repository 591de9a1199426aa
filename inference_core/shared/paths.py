"""Where bundled files live, and opening untrusted ones safely (stdlib only)."""

import os
import stat
from pathlib import Path
from typing import BinaryIO

PACKAGE_DIR = Path(__file__).resolve().parent.parent
MODELS_DIR = PACKAGE_DIR / "models"
ASSETS_DIR = PACKAGE_DIR / "assets"
#: The bundled ARKit-channel model (trained by ``python -m inference_core train``).
DEFAULT_MODEL = MODELS_DIR / "streamingtalker_arkit.safetensors"
#: The bundled speech clip used by ``make demo`` and the tests.
DEMO_SPEECH = ASSETS_DIR / "demo_speech.flac"


def path_kind(path: str | os.PathLike) -> str:
    """'file', 'folder', 'missing', 'special' (a FIFO, device or socket) or 'unreadable' (no
    permission, a name too long or with a NUL byte). Never raises: every path from a user or a
    client gets a clear message, not an OSError."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except (OSError, ValueError):
        return "unreadable"
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "special"


class NotARegularFile(ValueError):
    """A path names a FIFO, a device or a folder: reading it could block forever or never end."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``open(path, "rb")`` for a regular file only. Opened non-blocking and checked with fstat,
    so a FIFO is refused at once (a plain open would wait for a writer forever)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(f"{Path(path).name} is not a regular file (a pipe, a device or a folder)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
