"""The head's mesh topology: a latitude/longitude quad grid with slits for the mouth and eyes.

Vertices are named by keys before any position is known: ``("g", row, col)`` on the
grid, ``("top",)``/``("bot",)`` at the poles, ``("mdup"/"edup", col)`` the lower rim of
the mouth/eye slits, ``("mring"/"ering", ring, side, col)`` the pockets behind them.
Naming them makes the X mirror an exact map between keys (numpy + stdlib only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import EYE_CENTRE, EYE_RINGS, MATERIALS, MOUTH_HALF_WIDTH, MOUTH_RINGS, MOUTH_Z, N_COLUMNS, ORIGIN_HIGH
from .fields import direction_angles, smoothstep, warp


class Builder:
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


def mirror_col(c: int) -> int:
    return (N_COLUMNS - c) % N_COLUMNS


def mirror_key(k: tuple) -> tuple:
    kind = k[0]
    if kind == "g":
        return ("g", k[1], mirror_col(k[2]))
    if kind in ("top", "bot"):
        return k
    if kind in ("mdup", "edup"):
        return (kind, mirror_col(k[1]))
    if kind in ("mring", "ering"):
        return (kind, k[1], k[2], mirror_col(k[3]))
    raise ValueError(k)


def slit(b: Builder, row: int, cols: list[int], dup: str, ring: str, n_rings: int,
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


def span(theta: np.ndarray, lo: float, hi: float) -> list[int]:
    """Grid columns (as signed indices wrapped mod N) nearest to the angles lo..hi."""
    signed = np.where(theta > np.pi, theta - 2 * np.pi, theta)
    a = int(np.argmin(np.abs(signed - lo)))
    b = int(np.argmin(np.abs(signed - hi)))
    return [c % N_COLUMNS for c in range(a if a < N_COLUMNS // 2 else a - N_COLUMNS,
                                         (b if b < N_COLUMNS // 2 else b - N_COLUMNS) + 1)]


def grid_angles() -> tuple[np.ndarray, np.ndarray, int, int]:
    s = np.arange(N_COLUMNS) / N_COLUMNS
    theta = 2 * np.pi * s - 0.62 * np.sin(2 * np.pi * s)  # ~4x denser at the front than the back
    _, phi_m = direction_angles(np.array([0.0, -0.095, MOUTH_Z]))
    _, phi_e = direction_angles(EYE_CENTRE, ORIGIN_HIGH)
    deg = np.pi / 180

    def density(x: np.ndarray) -> np.ndarray:
        band = smoothstep(40 * deg, 60 * deg, x) * (1 - smoothstep(150 * deg, 165 * deg, x))
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
    rows = np.concatenate([warp(density, a, b, k)[1:] for (a, b), k in zip(parts, n)])[:-1]
    row_e = int(n[0]) - 1
    row_m = int(n[0] + n[1]) - 1
    return theta, rows, row_e, row_m


def lid_profile(t: np.ndarray, peak: float) -> np.ndarray:
    """Almond opening along the slit: 0 at the corners, 1 at ``peak``."""
    t = np.clip(t, 0.0, 1.0)
    u = np.where(t < peak, 0.5 * t / peak, 0.5 + 0.5 * (t - peak) / (1 - peak))
    return np.sin(np.pi * u) ** 0.85


@dataclass
class Topology:
    """Vertex keys, faces (as keys) and the grid's angles, rows and slit columns."""

    theta: np.ndarray         # per column, around the head
    phi: np.ndarray           # per row, from the top
    row_e: int                # the eyes' row
    row_m: int                # the mouth's row
    mouth_cols: list[int]
    eye_cols: list[int]       # left eye, inner corner first
    eye_cols_r: list[int]     # right eye (mirrored)
    keys: list[tuple]
    idx: dict[tuple, int]
    faces: list[tuple[int, ...]]
    face_mat: np.ndarray
    mirror: np.ndarray        # (V,) index of the X-mirrored vertex


def build_topology() -> Topology:
    theta, phi, row_e, row_m = grid_angles()
    n_rows = len(phi)
    th_mouth = np.arctan2(MOUTH_HALF_WIDTH, 0.092)
    mouth_cols = span(theta, -th_mouth, th_mouth)
    e_in = EYE_CENTRE + np.array([-0.0118, -0.004, -0.0005])
    e_out = EYE_CENTRE + np.array([0.0115, 0.004, 0.0012])
    eye_cols = span(theta, direction_angles(e_in, ORIGIN_HIGH)[0], direction_angles(e_out, ORIGIN_HIGH)[0])
    eye_cols_r = [mirror_col(c) for c in reversed(eye_cols)]

    b = Builder()
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
    slit(b, row_m, mouth_cols, "mdup", "mring", MOUTH_RINGS,
         [mi("Skin"), mi("MouthInside"), mi("Teeth"), mi("MouthInside")])
    for cols in (eye_cols, eye_cols_r):
        slit(b, row_e, cols, "edup", "ering", EYE_RINGS, [mi("EyeSocket"), mi("EyeSocket")])
    idx = b.index
    return Topology(theta=theta, phi=phi, row_e=row_e, row_m=row_m, mouth_cols=mouth_cols, eye_cols=eye_cols,
                    eye_cols_r=eye_cols_r, keys=b.keys, idx=idx,
                    faces=[tuple(idx[k] for k in f) for f in b.faces],
                    face_mat=np.array(b.face_mat, np.int32),
                    mirror=np.array([idx[mirror_key(k)] for k in b.keys]))
