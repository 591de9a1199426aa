"""The demo head's data: the ICT FaceKit head, decoded from the compact asset beside this file (numpy only).

``ict_face.npz`` is written by ``scripts/build_demo_head_asset.py`` from the ICT FaceKit
head (MIT licence, ``LICENSE-ICT-FaceKit.txt`` beside it): metres, +Z up, the face looking
down -Y; positions quantised to 16 bits; each expression stored sparsely as 16-bit offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ASSET = Path(__file__).with_name("ict_face.npz")
LICENSE = Path(__file__).with_name("LICENSE-ICT-FaceKit.txt")

#: the 68 Multi-PIE landmarks: 36–41 / 42–47 the eyes (subject's right / left), 48–59 the outer
#: lip contour, 60–67 the inner one (as in ICT FaceKit and dlib)
OUTER_LIP = tuple(range(48, 60))
INNER_LIP = tuple(range(60, 68))


@dataclass(frozen=True)
class HeadAsset:
    """The decoded head: one mesh whose parts are consecutive vertex ranges."""

    vertices: np.ndarray                 # (V, 3) float32, metres
    corners: np.ndarray                  # (C,) int32 vertex index of every polygon corner
    sizes: np.ndarray                    # (F,) int32 corners per polygon
    shapes: dict[str, np.ndarray]        # expression name (ARKit spelling) → (V, 3) float32 offsets
    landmarks68: np.ndarray              # (68,) vertex indices
    parts: dict[str, tuple[int, int]]    # part name → [start, end) vertex range
    source: str

    @property
    def polygon_starts(self) -> np.ndarray:
        return np.r_[0, np.cumsum(self.sizes)[:-1]].astype(np.int64)

    def part_of_vertex(self) -> np.ndarray:
        """(V,) index into ``list(parts)`` for every vertex."""
        out = np.empty(len(self.vertices), np.int32)
        for i, (a, b) in enumerate(self.parts.values()):
            out[a:b] = i
        return out

    def part_of_polygon(self) -> np.ndarray:
        """(F,) index into ``list(parts)``: the part of each polygon's first corner (parts share no polygon)."""
        return self.part_of_vertex()[self.corners[self.polygon_starts]]

    def posed(self, weights: dict[str, float]) -> np.ndarray:
        """Vertex positions for expression weights (Blender's relative shape-key sum)."""
        out = self.vertices.astype(np.float64)
        for name, w in weights.items():
            out = out + float(w) * self.shapes[name]
        return out


@lru_cache(maxsize=2)
def load_head(path: str | None = None) -> HeadAsset:
    """Decode the asset (cached: the arrays are shared, never modify them)."""
    with np.load(path or ASSET, allow_pickle=False) as z:
        lo, step = z["neutral_lo"], z["neutral_step"]
        vertices = (z["neutral_q"].astype(np.float64) * step + lo).astype(np.float32)
        sizes = z["face_sizes"].astype(np.int32)
        corners = z["faces"].astype(np.int32)
        n = len(vertices)
        gaps, values = z["delta_gaps"].astype(np.int64), z["delta_values"].astype(np.float32)
        shapes: dict[str, np.ndarray] = {}
        at = 0
        for name, count, scale in zip(z["names"].tolist(), z["delta_counts"].tolist(), z["delta_scales"].tolist()):
            idx = np.cumsum(gaps[at:at + count]) - 1
            d = np.zeros((n, 3), np.float32)
            d[idx] = values[at:at + count] * np.float32(scale)
            shapes[str(name)] = d
            at += count
        names = [str(s) for s in z["part_names"].tolist()]
        starts = [int(s) for s in z["part_starts"].tolist()] + [n]
        parts = {name: (starts[i], starts[i + 1]) for i, name in enumerate(names)}
        for arr in (vertices, corners, sizes, *shapes.values()):
            arr.setflags(write=False)
        return HeadAsset(vertices=vertices, corners=corners, sizes=sizes, shapes=shapes,
                         landmarks68=z["landmarks68"].astype(np.int32), parts=parts, source=str(z["source"]))
