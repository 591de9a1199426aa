"""How the demo head is split and coloured (numpy only): the head mesh, two eyeballs, materials, skin paint.

The asset is one mesh; Blender gets the head (face, neck, mouth, teeth, gums and tongue,
eye sockets: everything the expressions move) and each eyeball as a child object whose
origin is the eye's centre, so it can turn with the gaze channels. Colours are per polygon
(one material per part, the eyeball's iris and pupil by angle from its axis) plus soft
painted lips and brows on the skin, found from the 68 facial landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .asset import INNER_LIP, OUTER_LIP, HeadAsset

MATERIALS = ("Skin", "MouthInside", "EyeSocket", "Gums", "Teeth")
EYE_MATERIALS = ("Sclera", "Iris", "Pupil")
#: linear RGBA base colours (Workbench shows them as vertex colours, EEVEE through the materials)
MATERIAL_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "Skin": (0.76, 0.46, 0.33, 1.0),
    "MouthInside": (0.25, 0.045, 0.05, 1.0),
    "EyeSocket": (0.55, 0.22, 0.20, 1.0),
    "Gums": (0.62, 0.20, 0.20, 1.0),
    "Teeth": (0.86, 0.82, 0.72, 1.0),
    "Sclera": (0.90, 0.88, 0.84, 1.0),
    "Iris": (0.16, 0.30, 0.42, 1.0),
    "Pupil": (0.01, 0.01, 0.01, 1.0),
}
ROUGHNESS = {"Skin": 0.5, "MouthInside": 0.6, "EyeSocket": 0.4, "Gums": 0.35, "Teeth": 0.25,
             "Sclera": 0.15, "Iris": 0.1, "Pupil": 0.05}
PART_MATERIAL = {"face": "Skin", "head_neck": "Skin", "mouth_socket": "MouthInside",
                 "eye_socket_left": "EyeSocket", "eye_socket_right": "EyeSocket",
                 "gums_tongue": "Gums", "teeth": "Teeth"}
EYES = (("eyeball_left", "Eye.L", "Left"), ("eyeball_right", "Eye.R", "Right"))
LIP = np.array([0.50, 0.20, 0.19])
BROW = np.array([0.16, 0.095, 0.06])
#: iris and pupil edges, degrees from the eyeball's axis: between the mesh's rings of vertices
#: (pupil rim at 7.5°, iris from 9.3° to 27.1°, the limbus groove at 30.3°)
IRIS_DEG, PUPIL_DEG, BACK_DEG = 28.5, 8.4, 110.0


@dataclass(frozen=True)
class MeshData:
    vertices: np.ndarray       # (V, 3) float32, in the object's frame
    corners: np.ndarray        # (C,) int32
    sizes: np.ndarray          # (F,) int32
    materials: np.ndarray      # (F,) int32 index into ``names``
    names: tuple[str, ...]


@dataclass(frozen=True)
class Eye:
    mesh: MeshData
    name: str                  # object suffix: Eye.L / Eye.R
    side: str                  # Left / Right: the ARKit suffix of its gaze channels
    centre: np.ndarray         # (3,) in the head's frame; the mesh is relative to it


@dataclass(frozen=True)
class HeadLook:
    head: MeshData
    paint: np.ndarray                 # (V, 4) per-vertex skin colour (lips and brows painted)
    shapes: dict[str, np.ndarray]     # name → (V, 3) offsets of the head mesh's vertices
    eyes: tuple[Eye, ...]
    face_centre: np.ndarray           # (3,) between the eyes and the mouth: where a portrait camera aims


def sphere_fit(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through ``points``: (centre, radius)."""
    p = np.asarray(points, np.float64)
    a = np.c_[2 * p, np.ones(len(p))]
    x = np.linalg.lstsq(a, (p ** 2).sum(1), rcond=None)[0]
    return x[:3], float(np.sqrt(x[3] + x[:3] @ x[:3]))


