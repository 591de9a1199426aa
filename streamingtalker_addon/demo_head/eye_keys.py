"""The left eye's lid and gaze keys (the right ones are their mirror images; numpy only).

Lids rotate about the eye centre's X axis, per slit column, so the upper and lower
rims meet exactly on a blink; gaze keys slide the lids a little with the eye.
"""

from __future__ import annotations

import numpy as np

from .design import EYE_CENTRE, LID_RADIUS, KeyContext
from .fields import rot_x, smoothstep


def eyelid_keys(ctx: KeyContext) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
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
    f_up = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(8 * deg, 50 * deg, elev - e_up[jj]))
    f_lo = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(4 * deg, 26 * deg, e_lo[jj] - elev))
    dist_ok = np.where(ctx.eye_ring, 1.0, 1 - smoothstep(LID_RADIUS + 0.0015, LID_RADIUS + 0.008,
                                                              np.linalg.norm(q, axis=1)))
    f_up = f_up * up_side * dist_ok
    f_lo = f_lo * lo_side * dist_ok

    def lids(up_to: np.ndarray, lo_to: np.ndarray, fu=f_up, fl=f_lo) -> np.ndarray:
        """Move upper rim to elevation up_to (per column), lower to lo_to; falloff above/below."""
        ang = -(np.where(up_side, (up_to - e_up)[jj] * fu, 0.0) + np.where(lo_side, (lo_to - e_lo)[jj] * fl, 0.0))
        return rot_x(P, E, ang) - P

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
    fade_u = (1 - smoothstep(0.0, 14 * deg, elev - e_up[jj])) * up_side
    fade_l = (1 - smoothstep(0.0, 10 * deg, e_lo[jj] - elev)) * lo_side
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
