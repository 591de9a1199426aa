"""Build the installable Blender extension zips, one per platform.

    python build.py                          # this machine's platform
    python build.py --platform linux-x64     # linux-x64, windows-x64, macos-arm64, macos-x64
    python build.py --all [--out dist]

Layout of a zip (the extension's root is the add-on package itself)::

    blender_manifest.toml               + platforms = ["<platform>"], wheels = ["./wheels/<file>"]
    __init__.py, client/, ui/, …        streamingtalker_addon/*
    inference_core/                     bundled copy (with its models/: weights + ONNX graphs)
    wheels/onnxruntime-….whl            the platform's ONNX Runtime (Blender installs it)
    requirements_core.txt               what the optional "Set up runtime" installs next to torch
    TRAINING_DATA_CREDITS.txt           the recorded voices the bundled model learned from, credited

Why a bundled core and wheel: with them an installed extension runs the model in
Blender's own Python (3.11, numpy included) through ONNX Runtime, with nothing else
to install and no checkout. The wheels are pinned and hash-checked
(``requirements/wheels.lock.toml``), downloaded from the package index once with
``pip download`` and cached in ``build/wheel_cache/``; nothing else is downloaded.
numpy is not bundled: Blender ships it. A platform with no onnxruntime wheel gets a
zip without one (the add-on then needs a torch runtime there), and the build says so.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "streamingtalker_addon"
CORE = ROOT / "inference_core"
LOCK = ROOT / "requirements" / "wheels.lock.toml"
WHEEL_CACHE = ROOT / "build" / "wheel_cache"
PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")
EXCLUDE_DIRS = {"__pycache__", "tests", ".mypy_cache", ".pytest_cache"}
EXCLUDE_FILES = ["*.pyc", "*.pyo", "*.orig", "*.rej", ".DS_Store", "*.tmp", "*.ckpt.partial"]
#: files stored, not deflated: they barely compress, and storing keeps the build fast
STORED = (".safetensors", ".whl", ".npz")


class BuildError(RuntimeError):
    pass


def _files(base: Path) -> Iterator[tuple[Path, Path]]:
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part in EXCLUDE_DIRS for part in rel.parts):
            continue
        if path.is_dir() or any(fnmatch.fnmatch(path.name, pat) for pat in EXCLUDE_FILES):
            continue
        yield path, rel


def manifest() -> dict[str, Any]:
    with open(ROOT / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


def lock() -> dict[str, Any]:
    with open(LOCK, "rb") as fh:
        return tomllib.load(fh)


def host_platform() -> str:
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    return f"{system}-{arch}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(package: str, version: str, entry: dict[str, str], cache: Path = WHEEL_CACHE) -> Path | None:
    """The locked wheel from the cache, else from the package index; None if the lock has none.

    Refuses (BuildError) a file whose sha256 is not the locked one, cached or downloaded."""
    if not entry.get("file"):
        return None
    target = cache / entry["file"]
    if target.is_file():
        if sha256(target) != entry["sha256"]:
            raise BuildError(f"{target} does not match its sha256 in {LOCK.name}; delete it to download again")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{package}=={version} --hash=sha256:{entry['sha256']}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps",
               "--platform", entry["pip_platform"], "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311", "-d", tmp, "-r", str(req)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / entry["file"]
        if res.returncode != 0 or not got.is_file():
            raise BuildError(f"pip download of {entry['file']} failed: {(res.stderr or res.stdout).strip()[-800:]}")
        if sha256(got) != entry["sha256"]:
            raise BuildError(f"the downloaded {got.name} does not match its sha256 in {LOCK.name}")
        got.replace(target)
    return target


def onnxruntime_wheel(plat: str) -> Path | None:
    ort = lock()["onnxruntime"]
    entry = ort["platforms"][plat]
    return fetch_wheel("onnxruntime", entry.get("version", ort["version"]), entry)


def test_wheel(name: str) -> Path:
    """A wheel the tests install (locked under ``[test.<name>]``)."""
    entry = lock()["test"][name]
    path = fetch_wheel(name, entry["version"], entry)
    assert path is not None
    return path


def platform_manifest(plat: str, wheel: Path | None) -> str:
    """blender_manifest.toml with this build's ``platforms`` and ``wheels`` (top-level keys, before any table)."""
    text = (ROOT / "blender_manifest.toml").read_text()
    wheels = [f"./wheels/{wheel.name}"] if wheel else []
    lines = [f'platforms = ["{plat}"]'] + ([f'wheels = ["{wheels[0]}"]'] if wheels else [])
    first_table = re.search(r"^\[", text, re.M)
    at = first_table.start() if first_table else len(text)
    out = text[:at] + "\n".join(lines) + "\n\n" + text[at:]
    parsed = tomllib.loads(out)
    if parsed.get("platforms") != [plat] or parsed.get("wheels", []) != wheels:
        raise BuildError("blender_manifest.toml already sets platforms or wheels; build.py sets them per platform")
    return out


