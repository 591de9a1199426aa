"""Unique output names for a batch of inputs (stdlib only: the add-on's bake uses it too).

Why: a studio batch holds ``take.wav`` beside ``take.flac`` and ``a/line.wav`` beside
``b/line.wav``; naming outputs by the stem alone made one silently overwrite the other.
Files found under a folder input keep their path relative to that folder (the input
tree is mirrored: ``a/line``, ``b/line``). Names that still clash (compared without
case, as macOS and Windows file systems do) first take their extension
(``take_wav``, ``take_flac``), then a counter (``line-2``) in input order, so the same
inputs always give the same names and the manifest says which input made which output.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable


def base_key(file: Path, root: Path | None) -> str:
    """The output name of ``file`` before de-duplication: its path under the folder input
    ``root`` without the extension (``a/line``), or its stem for a file given directly."""
    if root is not None:
        try:
            rel = file.relative_to(root)
            return PurePosixPath(*rel.parts).with_suffix("").as_posix()
        except ValueError:
            pass
    return file.stem


def unique_keys(entries: Iterable[tuple[Path, str]]) -> list[str]:
    """One unique output name per ``(file, base key)``, in order (see the module docstring)."""
    entries = list(entries)
    keys = [k for _, k in entries]

    def clashes() -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k.casefold(), []).append(i)
        return {k: idx for k, idx in groups.items() if len(idx) > 1}

    for idx in clashes().values():
        suffixes = {entries[i][0].suffix.lower() for i in idx}
        if len(suffixes) == len(idx):  # take.wav + take.flac: the extension tells them apart
            for i in idx:
                ext = entries[i][0].suffix.lower().lstrip(".")
                keys[i] = f"{keys[i]}_{ext}" if ext else keys[i]
    taken = {k.casefold() for k in keys}
    for idx in clashes().values():
        for n, i in enumerate(idx[1:], start=2):
            candidate = f"{keys[i]}-{n}"
            while candidate.casefold() in taken:
                n += 1
                candidate = f"{keys[i]}-{n}"
            taken.add(candidate.casefold())
            keys[i] = candidate
    return keys

