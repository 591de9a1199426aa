"""Convert the ICT FaceKit head (``../shared/assets/ict_face/``) into the add-on's compact demo-head asset.

    .venv/bin/python scripts/build_demo_head_asset.py [--src DIR] [--out streamingtalker_addon/demo_head]

Writes ``ict_face.npz`` (about 1.8 MB instead of 2.6 MB, and loadable with numpy alone) and copies
the MIT notice beside it as ``LICENSE-ICT-FaceKit.txt``, so both ship in the extension zip. What it
does to the source, and why:

* Blender's frame and units: metres, +Z up, the face looking down -Y (ICT: centimetres, +Y up, +Z out).
* Positions quantised to 16 bits over the head's bounding box (a step under 0.005 mm).
* Each expression kept only where it moves a vertex by more than 0.01 mm, as 16-bit offsets with
  one scale per shape (error under 0.01 mm) and gap-coded vertex indices: most shapes move a
  small part of the head.
* The two transparent corneal shells over the eyeballs are left out: the demo renders in Workbench
  and EEVEE without refraction, where an opaque shell would hide the iris. No expression moves them.
* Polygons as 16-bit indices (the head has fewer than 65,536 vertices) with 8-bit sizes.

The add-on decodes it with :func:`streamingtalker_addon.demo_head.asset.load_head`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT.parent / "shared" / "assets" / "ict_face"
OUT = ROOT / "streamingtalker_addon" / "demo_head"

#: ICT FaceKit's vertex ranges (its README), first vertex of each part; the corneas are dropped
PARTS = (("face", 0), ("head_neck", 9409), ("mouth_socket", 11248), ("eye_socket_left", 13294),
         ("eye_socket_right", 13678), ("gums_tongue", 14062), ("teeth", 17039),
         ("cornea_left", 21451), ("eyeball_left", 22221), ("cornea_right", 23021), ("eyeball_right", 23791))
N_SOURCE = 24591
DROP = ("cornea_left", "cornea_right")
MOVE_THRESHOLD_M = 1e-5  # 0.01 mm


def to_blender(p: np.ndarray) -> np.ndarray:
    """ICT (cm, +Y up, +Z forward) → Blender (m, +Z up, -Y forward): a rotation and a scale."""
    p = np.asarray(p, np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1) * 0.01


def part_ranges() -> list[tuple[str, int, int]]:
    ends = [s for _, s in PARTS[1:]] + [N_SOURCE]
    return [(name, start, end) for (name, start), end in zip(PARTS, ends)]


def encode(src: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    neutral = to_blender(src["neutral"])
    if len(neutral) != N_SOURCE:
        raise ValueError(f"expected {N_SOURCE} vertices, found {len(neutral)}")
    keep = np.ones(N_SOURCE, bool)
    for name, a, b in part_ranges():
        if name in DROP:
            keep[a:b] = False
    new_index = np.cumsum(keep) - 1
    # polygons: drop those on removed vertices (whole shells), re-index the rest
    counts = src["face_counts"].astype(np.int64)
    flat = src["face_indices"].astype(np.int64)
    poly_of_corner = np.repeat(np.arange(len(counts)), counts)
    poly_kept = np.ones(len(counts), bool)
    np.logical_and.at(poly_kept, poly_of_corner, keep[flat])
    corner_kept = poly_kept[poly_of_corner]
    faces = new_index[flat[corner_kept]]
    sizes = counts[poly_kept]
    v = neutral[keep]
    lo = v.min(0)
    step = (v.max(0) - lo) / 65535.0
    neutral_q = np.round((v - lo) / step).astype(np.uint16)

    deltas = to_blender(src["deltas"].astype(np.float32))[:, keep]
    gaps, values, counts_per_shape, scales = [], [], [], []
    for d in deltas:
        idx = np.nonzero(np.abs(d).max(1) > MOVE_THRESHOLD_M)[0]
        scale = float(np.abs(d[idx]).max()) / 32767.0 if len(idx) else 1.0
        gaps.append(np.diff(np.r_[-1, idx]).astype(np.uint16))
        values.append(np.round(d[idx] / scale).astype(np.int16))
        counts_per_shape.append(len(idx))
        scales.append(scale)
    kept = [(name, int(new_index[a])) for name, a, _ in part_ranges() if name not in DROP]
    return {
        "neutral_q": neutral_q, "neutral_lo": lo.astype(np.float64), "neutral_step": step.astype(np.float64),
        "faces": faces.astype(np.uint16), "face_sizes": sizes.astype(np.uint8),
        "names": np.array([str(n) for n in src["names"]]),
        "delta_counts": np.array(counts_per_shape, np.int32), "delta_scales": np.array(scales, np.float64),
        "delta_gaps": np.concatenate(gaps), "delta_values": np.concatenate(values),
        "landmarks68": new_index[src["landmarks68"].astype(np.int64)].astype(np.int32),
        "part_names": np.array([n for n, _ in kept]), "part_starts": np.array([s for _, s in kept], np.int32),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    npz = args.src / "ict_face_arkit.npz"
    if not npz.is_file():
        print(f"missing {npz}", file=sys.stderr)
        return 2
    with np.load(npz) as src:
        arrays = encode({k: src[k] for k in src.files})
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    arrays["source"] = np.array(f"ICT FaceKit (MIT), {npz.name} sha256 {digest}")
    out = args.out / "ict_face.npz"
    np.savez_compressed(out, **arrays)
    shutil.copyfile(args.src / "LICENSE", args.out / "LICENSE-ICT-FaceKit.txt")
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, {len(arrays['neutral_q'])} vertices, "
          f"{len(arrays['face_sizes'])} polygons, {len(arrays['names'])} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