def check_manifest(info: dict[str, Any]) -> list[str]:
    """The extension platform's manifest rules this build must keep (empty list: all good)."""
    problems = []
    for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "license",
                "blender_version_min"):
        if not info.get(key):
            problems.append(f"missing {key}")
    tagline = str(info.get("tagline", ""))
    if len(tagline) > 64 or tagline.endswith((".", "!", "?")):
        problems.append("tagline: at most 64 characters, no trailing punctuation")
    for name, reason in (info.get("permissions") or {}).items():
        if len(reason) > 64 or reason.endswith("."):
            problems.append(f"permission {name}: reason of at most 64 characters, no trailing period")
    if not re.fullmatch(r"\d+\.\d+\.\d+", str(info.get("version", ""))):
        problems.append("version must be semantic (X.Y.Z)")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(info.get("id", ""))):
        problems.append("id must be a lower-case identifier")
    return problems


def training_credits(models: Path = CORE / "models") -> str | None:
    """The credits of the recorded voices the bundled models learned from (their cards'
    ``training.voice_credits``), as the text file the zip carries; None if no card has any.

    Why a file of its own: the voices are CC-BY-SA and GPL recordings, whose licences ask that
    work derived from them credit them, and a user looks for that in a plain file, not in JSON."""
    lines: list[str] = []
    for card_path in sorted(models.glob("*.json")):
        card = json.loads(card_path.read_text())
        credits = (card.get("training") or {}).get("voice_credits") if isinstance(card, dict) else None
        if not credits:
            continue
        lines += [f"The model {card.get('name', card_path.stem)} ({card_path.stem}.safetensors, weights sha256 "
                  f"{card.get('weights_sha256', '?')}) learned from these recorded voices:", ""]
        lines += [f"- {c['voice']} ({c['licence']}): {c['attribution']}" for c in credits]
        lines += ["", "Its synthetic voices (espeak-ng, flite) are not recordings of people. "
                      "The README says how each set was used and what was held out.", ""]
    return "\n".join(lines) if lines else None


def build(out_dir: Path, plat: str) -> Path:
    if plat not in PLATFORMS:
        raise BuildError(f"unknown platform {plat!r}; one of {', '.join(PLATFORMS)}")
    info = manifest()
    problems = check_manifest(info)
    if problems:
        raise BuildError("blender_manifest.toml: " + "; ".join(problems))
    wheel = onnxruntime_wheel(plat)
    if wheel is None:
        print(f"build: no onnxruntime {lock()['onnxruntime']['version']} wheel exists for {plat}: this zip has "
              "no built-in runtime; the add-on needs a torch runtime ('Set up runtime') there", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{info['id']}-{info['version']}-{plat.replace('-', '_')}.zip"
    tmp = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("blender_manifest.toml", platform_manifest(plat, wheel))
        for path, rel in _files(ADDON):
            zf.write(path, rel.as_posix())
        for path, rel in _files(CORE):
            kind = zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED
            zf.write(path, f"inference_core/{rel.as_posix()}", compress_type=kind)
        if wheel is not None:
            zf.write(wheel, f"wheels/{wheel.name}", compress_type=zipfile.ZIP_STORED)
        credits = training_credits()
        if credits:
            zf.writestr("TRAINING_DATA_CREDITS.txt", credits)
        req = ROOT / "requirements" / "core.txt"
        if req.is_file():
            zf.write(req, "requirements_core.txt")
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--platform", action="append", choices=PLATFORMS,
                       help="a platform to build for (repeatable; default: this machine's)")
    group.add_argument("--all", action="store_true", help="build every platform")
    args = ap.parse_args(argv)
    plats = list(PLATFORMS) if args.all else (args.platform or [host_platform()])
    try:
        for plat in plats:
            print(build(args.out, plat))
    except BuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
