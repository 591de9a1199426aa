"""The left eye's lid and gaze keys (the right ones are their mirror images; numpy only).

Lids rotate about the eye centre's X axis, per slit column, so the upper and lower
rims meet exactly on a blink; gaze keys slide the lids a little with the eye.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import EYE_CENTRE, LID_RADIUS, KeyContext
from .fields import rot_x, smoothstep


DEG = np.pi / 180


@dataclass
class _Lids:
    """Where each left-eye vertex sits relative to its slit column, and how much it rides with a lid."""

    P: np.ndarray
    q: np.ndarray          # positions relative to the eye centre
    elev: np.ndarray       # elevation seen from the eye, 0 = straight ahead
    ups: np.ndarray        # upper / lower rim vertex of each slit column
    los: np.ndarray
    e_up: np.ndarray       # rim elevations per column
    e_lo: np.ndarray
    jj: np.ndarray         # slit column per vertex (0 outside the slit)
    up_side: np.ndarray
    lo_side: np.ndarray
    f_up: np.ndarray       # how much a vertex rides with the upper / lower lid
    f_lo: np.ndarray
    left: np.ndarray
    eye_ring: np.ndarray

    def rotate(self, up_to: np.ndarray, lo_to: np.ndarray) -> np.ndarray:
        """Move upper rim to elevation up_to (per column), lower to lo_to; falloff above/below."""
        ang = -(np.where(self.up_side, (up_to - self.e_up)[self.jj] * self.f_up, 0.0)
                + np.where(self.lo_side, (lo_to - self.e_lo)[self.jj] * self.f_lo, 0.0))
        return rot_x(self.P, EYE_CENTRE, ang) - self.P


def _lids(ctx: KeyContext) -> _Lids:
    P = ctx.P
    V = len(P)
    E = EYE_CENTRE
    cols = ctx.eye_cols
    deg = DEG
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
    f_up = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(8 * deg, 50 * deg, elev - e_up[jj]))
    f_lo = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(4 * deg, 26 * deg, e_lo[jj] - elev))
    dist_ok = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(LID_RADIUS + 0.0015, LID_RADIUS + 0.008,
                                                              np.linalg.norm(q, axis=1)))
    return _Lids(P=P, q=q, elev=elev, ups=ups, los=los, e_up=e_up, e_lo=e_lo, jj=jj, up_side=up_side,
                 lo_side=lo_side, f_up=f_up * up_side * dist_ok, f_lo=f_lo * lo_side * dist_ok, left=left,
                 eye_ring=ctx.eye_ring)


def _blink(lid: _Lids) -> np.ndarray:
    P, ups, los, jj, elev, deg = lid.P, lid.ups, lid.los, lid.jj, lid.elev, DEG
    meet = lid.e_lo + 0.22 * (lid.e_up - lid.e_lo)
    blink = lid.rotate(meet, meet)
    # exact seam: both rims land on the same point (the average of their rotated
    # positions); the correction fades over the lid so no edge near the rim is torn
    corr_u = np.zeros((len(ups), 3))
    corr_l = np.zeros((len(ups), 3))
    for j, (u, l) in enumerate(zip(ups, los)):
        tgt = 0.5 * (P[u] + blink[u] + P[l] + blink[l])
        corr_u[j] = tgt - P[u] - blink[u]
        corr_l[j] = tgt - P[l] - blink[l]
    fade_u = (1 - smoothstep(0.0, 14 * deg, elev - lid.e_up[jj])) * lid.up_side
    fade_l = (1 - smoothstep(0.0, 10 * deg, lid.e_lo[jj] - elev)) * lid.lo_side
    fade_u = np.where(lid.eye_ring & lid.up_side, 1.0, fade_u)
    fade_l = np.where(lid.eye_ring & lid.lo_side, 1.0, fade_l)
    blink += fade_u[:, None] * corr_u[jj] + fade_l[:, None] * corr_l[jj]
    for j, (u, l) in enumerate(zip(ups, los)):
        if u == l:
            blink[u] = 0.0
    return blink


def _gaze(lid: _Lids, deg_: float) -> np.ndarray:
    """Horizontal gaze: the lids slide a little around the vertical axis through the eye."""
    q = lid.q
    ang = deg_ * DEG * np.maximum(lid.f_up, lid.f_lo)
    c, s = np.cos(ang), np.sin(ang)
    out = q.copy()
    out[:, 0] = c * q[:, 0] - s * q[:, 1]
    out[:, 1] = s * q[:, 0] + c * q[:, 1]
    return out + EYE_CENTRE - lid.P


def eyelid_keys(ctx: KeyContext) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Left-eye lid keys. Upper and lower lid vertices rotate about the eye centre's X axis."""
    lid = _lids(ctx)
    e_up, e_lo = lid.e_up, lid.e_lo
    span = e_up - e_lo
    keys = {"eyeBlinkLeft": _blink(lid)}
    keys["eyeWideLeft"] = lid.rotate(e_up + 0.32 * span, e_lo - 0.06 * span)
    keys["eyeSquintLeft"] = lid.rotate(e_up - 0.12 * span, e_lo + 0.25 * span)
    keys["eyeLookDownLeft"] = lid.rotate(e_up - 0.28 * span, e_lo - 0.10 * span)
    keys["eyeLookUpLeft"] = lid.rotate(e_up + 0.18 * span, e_lo + 0.08 * span)
    keys["eyeLookInLeft"] = _gaze(lid, -7.0)   # towards the nose (-X for the left eye)
    keys["eyeLookOutLeft"] = _gaze(lid, 7.0)
    for k in keys.values():
        k[~lid.left] = 0.0
    f_up, f_lo = lid.f_up, lid.f_lo
    groups = {
        "eyelid_upper_L": (np.flatnonzero(f_up > 1e-4).astype(np.int32), f_up[f_up > 1e-4].astype(np.float32)),
        "eyelid_lower_L": (np.flatnonzero(f_lo > 1e-4).astype(np.int32), f_lo[f_lo > 1e-4].astype(np.float32)),
    }
    for name in list(groups):
        idx, w = groups[name]
        groups[name.replace("_L", "_R")] = (ctx.mirror[idx].astype(np.int32), w.copy())
    return keys, groups
