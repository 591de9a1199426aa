"""The scripts' one way to hand back a report: JSON printed, and written to ``--out`` when given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(report: Any, out: str | Path | None, indent: int = 1) -> None:
    """Print ``report`` as JSON and, with ``out``, write the same text (newline-terminated) there."""
    text = json.dumps(report, indent=indent)
    if out:
        Path(out).write_text(text + "\n")
    print(text)
