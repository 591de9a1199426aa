"""The demo head as pure data (numpy only, no bpy): mesh, 52 ARKit shape keys, landmarks.

Why procedural: the add-on must show real lip sync in one click without shipping a
third-party asset. The head is sculpted as a signed-distance field (smooth unions of
ellipsoids) and a latitude/longitude quad grid is shrink-wrapped onto it by casting
rays from a point inside the skull. The mouth and the eyes are slits cut into the
grid (the rows are split into an upper and a lower rim) whose rims are extruded
inwards into closed pockets, so the surface stays closed and manifold while the
lips and the lids can part and meet. Every shape key is a smooth displacement field
(compact falloffs, a jaw rotation about the joint, lid rotations about the eye
centre); right-hand keys are exact mirror images of the left-hand ones.

Units are metres; +Z is up and the face looks down -Y (Blender's front view), so
the character's *left* is +X.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np


def _arkit_names() -> tuple[str, ...]:
    """ARKIT_52 from the shared stdlib module (inside the extension, or a checkout)."""
    pkg = __package__ or ""
    for mod in ([pkg + ".inference_core.shared.channels"] if pkg else []) + ["inference_core.shared.channels"]:
        try:
            return tuple(importlib.import_module(mod).ARKIT_52)
        except ImportError:
            continue
    raise ImportError("inference_core.shared.channels (ARKIT_52) is not importable")


ARKIT_52: tuple[str, ...] = _arkit_names()

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
_LIP = np.array([0.60, 0.22, 0.20])
_BROW = np.array([0.10, 0.06, 0.04])
_HAIR = np.array([0.085, 0.05, 0.032])
_BLUSH = np.array([0.80, 0.42, 0.34])

N_COLUMNS = 104  # around the head (even: column 0 is the front midline)


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


# ------------------------------------------------------------------ distance field
def _ell(p: np.ndarray, c, r) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid (good near the surface)."""
    r = np.asarray(r, float)
    q = (p - np.asarray(c, float)) / r
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / r, axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def _capsule(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a = np.asarray(a, float)
    ba = np.asarray(b, float) - a
    pa = p - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(pa - h[..., None] * ba, axis=-1) - r


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth union (polynomial smooth minimum): blends shapes without creases."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    return -_smin(-a, -b, k)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (metres, negative inside) of the sculpted head; symmetric in X."""
    pa = p.copy()
    pa[..., 0] = np.abs(pa[..., 0])
    d = _ell(p, (0, 0.008, 0.032), (0.074, 0.098, 0.093))                       # cranium
    d = _smin(d, _ell(p, (0, -0.052, 0.062), (0.060, 0.043, 0.045)), 0.02)     # forehead
    d = _smin(d, _ell(p, (0, -0.045, -0.010), (0.063, 0.050, 0.046)), 0.03)     # mid face
    d = _smin(d, _ell(p, (0, -0.032, -0.050), (0.057, 0.062, 0.048)), 0.03)     # jaw
    d = _smin(d, _ell(pa, (0.045, -0.008, -0.046), (0.014, 0.024, 0.026)), 0.02)  # jaw angles
    d = _smin(d, _ell(pa, (0.038, -0.050, -0.020), (0.024, 0.030, 0.026)), 0.025)  # cheeks
    d = _smin(d, _ell(p, (0, -0.080, -0.083), (0.021, 0.016, 0.017)), 0.016)    # chin
    neck = _ell(p * np.array([1, 1, 0]), (0, 0.018, 0), (0.056, 0.054, 1.0))
    neck = _smax(neck, -(p[..., 2] - NECK_BOTTOM), 0.012)
    neck = np.maximum(neck, p[..., 2] + 0.02)  # ends inside the skull
    d = _smin(d, neck, 0.03)
    d = _smin(d, _ell(p, (0, -0.078, 0.048), (0.056, 0.019, 0.014)), 0.016)     # brow ridge
    d = _smin(d, _ell(pa, (0.045, -0.060, 0.008), (0.022, 0.020, 0.016)), 0.02)  # cheekbones
    d = _smin(d, _ell(p, (0, -0.070, -0.045), (0.034, 0.026, 0.030)), 0.02)     # muzzle
    d = _smax(d, -_ell(pa, (0.032, -0.090, 0.029), (0.020, 0.020, 0.014)), 0.008)  # eye sockets
    d = _smin(d, np.linalg.norm(pa - EYE_CENTRE, axis=-1) - LID_RADIUS, 0.004)  # lids over the eyeball
    d = _smin(d, _capsule(p, (0, -0.086, 0.036), (0, -0.104, -0.006), 0.0072), 0.012)  # nose bridge
    d = _smin(d, _ell(p, (0, -0.101, -0.012), (0.012, 0.011, 0.0105)), 0.008)   # nose tip
    d = _smin(d, _ell(pa, (0.0135, -0.091, -0.018), (0.0085, 0.009, 0.0075)), 0.006)  # nostril wings
    d = _smin(d, _ell(p, (0, -0.0885, MOUTH_Z + 0.0060), (0.025, 0.0088, 0.0066)), 0.004)  # upper lip
    d = _smin(d, _ell(p, (0, -0.0865, MOUTH_Z - 0.0066), (0.0225, 0.0092, 0.0070)), 0.004)  # lower lip
    d = _smin(d, _ell(pa, (0.074, 0.010, 0.012), (0.010, 0.019, 0.030)), 0.008)  # ears
    return d


def _origin(phi: np.ndarray, phi_e: float) -> np.ndarray:
    """Ray origin per polar angle: high and forward down to just below the eyes, so the
    upper lids are not hidden behind the brow, then sliding back to ORIGIN so the chin
    and the throat are seen from behind. Moves with the sweep, so rays never cross."""
    s = 1.0 - _smoothstep(phi_e + 0.09, phi_e + 0.42, np.asarray(phi, float))
    return ORIGIN + s[..., None] * (ORIGIN_HIGH - ORIGIN)


def _cast(dirs: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """Outermost surface point along each ray (march inwards, then bisect)."""
    n = len(dirs)
    r_out = np.full(n, 0.26)
    r_in = np.zeros(n)
    found = np.zeros(n, bool)
    for r in np.arange(0.26, 0.0, -0.0015):
        inside = head_sdf(origins + dirs * r) < 0
        new = inside & ~found
        r_in[new] = r
        r_out[new] = r + 0.0015
        found |= new
        if found.all():
            break
    for _ in range(22):
        mid = 0.5 * (r_in + r_out)
        inside = head_sdf(origins + dirs * mid[:, None]) < 0
        r_in = np.where(inside, mid, r_in)
        r_out = np.where(inside, r_out, mid)
    return origins + dirs * (0.5 * (r_in + r_out))[:, None]


def _dirs(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """θ = 0 looks down -Y (front), θ > 0 towards +X; φ from +Z (top) to π (bottom)."""
    s = np.sin(phi)
    return np.stack([s * np.sin(theta), -s * np.cos(theta), np.cos(phi)], -1)


def _warp(density, lo: float, hi: float, n: int) -> np.ndarray:
    """n+1 samples from lo to hi, spaced inversely to ``density`` (denser where it is high)."""
    x = np.linspace(lo, hi, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density(x[1:]) + density(x[:-1])) * np.diff(x))])
    return np.interp(np.linspace(0, cdf[-1], n + 1), cdf, x)


