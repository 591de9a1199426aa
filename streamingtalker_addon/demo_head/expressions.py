"""The demo head's 52 ARKit shape keys as displacement fields (numpy only).

Each key is built for the left side (+X) from smooth compact falloffs around the
mouth, cheeks, nose and brows, the jaw rotating about its joint and the lids about
the eye (:mod:`.eye_keys`); the pockets behind the lips follow their rims; right-hand
keys are exact mirror images and symmetric keys are made exactly symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import ARKIT_52, JAW_OPEN_DEG, JAW_PIVOT, MOUTH_Z, KeyContext
from .eye_keys import eyelid_keys
from .fields import bump, rot_x, smoothstep
from .looks import vertex_normals

Keys = dict[str, np.ndarray]
Groups = dict[str, tuple[np.ndarray, np.ndarray]]
DEG = np.pi / 180


@dataclass
class _Mouth:
    """Per-vertex weights the mouth keys share (1 where a part moves fully, 0 where it stays)."""

    P: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    lip: np.ndarray          # +1 upper lip side, -1 lower, 0 corners
    mc: np.ndarray           # upper lip centre
    corner: np.ndarray       # left mouth corner
    w_m: float               # half mouth width
    inner: np.ndarray        # mouth pocket vertices
    ringw: np.ndarray        # how far each pocket ring follows the lips
    lam: np.ndarray          # lateral lip factor: 1 at the centre, 0 at the corners and beyond
    lam_soft: np.ndarray
    near_mouth: np.ndarray
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    left: np.ndarray         # 1 on the left (+X) side, blending across the midline
    dz_u: np.ndarray         # height within the red of the upper lip, 0 at the seam
    dz_l: np.ndarray
    w_jaw: np.ndarray        # how much a vertex rides with the jaw


def _jaw_weight(ctx: KeyContext, P: np.ndarray, lip: np.ndarray, mc: np.ndarray, w_m: float,
                inner: np.ndarray) -> np.ndarray:
    """Rotates about the joint; lower lip/chin 1, upper lip 0, fades into the throat."""
    x, y, z = P[:, 0], P[:, 1], P[:, 2]
    deg = DEG
    a = np.arctan2(JAW_PIVOT[2] - z, JAW_PIVOT[1] - y)  # 0 forward, +90° straight down
    a_m = np.arctan2(JAW_PIVOT[2] - MOUTH_Z, JAW_PIVOT[1] - mc[1])
    throat = 1 - smoothstep(64 * deg, 100 * deg, a)
    neck = smoothstep(-0.135, -0.10, z)
    behind = 1 - smoothstep(0.0, 0.03, y - JAW_PIVOT[1])
    common = smoothstep(a_m - 5 * deg, a_m + 14 * deg, a)
    sided = np.where(lip < 0, 1.0, np.where(lip > 0, 0.0, 0.5))
    lam_j = np.clip(1 - (np.abs(x) / (w_m * 1.25)) ** 2, 0, 1) * bump(P, mc, [w_m * 1.3, 0.05, 0.03])
    w_jaw = (lam_j * sided + (1 - lam_j) * common) * throat * neck * behind
    rw = np.array([1.0, 1.0, 1.0, 0.85, 0.55])[ctx.ring_no]
    w_jaw = np.where(inner, np.where(lip < 0, rw, np.where(lip > 0, 0.0, 0.5 * rw)), w_jaw)
    return np.where(ctx.eye_ring, 0.0, w_jaw)


def _mouth(ctx: KeyContext) -> _Mouth:
    P = ctx.P
    x, y, z = P[:, 0], P[:, 1], P[:, 2]
    lip = ctx.lip_side
    lm = ctx.landmarks
    mc = P[lm["upper_lip_centre"]]
    corner = P[lm["mouth_corner_left"]]
    w_m = float(corner[0])
    inner = ctx.mouth_ring
    ringw = np.array([1.0, 1.0, 0.85, 0.5, 0.25])[ctx.ring_no] * inner

    # lateral lip factor: 1 at the centre, 0 at the corners and beyond (keeps the cheeks whole)
    lam = np.clip(1 - (np.abs(x) / w_m) ** 2, 0, 1)
    lam_soft = np.clip(1 - (np.abs(x) / (w_m + 0.01)) ** 2, 0, 1) ** 1.5
    near_mouth = bump(P, mc + [0, 0.006, 0], [w_m + 0.02, 0.04, 0.03])
    upper_lip = bump(P, mc + [0, 0.004, 0.004], [w_m + 0.012, 0.03, 0.017]) * (lip > 0)
    lower_lip = bump(P, mc + [0, 0.004, -0.005], [w_m + 0.012, 0.03, 0.019]) * (lip < 0)
    upper_lip = np.maximum(upper_lip, (lip > 0) * inner * 1.0)
    lower_lip = np.maximum(lower_lip, (lip < 0) * inner * 1.0)
    return _Mouth(P=P, x=x, y=y, z=z, lip=lip, mc=mc, corner=corner, w_m=w_m, inner=inner, ringw=ringw,
                  lam=lam, lam_soft=lam_soft, near_mouth=near_mouth, upper_lip=upper_lip, lower_lip=lower_lip,
                  left=smoothstep(-0.3 * w_m, 0.3 * w_m, x),
                  dz_u=np.clip((z - MOUTH_Z) / 0.01, 0, 1),  # compress the red of the lip towards the seam
                  dz_l=np.clip((MOUTH_Z - z) / 0.011, 0, 1),
                  w_jaw=_jaw_weight(ctx, P, lip, mc, w_m, inner))


def _jaw_keys(ctx: KeyContext, m: _Mouth) -> Keys:
    P, w_jaw, lip, inner, ringw, y, z = m.P, m.w_jaw, m.lip, m.inner, m.ringw, m.y, m.z
    V = len(P)
    keys: Keys = {}

    def rot_jaw(deg_: float, w: np.ndarray) -> np.ndarray:
        return rot_x(P, JAW_PIVOT, deg_ * DEG * w) - P

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
    front_lip = smoothstep(-0.06, -0.075, y)
    close_up = (1 - smoothstep(0.007, 0.018, z - MOUTH_Z)) * front_lip * (lip > 0)
    close_lo = (1 - smoothstep(0.009, 0.024, MOUTH_Z - z)) * front_lip * (lip < 0)
    close_up = np.where(inner, ringw * (lip > 0), close_up)
    close_lo = np.where(inner, ringw * (lip < 0), close_lo)
    share = 0.3
    keys["mouthClose"] = (share * close_up - (1 - share) * close_lo)[:, None] * col_gap
    return keys


def _rounding_keys(m: _Mouth) -> Keys:
    """Pull the corners in, push the lips forward."""
    P, mc, w_m, x, lip, lam, lam_soft, ringw = m.P, m.mc, m.w_m, m.x, m.lip, m.lam, m.lam_soft, m.ringw
    V = len(P)

    def narrow(amount: float, forward: float, part: float, open_up: float, open_lo: float) -> np.ndarray:
        f = bump(P, mc + [0, 0.01, -0.002], [w_m + 0.022, 0.045, 0.03])
        off = np.zeros((V, 3))
        s = np.clip(np.abs(x) / w_m, 0, 1.6)
        off[:, 0] = -x * amount * f * np.clip(1.25 - 0.35 * s, 0, 1)
        lipf = np.maximum(bump(P, mc + [0, 0.002, 0], [w_m + 0.008, 0.03, 0.022]), ringw)
        off[:, 1] = -forward * lipf * (0.55 + 0.45 * lam_soft)
        rim_open = lam * np.maximum(lipf, 0)
        off[:, 2] += np.where(lip > 0, open_up, np.where(lip < 0, -open_lo, 0.0)) * rim_open * part
        return off

    keys: Keys = {"mouthFunnel": narrow(0.22, 0.007, 1.0, 0.0042, 0.0060)}
    keys["mouthFunnel"][:, 1] += -0.002 * lam * (np.abs(lip) > 0) * bump(P, mc, [w_m, 0.01, 0.006])  # flare
    keys["mouthPucker"] = narrow(0.36, 0.0095, 0.0, 0, 0)
    return keys


def _corner_keys(m: _Mouth) -> Keys:
    """One-sided corner moves (left = +X); the right keys are mirrored from these."""
    P, corner, near_mouth, left, mc, w_m = m.P, m.corner, m.near_mouth, m.left, m.mc, m.w_m
    upper_lip, lower_lip, lam_soft, lip = m.upper_lip, m.lower_lip, m.lam_soft, m.lip

    def corner_move(vec, r=(0.022, 0.03, 0.02), lip_only=False) -> np.ndarray:
        f = bump(P, corner + [0.002, 0.004, 0], r)
        if lip_only:
            f = f * near_mouth
        return (f * left)[:, None] * np.asarray(vec)

    keys: Keys = {}
    keys["mouthSmileLeft"] = corner_move([0.0055, 0.0035, 0.0075], (0.028, 0.034, 0.026))
    keys["mouthSmileLeft"] += (bump(P, corner + [0.008, -0.002, 0.014], [0.02, 0.02, 0.014]) * left)[:, None] * [0.001, -0.002, 0.002]
    keys["mouthFrownLeft"] = corner_move([0.0015, 0.0005, -0.0055], (0.022, 0.03, 0.024))
    keys["mouthDimpleLeft"] = corner_move([0.002, 0.0035, -0.0005], (0.018, 0.03, 0.018))
    keys["mouthStretchLeft"] = corner_move([0.0055, 0.001, -0.0022], (0.026, 0.03, 0.024))
    keys["mouthStretchLeft"] += (lower_lip * lam_soft * left)[:, None] * [0.0015, 0, -0.0015]
    half_l = left * near_mouth
    keys["mouthLeft"] = (bump(P, mc + [0, 0.008, -0.002], [w_m + 0.04, 0.045, 0.032]))[:, None] * [0.0075, 0, 0]
    keys["mouthLowerDownLeft"] = (lower_lip * left * bump(P, mc + [0.3 * w_m, 0, -0.004], [w_m * 1.3, 0.04, 0.03]))[:, None] * [0.0005, -0.001, -0.0062]
    keys["mouthUpperUpLeft"] = (upper_lip * left * bump(P, mc + [0.3 * w_m, 0, 0.004], [w_m * 1.3, 0.04, 0.03]))[:, None] * [0.0, -0.0008, 0.006]
    press_u = upper_lip * (lip > 0) * half_l
    press_l = lower_lip * (lip < 0) * half_l
    dz_u, dz_l = m.dz_u, m.dz_l
    keys["mouthPressLeft"] = np.stack([np.zeros(len(P)), 0.0012 * (press_u + press_l) * lam_soft,
                                       -0.0035 * press_u * dz_u + 0.0035 * press_l * dz_l], -1)
    return keys


def _lip_keys(ctx: KeyContext, m: _Mouth) -> Keys:
    """Symmetric lip keys: rolls and shrugs."""
    P, upper_lip, lower_lip, lam, lam_soft, lip, dz_u, dz_l = (m.P, m.upper_lip, m.lower_lip, m.lam, m.lam_soft,
                                                                m.lip, m.dz_u, m.dz_l)
    V = len(P)
    roll_u = upper_lip * lam_soft
    roll_l = lower_lip * lam_soft
    keys: Keys = {}
    keys["mouthRollUpper"] = np.stack([np.zeros(V), 0.0045 * roll_u * (1 - 0.3 * dz_u),
                                       -0.0045 * roll_u * dz_u + 0.0008 * roll_u * (1 - dz_u)], -1)
    keys["mouthRollLower"] = np.stack([np.zeros(V), 0.0048 * roll_l * (1 - 0.3 * dz_l),
                                       0.0048 * roll_l * dz_l - 0.0008 * roll_l * (1 - dz_l)], -1)
    chin = bump(P, P[ctx.landmarks["chin"]] + [0, 0.004, 0.004], [0.03, 0.03, 0.026])
    keys["mouthShrugLower"] = (np.maximum(lower_lip * 0.9, chin * (lip < 0)))[:, None] * [0, -0.0018, 0.0042]
    keys["mouthShrugLower"] += (upper_lip * lam * 0.4)[:, None] * [0, -0.0008, 0.0015]
    keys["mouthShrugUpper"] = (upper_lip * lam_soft)[:, None] * [0, -0.0016, 0.0028]
    return keys


def _cheek_nose_tongue_brow_keys(ctx: KeyContext, m: _Mouth) -> Keys:
    P, x, lip, near_mouth, upper_lip, lower_lip, left, inner, lam, w_m = (
        m.P, m.x, m.lip, m.near_mouth, m.upper_lip, m.lower_lip, m.left, m.inner, m.lam, m.w_m)
    keys: Keys = {}
    # ---- cheeks and nose
    puff = (bump(P, [0.042, -0.06, -0.03], [0.028, 0.04, 0.03])
            + bump(P * np.array([-1.0, 1.0, 1.0]), [0.042, -0.06, -0.03], [0.028, 0.04, 0.03]))
    keys["cheekPuff"] = vertex_normals(P, ctx.faces) * (0.0085 * puff)[:, None]
    keys["cheekPuff"][:, 1] += -0.0015 * near_mouth * (np.abs(lip) > 0)
    cheek_l = bump(P, [0.036, -0.078, 0.004], [0.026, 0.03, 0.02])
    keys["cheekSquintLeft"] = cheek_l[:, None] * [0.0005, -0.0012, 0.0038]
    nose_l = bump(P, [0.0135, -0.091, -0.016], [0.014, 0.03, 0.016])
    keys["noseSneerLeft"] = nose_l[:, None] * [0.0008, -0.0006, 0.0035]
    keys["noseSneerLeft"] += (upper_lip * left * 0.35)[:, None] * [0, 0, 0.003]
    keys["noseSneerLeft"] += (bump(P, [0.016, -0.088, 0.04], [0.016, 0.03, 0.014]))[:, None] * [-0.0012, 0, -0.0018]

    # ---- tongue: the floor of the mouth slides forward between the lips
    tongue = inner * (lip <= 0) * np.array([0, 0, 0.6, 1.0, 0.6])[ctx.ring_no] * np.clip(1 - (np.abs(x) / (w_m * 0.8)) ** 2, 0, 1)
    keys["tongueOut"] = tongue[:, None] * [0, -0.024, 0.004] + (lower_lip * lam * 0.4)[:, None] * [0, -0.001, -0.0025]

    # ---- brows
    brow_in = bump(P, [0.0, -0.09, 0.05], [0.03, 0.03, 0.026])
    keys["browInnerUp"] = brow_in[:, None] * [0, 0, 0.0055]
    keys["browInnerUp"] += ((bump(P, [0.018, -0.09, 0.05], [0.014, 0.03, 0.016]) + bump(P, [-0.018, -0.09, 0.05], [0.014, 0.03, 0.016])))[:, None] * [0, -0.0006, 0.002]
    brow_l = bump(P, [0.03, -0.09, 0.05], [0.03, 0.035, 0.018]) * smoothstep(-0.002, 0.006, x)
    keys["browDownLeft"] = brow_l[:, None] * [-0.0018, -0.0008, -0.0048]
    brow_out = bump(P, [0.048, -0.075, 0.052], [0.024, 0.035, 0.02])
    keys["browOuterUpLeft"] = brow_out[:, None] * [0.0, 0.0, 0.0055]
    return keys


def _all_arkit(ctx: KeyContext, keys: Keys) -> Keys:
    """Pockets follow their rims; left keys mirrored into right keys; symmetric keys made exactly so."""
    inner = ctx.mouth_ring
    # the lip pockets follow their rims for every key that did not place them explicitly
    explicit = {"jawOpen", "jawForward", "jawLeft", "mouthClose", "tongueOut"}
    for name, off in keys.items():
        if name in explicit or name.startswith("eye"):
            continue
        off[inner] = off[ctx.rim[inner]] * np.array([1.0, 1.0, 0.85, 0.5, 0.3])[ctx.ring_no[inner], None]

    # ---- mirror the left keys into right keys (exact)
    flip = np.array([-1.0, 1.0, 1.0])
    out: Keys = {}
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
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def _groups(m: _Mouth, eye_groups: Groups) -> Groups:
    groups: Groups = {}

    def group(name: str, w: np.ndarray) -> None:
        sel = np.flatnonzero(w > 1e-4)
        groups[name] = (sel.astype(np.int32), w[sel].astype(np.float32))

    group("jaw", m.w_jaw)
    group("lip_upper", np.clip(m.upper_lip * (m.lip > 0), 0, 1))
    group("lip_lower", np.clip(m.lower_lip * (m.lip < 0), 0, 1))
    group("mouth_inside", m.inner.astype(float))
    groups.update(eye_groups)
    return groups


def face_keys(ctx: KeyContext) -> tuple[Keys, Groups]:
    """All 52 ARKit keys (name → (V, 3) float32 offsets) and the vertex groups they come with."""
    m = _mouth(ctx)
    keys = _jaw_keys(ctx, m)
    keys.update(_rounding_keys(m))
    keys.update(_corner_keys(m))
    keys.update(_lip_keys(ctx, m))
    keys.update(_cheek_nose_tongue_brow_keys(ctx, m))
    # ---- eyelids: rotations about the eye centre, per slit column (exact closure at the rim)
    eye_keys, eye_groups = eyelid_keys(ctx)
    keys.update(eye_keys)
    keys["eyeSquintLeft"] = keys["eyeSquintLeft"] + 0.35 * keys["cheekSquintLeft"]
    return _all_arkit(ctx, keys), _groups(m, eye_groups)
