"""The demo head as pure data (numpy only, no bpy): mesh, 52 ARKit shape keys, landmarks.

Why procedural: the add-on must show real lip sync in one click without shipping a
third-party asset. The head is sculpted as a signed-distance field (smooth unions of
ellipsoids, :mod:`.fields`) and a latitude/longitude quad grid (:mod:`.topology`) is
shrink-wrapped onto it by casting rays from a point inside the skull. The mouth and
the eyes are slits cut into the grid (the rows are split into an upper and a lower
rim) whose rims are extruded inwards into closed pockets, so the surface stays
closed and manifold while the lips and the lids can part and meet. Every shape key
is a smooth displacement field (compact falloffs, a jaw rotation about the joint,
lid rotations about the eye centre: :mod:`.mouth_keys`, :mod:`.eye_keys`);
right-hand keys are exact mirror images of the left-hand ones.

Units are metres; +Z is up and the face looks down -Y (Blender's front view), so
the character's *left* is +X.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .design import (ARKIT_52, EYE_CENTRE, EYE_MATERIALS, EYE_RADIUS, MATERIAL_COLOURS, MATERIALS,
                     MOUTH_HALF_WIDTH, ORIGIN, ORIGIN_HIGH, Eyeball, HeadData, KeyContext)
from .fields import cast, ray_dirs, ray_origin, smoothstep
from .looks import eyeball, paint
from .expressions import face_keys
from .topology import Topology, build_topology, lid_profile, mirror_col

__all__ = ["ARKIT_52", "EYE_MATERIALS", "MATERIALS", "MATERIAL_COLOURS", "Eyeball", "HeadData", "build_head"]

FLIP = np.array([-1.0, 1.0, 1.0])


def _grid_directions(t: Topology) -> tuple[np.ndarray, ...]:
    """Ray directions of the grid vertices, with the eye slits opened into an almond.

    Returns (dirs, polar angles, row and column per vertex, grid mask, signed azimuth)."""
    deg = np.pi / 180
    theta, phi, row_e, row_m, eye_cols, keys = t.theta, t.phi, t.row_e, t.row_m, t.eye_cols, t.keys
    V = len(keys)
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
    a_up = open_up * lid_profile(t_eye, 0.45)
    a_lo = open_lo * lid_profile(t_eye, 0.58)
    up_sel = is_grid & in_eye_cols & ~lower_side & (ph <= ph_e) & (ph > ph_e - reach)
    lo_sel = is_grid & in_eye_cols & lower_side & (ph >= ph_e) & (ph < ph_e + reach)
    ph = ph - np.where(up_sel, a_up * (1 - (ph_e - ph) / reach), 0.0)
    ph = ph + np.where(lo_sel, a_lo * (1 - (ph - ph_e) / reach), 0.0)
    gi = np.flatnonzero(is_grid)
    dirs[gi] = ray_dirs(th[gi], ph[gi])
    return dirs, ph, rowc, colc, is_grid, signed_th


def _cast_grid(t: Topology, dirs: np.ndarray, ph: np.ndarray, is_grid: np.ndarray,
               signed_th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, hair weight): grid vertices on the surface, the poles, a hair cap on the scalp."""
    idx = t.idx
    gi = np.flatnonzero(is_grid)
    P = np.zeros((len(t.keys), 3))
    P[gi] = cast(dirs[gi], ray_origin(ph[gi], t.phi[t.row_e]))
    P[idx[("top",)]] = cast(np.array([[0.0, 0.0, 1.0]]), ORIGIN_HIGH[None])[0]
    P[idx[("bot",)]] = cast(np.array([[0.0, 0.0, -1.0]]), ORIGIN[None])[0]

    # hair: a cap a few millimetres proud of the scalp above a hairline
    hair_line = np.interp(np.abs(signed_th), [0, 0.9, 1.5, 2.2, np.pi], [0.082, 0.064, 0.040, -0.005, -0.040])
    hz = smoothstep(-0.004, 0.010, P[:, 2] - hair_line) * is_grid
    P += (dirs * (0.0045 * hz)[:, None])
    return P, hz


def _pockets(t: Topology, P: np.ndarray) -> tuple[np.ndarray, ...]:
    """Place the pocket rings behind the lips and lids (in ``P``).

    Returns (side, ring number, mouth-ring mask, eye-ring mask, rim vertex per ring vertex)."""
    keys, idx, row_m, row_e = t.keys, t.idx, t.row_m, t.row_e
    V = len(keys)

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
    return side, ring_no, mouth_ring, eye_ring, rim