def _direction_angles(p: np.ndarray, origin: np.ndarray = ORIGIN) -> tuple[float, float]:
    d = p - origin
    return float(np.arctan2(d[0], -d[1])), float(np.arctan2(np.hypot(d[0], d[1]), d[2]))


def _wend(d: np.ndarray) -> np.ndarray:
    """Compact smooth falloff: 1 at d=0, 0 with zero slope at d>=1."""
    t = np.clip(1.0 - d * d, 0.0, 1.0)
    return t * t * t


def _bump(p: np.ndarray, c, r) -> np.ndarray:
    return _wend(np.linalg.norm((p - np.asarray(c, float)) / np.asarray(r, float), axis=-1))


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _rot_x(p: np.ndarray, centre: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Rotate points about the X axis through ``centre`` by per-point angles (radians; + lowers the front, -Y side)."""
    q = p - centre
    c, s = np.cos(ang), np.sin(ang)
    y = c * q[:, 1] - s * q[:, 2]
    z = s * q[:, 1] + c * q[:, 2]
    return np.stack([q[:, 0], y, z], -1) + centre


# ------------------------------------------------------------------ construction
class _Builder:
    def __init__(self) -> None:
        self.keys: list[tuple] = []
        self.index: dict[tuple, int] = {}
        self.faces: list[tuple[tuple, ...]] = []
        self.face_mat: list[int] = []

    def v(self, key: tuple) -> int:
        if key not in self.index:
            self.index[key] = len(self.keys)
            self.keys.append(key)
        return self.index[key]

    def face(self, keys: list[tuple], mat: int = 0) -> None:
        out: list[tuple] = []
        for k in keys:  # drop repeats (collapsed corners)
            if not out or out[-1] != k:
                out.append(k)
        if len(out) > 1 and out[0] == out[-1]:
            out.pop()
        for k in out:
            self.v(k)
        self.faces.append(tuple(out))
        self.face_mat.append(mat)


def _mirror_col(c: int) -> int:
    return (N_COLUMNS - c) % N_COLUMNS


def _mirror_key(k: tuple) -> tuple:
    kind = k[0]
    if kind == "g":
        return ("g", k[1], _mirror_col(k[2]))
    if kind in ("top", "bot"):
        return k
    if kind in ("mdup", "edup"):
        return (kind, _mirror_col(k[1]))
    if kind in ("mring", "ering"):
        return (kind, k[1], k[2], _mirror_col(k[3]))
    raise ValueError(k)


def _slit(b: _Builder, row: int, cols: list[int], dup: str, ring: str, n_rings: int,
          inner_mat: list[int]) -> None:
    """Inner pocket behind a slit along ``row`` between corner columns cols[0] and cols[-1]."""
    m = len(cols) - 1

    def U(k: int, i: int) -> tuple:
        c = cols[i]
        if k == 0:
            return ("g", row, c)
        return (ring, k, "C" if i in (0, m) else "U", c)

    def L(k: int, i: int) -> tuple:
        c = cols[i]
        if k == 0:
            return ("g", row, c) if i in (0, m) else (dup, c)
        return (ring, k, "C" if i in (0, m) else "L", c)

    for k in range(1, n_rings + 1):
        for i in range(m):
            b.face([U(k - 1, i + 1), U(k - 1, i), U(k, i), U(k, i + 1)], inner_mat[k - 1])
            b.face([L(k - 1, i), L(k - 1, i + 1), L(k, i + 1), L(k, i)], inner_mat[k - 1])
    for i in range(m):
        b.face([U(n_rings, i + 1), U(n_rings, i), L(n_rings, i), L(n_rings, i + 1)], inner_mat[-1])


def _span(theta: np.ndarray, lo: float, hi: float) -> list[int]:
    """Grid columns (as signed indices wrapped mod N) nearest to the angles lo..hi."""
    signed = np.where(theta > np.pi, theta - 2 * np.pi, theta)
    a = int(np.argmin(np.abs(signed - lo)))
    b = int(np.argmin(np.abs(signed - hi)))
    return [c % N_COLUMNS for c in range(a if a < N_COLUMNS // 2 else a - N_COLUMNS,
                                         (b if b < N_COLUMNS // 2 else b - N_COLUMNS) + 1)]


MOUTH_RINGS = 4
EYE_RINGS = 2


def _grid_angles() -> tuple[np.ndarray, np.ndarray, int, int]:
    s = np.arange(N_COLUMNS) / N_COLUMNS
    theta = 2 * np.pi * s - 0.62 * np.sin(2 * np.pi * s)  # ~4x denser at the front than the back
    _, phi_m = _direction_angles(np.array([0.0, -0.095, MOUTH_Z]))
    _, phi_e = _direction_angles(EYE_CENTRE, ORIGIN_HIGH)
    deg = np.pi / 180

    def density(x: np.ndarray) -> np.ndarray:
        band = _smoothstep(40 * deg, 60 * deg, x) * (1 - _smoothstep(150 * deg, 165 * deg, x))
        return (0.45 + 1.1 * band + 1.5 * np.exp(-((x - phi_m) / (9 * deg)) ** 2)
                + 1.2 * np.exp(-((x - phi_e) / (7 * deg)) ** 2))

    # rows: a knot exactly at the eye row and at the mouth row
    def count(a: float, b: float) -> float:
        xs = np.linspace(a, b, 400)
        return float(np.trapz(density(xs), xs))

    total = 78
    parts = [(0.0, phi_e), (phi_e, phi_m), (phi_m, np.pi)]
    mass = np.array([count(a, b) for a, b in parts])
    n = np.maximum(2, np.round(total * mass / mass.sum())).astype(int)
    rows = np.concatenate([_warp(density, a, b, k)[1:] for (a, b), k in zip(parts, n)])[:-1]
    row_e = int(n[0]) - 1
    row_m = int(n[0] + n[1]) - 1
    return theta, rows, row_e, row_m


def _lid_profile(t: np.ndarray, peak: float) -> np.ndarray:
    """Almond opening along the slit: 0 at the corners, 1 at ``peak``."""
    t = np.clip(t, 0.0, 1.0)
    u = np.where(t < peak, 0.5 * t / peak, 0.5 + 0.5 * (t - peak) / (1 - peak))
    return np.sin(np.pi * u) ** 0.85


@lru_cache(maxsize=2)
def _build_cached() -> HeadData:
    theta, phi, row_e, row_m = _grid_angles()
    n_rows = len(phi)
    deg = np.pi / 180
    th_mouth = np.arctan2(MOUTH_HALF_WIDTH, 0.092)
    mouth_cols = _span(theta, -th_mouth, th_mouth)
    e_in = EYE_CENTRE + np.array([-0.0118, -0.004, -0.0005])
    e_out = EYE_CENTRE + np.array([0.0115, 0.004, 0.0012])
    eye_cols = _span(theta, _direction_angles(e_in, ORIGIN_HIGH)[0], _direction_angles(e_out, ORIGIN_HIGH)[0])
    eye_cols_r = [_mirror_col(c) for c in reversed(eye_cols)]

    b = _Builder()
    b.v(("top",))
    for r in range(n_rows):
        for c in range(N_COLUMNS):
            b.v(("g", r, c))
    mouth_inner = set(mouth_cols[1:-1])
    eye_inner = set(eye_cols[1:-1]) | set(eye_cols_r[1:-1])
    for c in range(N_COLUMNS):
        c1 = (c + 1) % N_COLUMNS
        b.face([("top",), ("g", 0, c), ("g", 0, c1)])
        for r in range(n_rows - 1):
            lo: list[tuple] = [("g", r + 1, c), ("g", r + 1, c1)]
            up: list[tuple] = [("g", r, c), ("g", r, c1)]
            if r == row_m:
                up = [("mdup", cc) if cc in mouth_inner else ("g", r, cc) for cc in (c, c1)]
            if r == row_e:
                up = [("edup", cc) if cc in eye_inner else ("g", r, cc) for cc in (c, c1)]
            b.face([up[0], lo[0], lo[1], up[1]])
        b.face([("bot",), ("g", n_rows - 1, c1), ("g", n_rows - 1, c)])
    mi = MATERIALS.index
    _slit(b, row_m, mouth_cols, "mdup", "mring", MOUTH_RINGS,
          [mi("Skin"), mi("MouthInside"), mi("Teeth"), mi("MouthInside")])
    for cols in (eye_cols, eye_cols_r):
        _slit(b, row_e, cols, "edup", "ering", EYE_RINGS, [mi("EyeSocket"), mi("EyeSocket")])

    keys = b.keys
    V = len(keys)
    idx = b.index
    mirror = np.array([idx[_mirror_key(k)] for k in keys])

    # ---- grid positions: ray directions, with the eye slits opened into an almond
    dirs = np.zeros((V, 3))
    rowc = np.full(V, -1)
    colc = np.full(V, -1)
    for i, k in enumerate(keys):
        if k[0] == "g":
            rowc[i], colc[i] = k[1], k[2]
        elif k[0] in ("mdup", "edup"):
            rowc[i], colc[i] = (row_m if k[0] == "mdup" else row_e), k[1]
    is_grid = rowc >= 0
    ph = np.where(is_grid, phi[np.clip(rowc, 0, None)], 0.0)
    th = np.where(is_grid, theta[np.clip(colc, 0, None)], 0.0)
    signed_th = np.where(th > np.pi, th - 2 * np.pi, th)
    lower_side = np.array([k[0] in ("mdup", "edup") for k in keys]) | (is_grid & (rowc > row_e))
    th_e = [theta[eye_cols[0]], theta[eye_cols[-1]]]
    t_eye = (np.abs(signed_th) - th_e[0]) / (th_e[1] - th_e[0])
    in_eye_cols = (t_eye > 0) & (t_eye < 1)
    ph_e = phi[row_e]
    open_up, open_lo, reach = 5.9 * deg, 4.5 * deg, 12 * deg
    a_up = open_up * _lid_profile(t_eye, 0.45)
    a_lo = open_lo * _lid_profile(t_eye, 0.58)
    up_sel = is_grid & in_eye_cols & ~lower_side & (ph <= ph_e) & (ph > ph_e - reach)
    lo_sel = is_grid & in_eye_cols & lower_side & (ph >= ph_e) & (ph < ph_e + reach)
    ph = ph - np.where(up_sel, a_up * (1 - (ph_e - ph) / reach), 0.0)
    ph = ph + np.where(lo_sel, a_lo * (1 - (ph - ph_e) / reach), 0.0)
    gi = np.flatnonzero(is_grid)
    dirs[gi] = _dirs(th[gi], ph[gi])
    P = np.zeros((V, 3))
    P[gi] = _cast(dirs[gi], _origin(ph[gi], phi[row_e]))
    P[idx[("top",)]] = _cast(np.array([[0.0, 0.0, 1.0]]), ORIGIN_HIGH[None])[0]
    P[idx[("bot",)]] = _cast(np.array([[0.0, 0.0, -1.0]]), ORIGIN[None])[0]

    # hair: a cap a few millimetres proud of the scalp above a hairline
    hair_line = np.interp(np.abs(signed_th), [0, 0.9, 1.5, 2.2, np.pi], [0.082, 0.064, 0.040, -0.005, -0.040])
    hz = _smoothstep(-0.004, 0.010, P[:, 2] - hair_line) * is_grid
    P += (dirs * (0.0045 * hz)[:, None])

    # ---- mouth pocket: rings roll in behind the lips, then open into a cavity
    def rim_of(k: tuple) -> int:
        kind, ring, part, c = k
        if kind == "mring":
            return idx[("g", row_m, c)] if part in ("U", "C") else idx[("mdup", c)]
        return idx[("g", row_e, c)] if part in ("U", "C") else idx[("edup", c)]

    side = np.zeros(V)  # +1 upper lip/lid, -1 lower, 0 corners / elsewhere
    ring_no = np.zeros(V, int)
    for i, k in enumerate(keys):
        if k[0] in ("mring", "ering"):
            side[i] = {"U": 1.0, "L": -1.0, "C": 0.0}[k[2]]
            ring_no[i] = k[1]
    mouth_ring = np.array([k[0] == "mring" for k in keys])
    eye_ring = np.array([k[0] == "ering" for k in keys])
    rim = np.array([rim_of(k) if k[0] in ("mring", "ering") else -1 for k in keys])
    depth = {1: 0.0035, 2: 0.009, 3: 0.022, 4: 0.036}
    lift = {1: 0.0032, 2: 0.0065, 3: 0.012, 4: 0.008}
    narrow = {1: 0.97, 2: 0.92, 3: 0.85, 4: 0.55}
    for i in np.flatnonzero(mouth_ring):
        k = ring_no[i]
        p = P[rim[i]].copy()
        p[0] *= narrow[k]
        p[1] += depth[k]
        p[2] += side[i] * lift[k] * (1.0 - (P[rim[i], 0] / MOUTH_HALF_WIDTH) ** 2 * 0.6)
        P[i] = p
    # ---- eye pockets: the lid edge tucks under the eyeball, then closes behind it
    for i in np.flatnonzero(eye_ring):
        ec = EYE_CENTRE * np.array([np.sign(P[rim[i], 0]), 1, 1])
        d = P[rim[i]] - ec
        d /= np.linalg.norm(d)
        if ring_no[i] == 1:
            P[i] = ec + d * (EYE_RADIUS - 0.0006)
        else:
            d2 = d + np.array([0, 1.6, 0])
            P[i] = ec + d2 / np.linalg.norm(d2) * EYE_RADIUS * 0.75
    # exact mirror symmetry
    flip = np.array([-1.0, 1.0, 1.0])
    P = 0.5 * (P + P[mirror] * flip)

    faces = [tuple(idx[k] for k in f) for f in b.faces]
    face_mat = np.array(b.face_mat, np.int32)

    # ---- per-vertex labels used by the shape keys
    mdup = np.array([k[0] == "mdup" for k in keys])
    lip_side = np.where(mouth_ring, side, 0.0) + np.where(mdup, -1.0, 0.0)
    # grid vertices: above/at the mouth row = upper (+1), below = lower (-1)
    lip_side += np.where(is_grid & ~mdup & (rowc <= row_m), 1.0, 0.0)
    lip_side += np.where(is_grid & ~mdup & (rowc > row_m) & (rowc >= 0), -1.0, 0.0)
    corner_l = idx[("g", row_m, mouth_cols[-1])]
    corner_r = idx[("g", row_m, mouth_cols[0])]
    lip_side[[corner_l, corner_r]] = 0.0
    lid_side = np.where(eye_ring, side, 0.0)
    edup = np.array([k[0] == "edup" for k in keys])
    lid_side += np.where(edup, -1.0, 0.0)
    near_eye = is_grid & ~edup
    lid_side += np.where(near_eye & (rowc <= row_e), 1.0, 0.0) - np.where(near_eye & (rowc > row_e), 1.0, 0.0)
    for c in (eye_cols[0], eye_cols[-1], eye_cols_r[0], eye_cols_r[-1]):
        lid_side[idx[("g", row_e, c)]] = 0.0

    mid_eye = eye_cols[len(eye_cols) // 2]
    mid_mouth = 0
    landmarks = {
        "upper_lip_centre": idx[("g", row_m, mid_mouth)],
        "lower_lip_centre": idx[("mdup", mid_mouth)],
        "mouth_corner_left": corner_l,
        "mouth_corner_right": corner_r,
        "eyelid_upper_left": idx[("g", row_e, mid_eye)],
        "eyelid_lower_left": idx[("edup", mid_eye)],
        "eyelid_upper_right": idx[("g", row_e, _mirror_col(mid_eye))],
        "eyelid_lower_right": idx[("edup", _mirror_col(mid_eye))],
        "eye_corner_inner_left": idx[("g", row_e, eye_cols[0])],
        "eye_corner_outer_left": idx[("g", row_e, eye_cols[-1])],
        "eye_corner_inner_right": idx[("g", row_e, eye_cols_r[-1])],
        "eye_corner_outer_right": idx[("g", row_e, eye_cols_r[0])],
        "nose_tip": int(np.argmin(np.where(is_grid & (np.abs(P[:, 0]) < 1e-9), P[:, 1], 1.0))),
        "chin": idx[("g", min(n_rows - 1, row_m + 1 + int(np.argmin(np.abs(
            P[[idx[("g", r, 0)] for r in range(row_m + 1, n_rows)], 2] + 0.082)))), 0)],
    }

    ctx = _KeyContext(P=P, keys=keys, idx=idx, mirror=mirror, faces=faces, rowc=rowc, colc=colc,
                      row_m=row_m, row_e=row_e, mouth_cols=mouth_cols, eye_cols=eye_cols,
                      lip_side=lip_side, lid_side=lid_side, mouth_ring=mouth_ring, eye_ring=eye_ring,
                      ring_no=ring_no, rim=rim, is_grid=is_grid, landmarks=landmarks)
    shape_keys, groups = _shape_keys(ctx)
    colours = _paint(ctx, hz)
    eyes = [_eyeball("Eye.L", EYE_CENTRE.copy()), _eyeball("Eye.R", EYE_CENTRE * flip)]
    return HeadData(vertices=P.astype(np.float32), faces=faces, face_materials=face_mat, colours=colours,
                    shape_keys=shape_keys, vertex_groups=groups, landmarks=landmarks,
                    mirror=mirror, eyes=eyes)


def build_head() -> HeadData:
    """Build (or reuse) the demo head. Deterministic: no randomness anywhere."""
    h = _build_cached()
    return HeadData(vertices=h.vertices.copy(), faces=list(h.faces), face_materials=h.face_materials.copy(),
                    colours=h.colours.copy(),
                    shape_keys={k: v.copy() for k, v in h.shape_keys.items()},
                    vertex_groups={k: (a.copy(), w.copy()) for k, (a, w) in h.vertex_groups.items()},
                    landmarks=dict(h.landmarks), mirror=h.mirror.copy(), eyes=list(h.eyes))


@dataclass
class _KeyContext:
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


def _vertex_normals(P: np.ndarray, faces: list) -> np.ndarray:
    n = np.zeros_like(P)
    for f in faces:
        f = np.asarray(f)
        c = np.cross(P[f[1]] - P[f[0]], P[f[-1]] - P[f[0]]) + (
            np.cross(P[f[-1]] - P[f[-2]], P[f[-3]] - P[f[-2]]) if len(f) == 4 else 0)
        n[f] += c
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _eyeball(name: str, centre: np.ndarray, n_ring: int = 32, n_seg: int = 16) -> Eyeball:
    """UV sphere whose pole looks forward (-Y), so the iris and pupil are rings of faces."""
    r = EYE_RADIUS
    a = np.linspace(0, np.pi, n_seg + 1)[1:-1]  # from the front pole backwards
    verts = [(0.0, -r, 0.0)]
    for ang in a:
        for j in range(n_ring):
            t = 2 * np.pi * j / n_ring
            verts.append((r * np.sin(ang) * np.cos(t), -r * np.cos(ang), r * np.sin(ang) * np.sin(t)))
    verts.append((0.0, r, 0.0))
    faces: list[tuple[int, ...]] = []
    mats: list[int] = []

    def mat(ang: float) -> int:
        return 2 if ang < 0.17 else (1 if ang < 0.50 else 0)

    back = len(verts) - 1
    for j in range(n_ring):
        faces.append((0, 1 + (j + 1) % n_ring, 1 + j))
        mats.append(2)
    for s in range(n_seg - 2):
        for j in range(n_ring):
            a0 = 1 + s * n_ring
            a1 = a0 + n_ring
            faces.append((a0 + j, a0 + (j + 1) % n_ring, a1 + (j + 1) % n_ring, a1 + j))
            mats.append(mat(0.5 * (a[s] + a[s + 1])))
    last = 1 + (n_seg - 2) * n_ring
    for j in range(n_ring):
        faces.append((back, last + j, last + (j + 1) % n_ring))
        mats.append(0)
    v = np.array(verts, np.float32)
    # the cornea: a slight bulge over the iris so highlights read as a real eye
    bulge = np.clip(1 - np.arccos(np.clip(-v[:, 1] / r, -1, 1)) / 0.55, 0, 1) ** 2
    v[:, 1] -= 0.0009 * bulge
    return Eyeball(name=name, centre=centre, radius=r, vertices=v, faces=faces, face_materials=np.array(mats))


def _paint(ctx: "_KeyContext", hair: np.ndarray) -> np.ndarray:
    """Per-vertex skin paint: soft-edged lips (with a cupid's bow), brow arches, a hair cap."""
    P = ctx.P
    x, y, z = np.abs(P[:, 0]), P[:, 1], P[:, 2]
    front = _smoothstep(-0.07, -0.082, y)
    # vermilion outline around the seam, in front of the face
    u = np.clip(x / (MOUTH_HALF_WIDTH * 1.04), 0, 1.5)
    top = (0.0088 * np.clip(1 - u ** 2.2, 0, 1) + 0.0013 * np.exp(-((u - 0.27) / 0.15) ** 2)
           - 0.0014 * np.exp(-(u / 0.09) ** 2))
    bot = 0.0105 * np.clip(1 - u ** 2.0, 0, 1)
    dz = z - MOUTH_Z
    inside = np.minimum(top - dz, dz + bot)
    lips = _smoothstep(-0.0006, 0.0012, inside) * front * (u < 1.0)
    lips = np.maximum(lips, (ctx.mouth_ring & (ctx.ring_no == 1)).astype(float))
    # brows: an arch above each eye, thinning outwards
    ub = np.clip((x - 0.007) / 0.05, 0, 1)
    centre = 0.0462 + 0.0062 * np.sin(np.pi * np.clip(ub * 1.15, 0, 1)) - 0.004 * ub
    thick = 0.0046 * (1.25 - 0.65 * ub)
    brows = (1 - _smoothstep(0.7, 1.15, np.abs(z - centre) / thick)) * _smoothstep(0.006, 0.011, x)
    brows *= 1 - _smoothstep(0.052, 0.060, x)
    brows *= _smoothstep(-0.045, -0.06, y)
    pa = P.copy()
    pa[:, 0] = x
    blush = 0.5 * _bump(pa, [0.042, -0.075, 0.0], [0.025, 0.04, 0.022])
    blush += 0.35 * _bump(P, [0, -0.108, -0.012], [0.014, 0.02, 0.014])
    skin = np.array(MATERIAL_COLOURS["Skin"][:3])
    c = skin[None, :] * (1 - blush[:, None]) + _BLUSH[None, :] * blush[:, None]
    for w, col in ((lips, _LIP), (brows * 0.92, _BROW), (hair, _HAIR)):
        c = c * (1 - w[:, None]) + col[None, :] * w[:, None]
    out = np.ones((len(P), 4), np.float32)
    out[:, :3] = c
    return out


def _shape_keys(ctx: _KeyContext) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    P = ctx.P
    V = len(P)
    x, y, z = P[:, 0], P[:, 1], P[:, 2]
    deg = np.pi / 180
    lip = ctx.lip_side
    lm = ctx.landmarks
    mc = P[lm["upper_lip_centre"]]
    corner = P[lm["mouth_corner_left"]]
    w_m = float(corner[0])
    normals = _vertex_normals(P, ctx.faces)
    inner = ctx.mouth_ring
    ringw = np.array([1.0, 1.0, 0.85, 0.5, 0.25])[ctx.ring_no] * inner

    # lateral lip factor: 1 at the centre, 0 at the corners and beyond (keeps the cheeks whole)
    lam = np.clip(1 - (np.abs(x) / w_m) ** 2, 0, 1)
    lam_soft = np.clip(1 - (np.abs(x) / (w_m + 0.01)) ** 2, 0, 1) ** 1.5
    near_mouth = _bump(P, mc + [0, 0.006, 0], [w_m + 0.02, 0.04, 0.03])
    upper_lip = _bump(P, mc + [0, 0.004, 0.004], [w_m + 0.012, 0.03, 0.017]) * (lip > 0)
    lower_lip = _bump(P, mc + [0, 0.004, -0.005], [w_m + 0.012, 0.03, 0.019]) * (lip < 0)
    upper_lip = np.maximum(upper_lip, (lip > 0) * inner * 1.0)
    lower_lip = np.maximum(lower_lip, (lip < 0) * inner * 1.0)

    # ---- jaw weight: rotates about the joint; lower lip/chin 1, upper lip 0, fades into the throat
    a = np.arctan2(JAW_PIVOT[2] - z, JAW_PIVOT[1] - y)  # 0 forward, +90° straight down
    a_m = np.arctan2(JAW_PIVOT[2] - MOUTH_Z, JAW_PIVOT[1] - mc[1])
    throat = 1 - _smoothstep(64 * deg, 100 * deg, a)
    neck = _smoothstep(-0.135, -0.10, z)
    behind = 1 - _smoothstep(0.0, 0.03, y - JAW_PIVOT[1])
    common = _smoothstep(a_m - 5 * deg, a_m + 14 * deg, a)
    sided = np.where(lip < 0, 1.0, np.where(lip > 0, 0.0, 0.5))
    lam_j = np.clip(1 - (np.abs(x) / (w_m * 1.25)) ** 2, 0, 1) * _bump(P, mc, [w_m * 1.3, 0.05, 0.03])
    w_jaw = (lam_j * sided + (1 - lam_j) * common) * throat * neck * behind
    rw = np.array([1.0, 1.0, 1.0, 0.85, 0.55])[ctx.ring_no]
    w_jaw = np.where(inner, np.where(lip < 0, rw, np.where(lip > 0, 0.0, 0.5 * rw)), w_jaw)
    w_jaw = np.where(ctx.eye_ring, 0.0, w_jaw)

    keys: dict[str, np.ndarray] = {}

    def rot_jaw(deg_: float, w: np.ndarray) -> np.ndarray:
        return _rot_x(P, JAW_PIVOT, deg_ * deg * w) - P

    jaw = rot_jaw(JAW_OPEN_DEG, w_jaw) + w_jaw[:, None] * np.array([0, -0.0025, 0])
    keys["jawOpen"] = jaw
    keys["jawForward"] = w_jaw[:, None] * np.array([0, -0.0065, 0.0005])
    keys["jawLeft"] = w_jaw[:, None] * np.array([0.0075, 0, 0]) + rot_jaw(0, w_jaw)

    # ---- lips meeting while the jaw is open: cancel the jaw's lip separation, upper lip helps 30%
    # per-vertex gap vector from its own column: measured from the rim pair
    col_gap = np.zeros((V, 3))
    for c in ctx.mouth_cols:
        iu = ctx.idx[("g", ctx.row_m, c)]
        il = ctx.idx.get(("mdup", c), iu)
        col_gap[ctx.colc == c] = jaw[il] - jaw[iu]
    for i in np.flatnonzero(inner):
        c = ctx.keys[i][3]
        iu = ctx.idx[("g", ctx.row_m, c)]
        il = ctx.idx.get(("mdup", c), iu)
        col_gap[i] = jaw[il] - jaw[iu]
    # whole lips travel (not just the seam), fading into the skin above / the chin below
    front_lip = _smoothstep(-0.06, -0.075, y)
    close_up = (1 - _smoothstep(0.007, 0.018, z - MOUTH_Z)) * front_lip * (lip > 0)
    close_lo = (1 - _smoothstep(0.009, 0.024, MOUTH_Z - z)) * front_lip * (lip < 0)
    close_up = np.where(inner, ringw * (lip > 0), close_up)
    close_lo = np.where(inner, ringw * (lip < 0), close_lo)
    share = 0.3
    keys["mouthClose"] = (share * close_up - (1 - share) * close_lo)[:, None] * col_gap

    # ---- rounding: pull the corners in, push the lips forward
    def narrow(amount: float, forward: float, part: float, open_up: float, open_lo: float) -> np.ndarray:
        f = _bump(P, mc + [0, 0.01, -0.002], [w_m + 0.022, 0.045, 0.03])
        off = np.zeros((V, 3))
        s = np.clip(np.abs(x) / w_m, 0, 1.6)
        off[:, 0] = -x * amount * f * np.clip(1.25 - 0.35 * s, 0, 1)
        lipf = np.maximum(_bump(P, mc + [0, 0.002, 0], [w_m + 0.008, 0.03, 0.022]), ringw)
        off[:, 1] = -forward * lipf * (0.55 + 0.45 * lam_soft)
        rim_open = lam * np.maximum(lipf, 0)
        off[:, 2] += np.where(lip > 0, open_up, np.where(lip < 0, -open_lo, 0.0)) * rim_open * part
        return off

    keys["mouthFunnel"] = narrow(0.22, 0.007, 1.0, 0.0042, 0.0060)
    keys["mouthFunnel"][:, 1] += -0.002 * lam * (np.abs(lip) > 0) * _bump(P, mc, [w_m, 0.01, 0.006])  # flare
    keys["mouthPucker"] = narrow(0.36, 0.0095, 0.0, 0, 0)

    # ---- one-sided corner moves (left = +X); right keys are mirrored below
    left = _smoothstep(-0.3 * w_m, 0.3 * w_m, x)

    def corner_move(vec, r=(0.022, 0.03, 0.02), lip_only=False) -> np.ndarray:
        f = _bump(P, corner + [0.002, 0.004, 0], r)
        if lip_only:
            f = f * near_mouth
        return (f * left)[:, None] * np.asarray(vec)

    keys["mouthSmileLeft"] = corner_move([0.0055, 0.0035, 0.0075], (0.028, 0.034, 0.026))
    keys["mouthSmileLeft"] += (_bump(P, corner + [0.008, -0.002, 0.014], [0.02, 0.02, 0.014]) * left)[:, None] * [0.001, -0.002, 0.002]
    keys["mouthFrownLeft"] = corner_move([0.0015, 0.0005, -0.0055], (0.022, 0.03, 0.024))
    keys["mouthDimpleLeft"] = corner_move([0.002, 0.0035, -0.0005], (0.018, 0.03, 0.018))
    keys["mouthStretchLeft"] = corner_move([0.0055, 0.001, -0.0022], (0.026, 0.03, 0.024))
    keys["mouthStretchLeft"] += (lower_lip * lam_soft * left)[:, None] * [0.0015, 0, -0.0015]
    half_l = left * near_mouth
    keys["mouthLeft"] = (_bump(P, mc + [0, 0.008, -0.002], [w_m + 0.04, 0.045, 0.032]))[:, None] * [0.0075, 0, 0]
    keys["mouthLowerDownLeft"] = (lower_lip * left * _bump(P, mc + [0.3 * w_m, 0, -0.004], [w_m * 1.3, 0.04, 0.03]))[:, None] * [0.0005, -0.001, -0.0062]
    keys["mouthUpperUpLeft"] = (upper_lip * left * _bump(P, mc + [0.3 * w_m, 0, 0.004], [w_m * 1.3, 0.04, 0.03]))[:, None] * [0.0, -0.0008, 0.006]
    press_u = upper_lip * (lip > 0) * half_l
    press_l = lower_lip * (lip < 0) * half_l
    dz_u = np.clip((z - MOUTH_Z) / 0.01, 0, 1)  # compress the red of the lip towards the seam
    dz_l = np.clip((MOUTH_Z - z) / 0.011, 0, 1)
    keys["mouthPressLeft"] = np.stack([np.zeros(V), 0.0012 * (press_u + press_l) * lam_soft,
                                       -0.0035 * press_u * dz_u + 0.0035 * press_l * dz_l], -1)

    # ---- symmetric lip keys
    roll_u = upper_lip * lam_soft
    roll_l = lower_lip * lam_soft
    keys["mouthRollUpper"] = np.stack([np.zeros(V), 0.0045 * roll_u * (1 - 0.3 * dz_u),
                                       -0.0045 * roll_u * dz_u + 0.0008 * roll_u * (1 - dz_u)], -1)
    keys["mouthRollLower"] = np.stack([np.zeros(V), 0.0048 * roll_l * (1 - 0.3 * dz_l),
                                       0.0048 * roll_l * dz_l - 0.0008 * roll_l * (1 - dz_l)], -1)
    chin = _bump(P, P[lm["chin"]] + [0, 0.004, 0.004], [0.03, 0.03, 0.026])
    keys["mouthShrugLower"] = (np.maximum(lower_lip * 0.9, chin * (lip < 0)))[:, None] * [0, -0.0018, 0.0042]
    keys["mouthShrugLower"] += (upper_lip * lam * 0.4)[:, None] * [0, -0.0008, 0.0015]
    keys["mouthShrugUpper"] = (upper_lip * lam_soft)[:, None] * [0, -0.0016, 0.0028]

    # ---- cheeks and nose
    puff = (_bump(P, [0.042, -0.06, -0.03], [0.028, 0.04, 0.03])
            + _bump(P * np.array([-1.0, 1.0, 1.0]), [0.042, -0.06, -0.03], [0.028, 0.04, 0.03]))
    keys["cheekPuff"] = normals * (0.0085 * puff)[:, None]
    keys["cheekPuff"][:, 1] += -0.0015 * near_mouth * (np.abs(lip) > 0)
    cheek_l = _bump(P, [0.036, -0.078, 0.004], [0.026, 0.03, 0.02])
    keys["cheekSquintLeft"] = cheek_l[:, None] * [0.0005, -0.0012, 0.0038]
    nose_l = _bump(P, [0.0135, -0.091, -0.016], [0.014, 0.03, 0.016])
    keys["noseSneerLeft"] = nose_l[:, None] * [0.0008, -0.0006, 0.0035]
    keys["noseSneerLeft"] += (upper_lip * left * 0.35)[:, None] * [0, 0, 0.003]
    keys["noseSneerLeft"] += (_bump(P, [0.016, -0.088, 0.04], [0.016, 0.03, 0.014]))[:, None] * [-0.0012, 0, -0.0018]

    # ---- tongue: the floor of the mouth slides forward between the lips
    tongue = inner * (lip <= 0) * np.array([0, 0, 0.6, 1.0, 0.6])[ctx.ring_no] * np.clip(1 - (np.abs(x) / (w_m * 0.8)) ** 2, 0, 1)
    keys["tongueOut"] = tongue[:, None] * [0, -0.024, 0.004] + (lower_lip * lam * 0.4)[:, None] * [0, -0.001, -0.0025]

    # ---- brows
    brow_in = _bump(P, [0.0, -0.09, 0.05], [0.03, 0.03, 0.026])
    keys["browInnerUp"] = brow_in[:, None] * [0, 0, 0.0055]
    keys["browInnerUp"] += ((_bump(P, [0.018, -0.09, 0.05], [0.014, 0.03, 0.016]) + _bump(P, [-0.018, -0.09, 0.05], [0.014, 0.03, 0.016])))[:, None] * [0, -0.0006, 0.002]
    brow_l = _bump(P, [0.03, -0.09, 0.05], [0.03, 0.035, 0.018]) * _smoothstep(-0.002, 0.006, x)
    keys["browDownLeft"] = brow_l[:, None] * [-0.0018, -0.0008, -0.0048]
    brow_out = _bump(P, [0.048, -0.075, 0.052], [0.024, 0.035, 0.02])
    keys["browOuterUpLeft"] = brow_out[:, None] * [0.0, 0.0, 0.0055]

    # ---- eyelids: rotations about the eye centre, per slit column (exact closure at the rim)
    eye_keys, eye_groups = _eye_keys(ctx)
    keys.update(eye_keys)
    keys["eyeSquintLeft"] = keys["eyeSquintLeft"] + 0.35 * keys["cheekSquintLeft"]

    # the lip pockets follow their rims for every key that did not place them explicitly
    explicit = {"jawOpen", "jawForward", "jawLeft", "mouthClose", "tongueOut"}
    for name, off in keys.items():
        if name in explicit or name.startswith("eye"):
            continue
        off[inner] = off[ctx.rim[inner]] * np.array([1.0, 1.0, 0.85, 0.5, 0.3])[ctx.ring_no[inner], None]

    # ---- mirror the left keys into right keys (exact)
    flip = np.array([-1.0, 1.0, 1.0])
    out: dict[str, np.ndarray] = {}
    for name in ARKIT_52:
        if name in keys:
            out[name] = keys[name]
        elif name.endswith("Right") and name[:-5] + "Left" in keys:
            out[name] = keys[name[:-5] + "Left"][ctx.mirror] * flip
        elif name == "mouthRight":
            out[name] = keys["mouthLeft"][ctx.mirror] * flip
        else:
            raise AssertionError(f"shape key {name} not built")
    for name in ("cheekPuff", "browInnerUp", "jawOpen", "jawForward", "mouthClose", "mouthFunnel",
                 "mouthPucker", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
                 "tongueOut"):  # symmetric keys: make them exactly so
        k = out[name]
        out[name] = 0.5 * (k + k[ctx.mirror] * flip)
    out = {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}

    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def group(name: str, w: np.ndarray) -> None:
        sel = np.flatnonzero(w > 1e-4)
        groups[name] = (sel.astype(np.int32), w[sel].astype(np.float32))

    group("jaw", w_jaw)
    group("lip_upper", np.clip(upper_lip * (lip > 0), 0, 1))
    group("lip_lower", np.clip(lower_lip * (lip < 0), 0, 1))
    group("mouth_inside", inner.astype(float))
    groups.update(eye_groups)
    return out, groups


def _eye_keys(ctx: _KeyContext) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Left-eye lid keys. Upper and lower lid vertices rotate about the eye centre's X axis."""
    P = ctx.P
    V = len(P)
    E = EYE_CENTRE
    cols = ctx.eye_cols
    deg = np.pi / 180
    left = P[:, 0] > 0
    q = P - E
    elev = np.arctan2(q[:, 2], -q[:, 1])  # elevation seen from the eye, 0 = straight ahead
    ups = np.array([ctx.idx[("g", ctx.row_e, c)] for c in cols])
    los = np.array([ctx.idx.get(("edup", c), ctx.idx[("g", ctx.row_e, c)]) for c in cols])
    e_up, e_lo = elev[ups], elev[los]
    # per-vertex column (grid and pocket vertices) → rim angles of that column
    col_of = np.full(V, -1)
    for i, k in enumerate(ctx.keys):
        if k[0] in ("g", "edup") and left[i]:
            col_of[i] = k[-1] if k[0] == "edup" else k[2]
        elif k[0] == "ering" and left[i]:
            col_of[i] = k[3]
    pos = {c: j for j, c in enumerate(cols)}
    j_of = np.array([pos.get(c, -1) for c in col_of])
    in_span = (j_of >= 0) & left
    jj = np.clip(j_of, 0, None)
    up_side = (ctx.lid_side > 0) & in_span
    lo_side = (ctx.lid_side < 0) & in_span
    # how far from the rim (in elevation) a vertex may be and still ride with the lid
    # the lid proper rides fully up to its crease, the skin above/below follows less
    f_up = np.where(ctx.eye_ring, 1.0, 1 - _smoothstep(8 * deg, 50 * deg, elev - e_up[jj]))
    f_lo = np.where(ctx.eye_ring, 1.0, 1 - _smoothstep(4 * deg, 26 * deg, e_lo[jj] - elev))
    dist_ok = np.where(ctx.eye_ring, 1.0, 1 - _smoothstep(LID_RADIUS + 0.0015, LID_RADIUS + 0.008,
                                                              np.linalg.norm(q, axis=1)))
    f_up = f_up * up_side * dist_ok
    f_lo = f_lo * lo_side * dist_ok

    def lids(up_to: np.ndarray, lo_to: np.ndarray, fu=f_up, fl=f_lo) -> np.ndarray:
        """Move upper rim to elevation up_to (per column), lower to lo_to; falloff above/below."""
        ang = -(np.where(up_side, (up_to - e_up)[jj] * fu, 0.0) + np.where(lo_side, (lo_to - e_lo)[jj] * fl, 0.0))
        return _rot_x(P, E, ang) - P

    meet = e_lo + 0.22 * (e_up - e_lo)
    keys = {}
    blink = lids(meet, meet)
    # exact seam: both rims land on the same point (the average of their rotated
    # positions); the correction fades over the lid so no edge near the rim is torn
    corr_u = np.zeros((len(cols), 3))
    corr_l = np.zeros((len(cols), 3))
    for j, (u, l) in enumerate(zip(ups, los)):
        tgt = 0.5 * (P[u] + blink[u] + P[l] + blink[l])
        corr_u[j] = tgt - P[u] - blink[u]
        corr_l[j] = tgt - P[l] - blink[l]
    fade_u = (1 - _smoothstep(0.0, 14 * deg, elev - e_up[jj])) * up_side
    fade_l = (1 - _smoothstep(0.0, 10 * deg, e_lo[jj] - elev)) * lo_side
    fade_u = np.where(ctx.eye_ring & up_side, 1.0, fade_u)
    fade_l = np.where(ctx.eye_ring & lo_side, 1.0, fade_l)
    blink += fade_u[:, None] * corr_u[jj] + fade_l[:, None] * corr_l[jj]
    for j, (u, l) in enumerate(zip(ups, los)):
        if u == l:
            blink[u] = 0.0
    keys["eyeBlinkLeft"] = blink
    span = e_up - e_lo
    keys["eyeWideLeft"] = lids(e_up + 0.32 * span, e_lo - 0.06 * span)
    keys["eyeSquintLeft"] = lids(e_up - 0.12 * span, e_lo + 0.25 * span)
    keys["eyeLookDownLeft"] = lids(e_up - 0.28 * span, e_lo - 0.10 * span)
    keys["eyeLookUpLeft"] = lids(e_up + 0.18 * span, e_lo + 0.08 * span)
    # horizontal gaze: the lids slide a little around the vertical axis through the eye
    lidf = np.maximum(f_up, f_lo)

    def yaw(deg_: float) -> np.ndarray:
        ang = deg_ * deg * lidf
        c, s = np.cos(ang), np.sin(ang)
        out = q.copy()
        out[:, 0] = c * q[:, 0] - s * q[:, 1]
        out[:, 1] = s * q[:, 0] + c * q[:, 1]
        return out + E - P

    keys["eyeLookInLeft"] = yaw(-7.0)   # towards the nose (-X for the left eye)
    keys["eyeLookOutLeft"] = yaw(7.0)
    for k in keys.values():
        k[~left] = 0.0
    groups = {
        "eyelid_upper_L": (np.flatnonzero(f_up > 1e-4).astype(np.int32), f_up[f_up > 1e-4].astype(np.float32)),
        "eyelid_lower_L": (np.flatnonzero(f_lo > 1e-4).astype(np.int32), f_lo[f_lo > 1e-4].astype(np.float32)),
    }
    for name in list(groups):
        idx, w = groups[name]
        groups[name.replace("_L", "_R")] = (ctx.mirror[idx].astype(np.int32), w.copy())
    return keys, groups