def _sub_mesh(asset: HeadAsset, first: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corners, sizes and polygon indices of the polygons inside vertices [first, end), re-indexed."""
    starts = asset.polygon_starts
    first_corner = asset.corners[starts]
    polys = np.nonzero((first_corner >= first) & (first_corner < end))[0]
    sizes = asset.sizes[polys]
    take = np.concatenate([np.arange(starts[p], starts[p] + s) for p, s in zip(polys, sizes)])
    return (asset.corners[take] - first).astype(np.int32), sizes, polys


def _polygon_centres(vertices: np.ndarray, corners: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    poly = np.repeat(np.arange(len(sizes)), sizes)
    sums = np.zeros((len(sizes), 3))
    np.add.at(sums, poly, vertices[corners])
    return sums / sizes[:, None]


def eye_axis(local: np.ndarray, cone_deg: float = 35.0) -> np.ndarray:
    """The eyeball's own axis: the mean direction of its front cap, refined from -Y (where the
    face looks). The mesh's iris and pupil are rings around it (ICT's eyes turn ~5° outwards)."""
    u = local / np.linalg.norm(local, axis=1, keepdims=True)
    axis = np.array([0.0, -1.0, 0.0])
    for _ in range(5):
        cap = u[u @ axis > np.cos(np.radians(cone_deg))]
        axis = cap.mean(0) / np.linalg.norm(cap.mean(0))
    return axis


def _eye(asset: HeadAsset, part: str, name: str, side: str) -> Eye:
    a, b = asset.parts[part]
    verts = asset.vertices[a:b].astype(np.float64)
    centre, _ = sphere_fit(verts)
    corners, sizes, _ = _sub_mesh(asset, a, b)
    local = verts - centre
    axis = eye_axis(local)
    dirs = _polygon_centres(local, corners, sizes)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(dirs @ axis, -1, 1)))
    # the pupil is an opening in ICT's eyeball: what shows through it is the ball's back, kept dark
    # (the socket hides the back from everywhere else)
    mats = np.where((angle < PUPIL_DEG) | (angle > BACK_DEG), 2, np.where(angle < IRIS_DEG, 1, 0)).astype(np.int32)
    return Eye(MeshData(local.astype(np.float32), corners, sizes, mats, EYE_MATERIALS), name, side, centre)


def catmull_rom(points: np.ndarray, closed: bool, steps: int = 8) -> np.ndarray:
    """A smooth curve through landmark points (the lip line is 12 points: straight segments show)."""
    p = np.asarray(points, np.float64)
    ext = np.vstack([p[-1:], p, p[:2]]) if closed else np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for i in range(len(p) if closed else len(p) - 1):
        p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.vstack(out + ([] if closed else [p[-1:]]))


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd test of 2-D points against a closed polygon."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xc)
    return inside


def _distance_to_polyline(line: np.ndarray, pts: np.ndarray) -> np.ndarray:
    best = np.full(len(pts), np.inf)
    for p0, p1 in zip(line[:-1], line[1:]):
        d = p1 - p0
        t = np.clip(((pts - p0) @ d) / max(float(d @ d), 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(pts - (p0 + t[:, None] * d), axis=1))
    return best


def _smooth(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0, 1)
    return t * t * (3 - 2 * t)


def skin_paint(asset: HeadAsset, n_vertices: int) -> np.ndarray:
    """Skin colour per vertex with soft-edged lips and brows (front view: x and z)."""
    v = asset.vertices[:n_vertices].astype(np.float64)
    lm = asset.vertices[asset.landmarks68].astype(np.float64)
    a, b = asset.parts["face"]
    on_face = np.zeros(n_vertices, bool)
    on_face[a:b] = True
    front = v[:, [0, 2]]
    outer = catmull_rom(lm[list(OUTER_LIP)][:, [0, 2]], closed=True)
    edge = _distance_to_polyline(np.vstack([outer, outer[:1]]), front)
    inside = _inside(outer, front)
    lips = on_face * np.where(inside, 1.0, 1.0 - _smooth(0.0, 0.0015, edge))
    inner = catmull_rom(lm[list(INNER_LIP)][:, [0, 2]], closed=True)
    lips = np.maximum(lips, on_face * _inside(inner, front))
    brows = np.zeros(n_vertices)
    for ids in (range(17, 22), range(22, 27)):
        line = catmull_rom(lm[list(ids)][:, [0, 2]] + np.array([0.0, 0.003]), closed=False)
        brows = np.maximum(brows, 1.0 - _smooth(0.0012, 0.0035, _distance_to_polyline(line, front)))
    brows *= on_face * (v[:, 1] < lm[list(range(17, 27)), 1].max() + 0.008)
    skin = np.array(MATERIAL_COLOURS["Skin"][:3])
    c = np.tile(skin, (n_vertices, 1))
    for w, col in ((lips, LIP), (0.75 * brows, BROW)):
        c = c * (1 - w[:, None]) + col[None, :] * w[:, None]
    out = np.ones((n_vertices, 4), np.float32)
    out[:, :3] = c
    return out


def build_look(asset: HeadAsset) -> HeadLook:
    """Split the asset into the head mesh and two eyeballs, with materials and paint."""
    n_head = min(asset.parts[p][0] for p, _, _ in EYES)
    if any(asset.parts[p][1] > n_head for p in PART_MATERIAL):
        raise ValueError("the eyeballs must be the asset's last vertices")
    corners, sizes, polys = _sub_mesh(asset, 0, n_head)
    part_names = list(asset.parts)
    mats = np.array([MATERIALS.index(PART_MATERIAL[part_names[p]]) for p in asset.part_of_polygon()[polys]], np.int32)
    head = MeshData(asset.vertices[:n_head], corners, sizes, mats, MATERIALS)
    shapes = {k: v[:n_head] for k, v in asset.shapes.items()}
    eyes = tuple(_eye(asset, part, name, side) for part, name, side in EYES)
    lm = asset.vertices[asset.landmarks68].astype(np.float64)
    face_centre = 0.5 * (lm[36:48].mean(0) + lm[48:68].mean(0))
    return HeadLook(head, skin_paint(asset, n_head), shapes, eyes, face_centre)