def _sides(t: Topology, side: np.ndarray, mouth_ring: np.ndarray, eye_ring: np.ndarray, is_grid: np.ndarray,
           rowc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lip side, lid side) per vertex: +1 upper, -1 lower, 0 at the corners and elsewhere."""
    keys, idx, row_m, row_e = t.keys, t.idx, t.row_m, t.row_e
    mdup = np.array([k[0] == "mdup" for k in keys])
    lip_side = np.where(mouth_ring, side, 0.0) + np.where(mdup, -1.0, 0.0)
    # grid vertices: above/at the mouth row = upper (+1), below = lower (-1)
    lip_side += np.where(is_grid & ~mdup & (rowc <= row_m), 1.0, 0.0)
    lip_side += np.where(is_grid & ~mdup & (rowc > row_m) & (rowc >= 0), -1.0, 0.0)
    lip_side[[idx[("g", row_m, t.mouth_cols[-1])], idx[("g", row_m, t.mouth_cols[0])]]] = 0.0
    lid_side = np.where(eye_ring, side, 0.0)
    edup = np.array([k[0] == "edup" for k in keys])
    lid_side += np.where(edup, -1.0, 0.0)
    near_eye = is_grid & ~edup
    lid_side += np.where(near_eye & (rowc <= row_e), 1.0, 0.0) - np.where(near_eye & (rowc > row_e), 1.0, 0.0)
    for c in (t.eye_cols[0], t.eye_cols[-1], t.eye_cols_r[0], t.eye_cols_r[-1]):
        lid_side[idx[("g", row_e, c)]] = 0.0
    return lip_side, lid_side


def _landmarks(t: Topology, P: np.ndarray, is_grid: np.ndarray) -> dict[str, int]:
    idx, row_m, row_e, eye_cols, eye_cols_r = t.idx, t.row_m, t.row_e, t.eye_cols, t.eye_cols_r
    n_rows = len(t.phi)
    mid_eye = eye_cols[len(eye_cols) // 2]
    mid_mouth = 0
    return {
        "upper_lip_centre": idx[("g", row_m, mid_mouth)],
        "lower_lip_centre": idx[("mdup", mid_mouth)],
        "mouth_corner_left": idx[("g", row_m, t.mouth_cols[-1])],
        "mouth_corner_right": idx[("g", row_m, t.mouth_cols[0])],
        "eyelid_upper_left": idx[("g", row_e, mid_eye)],
        "eyelid_lower_left": idx[("edup", mid_eye)],
        "eyelid_upper_right": idx[("g", row_e, mirror_col(mid_eye))],
        "eyelid_lower_right": idx[("edup", mirror_col(mid_eye))],
        "eye_corner_inner_left": idx[("g", row_e, eye_cols[0])],
        "eye_corner_outer_left": idx[("g", row_e, eye_cols[-1])],
        "eye_corner_inner_right": idx[("g", row_e, eye_cols_r[-1])],
        "eye_corner_outer_right": idx[("g", row_e, eye_cols_r[0])],
        "nose_tip": int(np.argmin(np.where(is_grid & (np.abs(P[:, 0]) < 1e-9), P[:, 1], 1.0))),
        "chin": idx[("g", min(n_rows - 1, row_m + 1 + int(np.argmin(np.abs(
            P[[idx[("g", r, 0)] for r in range(row_m + 1, n_rows)], 2] + 0.082)))), 0)],
    }


@lru_cache(maxsize=2)
def _build_cached() -> HeadData:
    t = build_topology()
    dirs, ph, rowc, colc, is_grid, signed_th = _grid_directions(t)
    P, hz = _cast_grid(t, dirs, ph, is_grid, signed_th)
    side, ring_no, mouth_ring, eye_ring, rim = _pockets(t, P)
    P = 0.5 * (P + P[t.mirror] * FLIP)  # exact mirror symmetry
    lip_side, lid_side = _sides(t, side, mouth_ring, eye_ring, is_grid, rowc)
    landmarks = _landmarks(t, P, is_grid)
    ctx = KeyContext(P=P, keys=t.keys, idx=t.idx, mirror=t.mirror, faces=t.faces, rowc=rowc, colc=colc,
                     row_m=t.row_m, row_e=t.row_e, mouth_cols=t.mouth_cols, eye_cols=t.eye_cols,
                     lip_side=lip_side, lid_side=lid_side, mouth_ring=mouth_ring, eye_ring=eye_ring,
                     ring_no=ring_no, rim=rim, is_grid=is_grid, landmarks=landmarks)
    shape_keys, groups = face_keys(ctx)
    colours = paint(ctx, hz)
    eyes = [eyeball("Eye.L", EYE_CENTRE.copy()), eyeball("Eye.R", EYE_CENTRE * FLIP)]
    return HeadData(vertices=P.astype(np.float32), faces=t.faces, face_materials=t.face_mat, colours=colours,
                    shape_keys=shape_keys, vertex_groups=groups, landmarks=landmarks,
                    mirror=t.mirror, eyes=eyes)


def build_head() -> HeadData:
    """Build (or reuse) the demo head. Deterministic: no randomness anywhere."""
    h = _build_cached()
    return HeadData(vertices=h.vertices.copy(), faces=list(h.faces), face_materials=h.face_materials.copy(),
                    colours=h.colours.copy(),
                    shape_keys={k: v.copy() for k, v in h.shape_keys.items()},
                    vertex_groups={k: (a.copy(), w.copy()) for k, (a, w) in h.vertex_groups.items()},
                    landmarks=dict(h.landmarks), mirror=h.mirror.copy(), eyes=list(h.eyes))
