"""The demo head's design: dimensions, materials and the data it is built into (numpy only).

Units are metres; +Z is up and the face looks down -Y (Blender's front view), so
the character's *left* is +X.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..client.core import ARKIT_52

__all__ = ["ARKIT_52", "Eyeball", "HeadData"]

# ---------------------------------------------------------------------------- design
ORIGIN = np.array([0.0, -0.005, 0.0])           # ray-casting centre for the lower face and neck
ORIGIN_HIGH = np.array([0.0, -0.030, 0.022])    # ... for the skull and eyes: sees under the brow
EYE_CENTRE = np.array([0.032, -0.071, 0.026])   # left eye (+X); the right one is mirrored
EYE_RADIUS = 0.0118                              # eyeball
LID_RADIUS = EYE_RADIUS + 0.0017                 # lids slide on this sphere
JAW_PIVOT = np.array([0.0, -0.006, 0.004])       # temporomandibular joint axis (along X)
JAW_OPEN_DEG = 23.0
MOUTH_Z = -0.046                                 # lip contact line
MOUTH_HALF_WIDTH = 0.0245
NECK_BOTTOM = -0.17

MATERIALS = ("Skin", "MouthInside", "Teeth", "EyeSocket")
EYE_MATERIALS = ("Sclera", "Iris", "Pupil")
#: flat base colours (linear RGBA); the skin's lips, brows and hair are painted per vertex
MATERIAL_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "Skin": (0.80, 0.52, 0.40, 1.0),
    "MouthInside": (0.22, 0.035, 0.045, 1.0),
    "Teeth": (0.86, 0.83, 0.75, 1.0),
    "EyeSocket": (0.30, 0.10, 0.09, 1.0),
    "Sclera": (0.92, 0.90, 0.86, 1.0),
    "Iris": (0.13, 0.28, 0.45, 1.0),
    "Pupil": (0.01, 0.01, 0.01, 1.0),
}
LIP = np.array([0.60, 0.22, 0.20])
BROW = np.array([0.10, 0.06, 0.04])
HAIR = np.array([0.085, 0.05, 0.032])
BLUSH = np.array([0.80, 0.42, 0.34])

N_COLUMNS = 104  # around the head (even: column 0 is the front midline)
MOUTH_RINGS = 4  # rings of the mouth pocket behind the lips
EYE_RINGS = 2    # rings of each eye pocket behind the lids


@dataclass
class Eyeball:
    """A separate eyeball mesh (child object in Blender), centred at ``centre``."""

    name: str
    centre: np.ndarray
    radius: float
    vertices: np.ndarray          # (n, 3) local to ``centre``
    faces: list[tuple[int, ...]]
    face_materials: np.ndarray    # index into EYE_MATERIALS


@dataclass
class HeadData:
    """Everything the Blender side (and the tests) need; positions in metres."""

    vertices: np.ndarray                      # (V, 3) float32
    faces: list[tuple[int, ...]]              # polygons (quads, a few triangles)
    face_materials: np.ndarray                # (F,) index into MATERIALS
    colours: np.ndarray                       # (V, 4) float32 linear RGBA skin paint (lips, brows, hair)
    shape_keys: dict[str, np.ndarray]         # ARKit name → (V, 3) float32 offsets
    vertex_groups: dict[str, tuple[np.ndarray, np.ndarray]]  # name → (indices, weights)
    landmarks: dict[str, int]                 # name → vertex index
    mirror: np.ndarray                        # (V,) index of the X-mirrored vertex
    eyes: list[Eyeball] = field(default_factory=list)
    materials: tuple[str, ...] = MATERIALS

    def posed(self, weights: dict[str, float]) -> np.ndarray:
        """Vertex positions for shape-key weights (Blender's relative-key sum)."""
        out = self.vertices.astype(np.float64).copy()
        for name, w in weights.items():
            out += float(w) * self.shape_keys[name]
        return out

    def lip_gap(self, weights: dict[str, float] | None = None) -> float:
        """Signed vertical distance between the lip centres (negative: lips pass through)."""
        p = self.posed(weights or {})
        up, lo = p[self.landmarks["upper_lip_centre"]], p[self.landmarks["lower_lip_centre"]]
        return float(up[2] - lo[2])

    def mouth_width(self, weights: dict[str, float] | None = None) -> float:
        p = self.posed(weights or {})
        return float(np.linalg.norm(p[self.landmarks["mouth_corner_left"]] - p[self.landmarks["mouth_corner_right"]]))

    def lid_gap(self, side: str = "left", weights: dict[str, float] | None = None) -> float:
        p = self.posed(weights or {})
        up, lo = p[self.landmarks[f"eyelid_upper_{side}"]], p[self.landmarks[f"eyelid_lower_{side}"]]
        return float(up[2] - lo[2])


@dataclass
class KeyContext:
    """What the shape-key and paint builders read: positions and per-vertex labels of the head."""

    P: np.ndarray
    keys: list
    idx: dict
    mirror: np.ndarray
    faces: list
    rowc: np.ndarray
    colc: np.ndarray
    row_m: int
    row_e: int
    mouth_cols: list
    eye_cols: list
    lip_side: np.ndarray
    lid_side: np.ndarray
    mouth_ring: np.ndarray
    eye_ring: np.ndarray
    ring_no: np.ndarray
    rim: np.ndarray
    is_grid: np.ndarray
    landmarks: dict
