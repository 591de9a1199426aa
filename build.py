"""Build the installable Blender extension zip: ``python build.py [--out dist]``.

Layout of the zip (the extension's root is the add-on package itself)::

    blender_manifest.toml
    __init__.py, operators.py, …        streamingtalker_addon/*
    inference_core/                     bundled copy (with its models/ and assets/)
    requirements_core.txt               what "Set up runtime" installs next to torch

Why a bundled core: the add-on imports the stdlib-only bridge modules from it,
and the runtime Python runs ``-m inference_core`` with the extension folder on
its path, so an installed extension needs no checkout. Caches, tests and
training-only outputs are left out.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "streamingtalker_addon"
CORE = ROOT / "inference_core"
EXCLUDE_DIRS = {"__pycache__", "tests", ".mypy_cache", ".pytest_cache"}
EXCLUDE_FILES = ["*.pyc", "*.pyo", "*.orig", "*.rej", ".DS_Store", "*.tmp", "*.ckpt.partial"]


def _files(base: Path):
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part in EXCLUDE_DIRS for part in rel.parts):
            continue
        if path.is_dir() or any(fnmatch.fnmatch(path.name, pat) for pat in EXCLUDE_FILES):
            continue
        yield path, rel


def manifest() -> dict:
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


def build(out_dir: Path) -> Path:
    info = manifest()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{info['id']}-{info['version']}.zip"
    tmp = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ROOT / "blender_manifest.toml", "blender_manifest.toml")
        for path, rel in _files(ADDON):
            zf.write(path, rel.as_posix())
        for path, rel in _files(CORE):
            # safetensors weights barely compress; store them to keep the build fast
            kind = zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
            zf.write(path, f"inference_core/{rel.as_posix()}", compress_type=kind)
        req = ROOT / "requirements" / "core.txt"
        if req.is_file():
            zf.write(req, "requirements_core.txt")
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    args = ap.parse_args(argv)
    path = build(args.out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
