"""Signed distance field of the head, ray casting onto it, and smooth falloffs (numpy only)."""

from __future__ import annotations

import numpy as np

from .design import EYE_CENTRE, LID_RADIUS, MOUTH_Z, NECK_BOTTOM, ORIGIN, ORIGIN_HIGH


def sd_ellipsoid(p: np.ndarray, c, r) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid (good near the surface)."""
    r = np.asarray(r, float)
    q = (p - np.asarray(c, float)) / r
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / r, axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def sd_capsule(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a = np.asarray(a, float)
    ba = np.asarray(b, float) - a
    pa = p - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(pa - h[..., None] * ba, axis=-1) - r


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth union (polynomial smooth minimum): blends shapes without creases."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    return -smin(-a, -b, k)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (metres, negative inside) of the sculpted head; symmetric in X."""
    pa = p.copy()
    pa[..., 0] = np.abs(pa[..., 0])
    d = sd_ellipsoid(p, (0, 0.008, 0.032), (0.074, 0.098, 0.093))                       # cranium
    d = smin(d, sd_ellipsoid(p, (0, -0.052, 0.062), (0.060, 0.043, 0.045)), 0.02)     # forehead
    d = smin(d, sd_ellipsoid(p, (0, -0.045, -0.010), (0.063, 0.050, 0.046)), 0.03)     # mid face
    d = smin(d, sd_ellipsoid(p, (0, -0.032, -0.050), (0.057, 0.062, 0.048)), 0.03)     # jaw
    d = smin(d, sd_ellipsoid(pa, (0.045, -0.008, -0.046), (0.014, 0.024, 0.026)), 0.02)  # jaw angles
    d = smin(d, sd_ellipsoid(pa, (0.038, -0.050, -0.020), (0.024, 0.030, 0.026)), 0.025)  # cheeks
    d = smin(d, sd_ellipsoid(p, (0, -0.080, -0.083), (0.021, 0.016, 0.017)), 0.016)    # chin
    neck = sd_ellipsoid(p * np.array([1, 1, 0]), (0, 0.018, 0), (0.056, 0.054, 1.0))
    neck = smax(neck, -(p[..., 2] - NECK_BOTTOM), 0.012)
    neck = np.maximum(neck, p[..., 2] + 0.02)  # ends inside the skull
    d = smin(d, neck, 0.03)
    d = smin(d, sd_ellipsoid(p, (0, -0.078, 0.048), (0.056, 0.019, 0.014)), 0.016)     # brow ridge
    d = smin(d, sd_ellipsoid(pa, (0.045, -0.060, 0.008), (0.022, 0.020, 0.016)), 0.02)  # cheekbones
    d = smin(d, sd_ellipsoid(p, (0, -0.070, -0.045), (0.034, 0.026, 0.030)), 0.02)     # muzzle
    d = smax(d, -sd_ellipsoid(pa, (0.032, -0.090, 0.029), (0.020, 0.020, 0.014)), 0.008)  # eye sockets
    d = smin(d, np.linalg.norm(pa - EYE_CENTRE, axis=-1) - LID_RADIUS, 0.004)  # lids over the eyeball
    d = smin(d, sd_capsule(p, (0, -0.086, 0.036), (0, -0.104, -0.006), 0.0072), 0.012)  # nose bridge
    d = smin(d, sd_ellipsoid(p, (0, -0.101, -0.012), (0.012, 0.011, 0.0105)), 0.008)   # nose tip
    d = smin(d, sd_ellipsoid(pa, (0.0135, -0.091, -0.018), (0.0085, 0.009, 0.0075)), 0.006)  # nostril wings
    d = smin(d, sd_ellipsoid(p, (0, -0.0885, MOUTH_Z + 0.0060), (0.025, 0.0088, 0.0066)), 0.004)  # upper lip
    d = smin(d, sd_ellipsoid(p, (0, -0.0865, MOUTH_Z - 0.0066), (0.0225, 0.0092, 0.0070)), 0.004)  # lower lip
    d = smin(d, sd_ellipsoid(pa, (0.074, 0.010, 0.012), (0.010, 0.019, 0.030)), 0.008)  # ears
    return d


def ray_origin(phi: np.ndarray, phi_e: float) -> np.ndarray:
    """Ray origin per polar angle: high and forward down to just below the eyes, so the
    upper lids are not hidden behind the brow, then sliding back to ORIGIN so the chin
    and the throat are seen from behind. Moves with the sweep, so rays never cross."""
    s = 1.0 - smoothstep(phi_e + 0.09, phi_e + 0.42, np.asarray(phi, float))
    return ORIGIN + s[..., None] * (ORIGIN_HIGH - ORIGIN)


def cast(dirs: np.ndarray, origins: np.ndarray) -> np.ndarray:
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


def ray_dirs(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """θ = 0 looks down -Y (front), θ > 0 towards +X; φ from +Z (top) to π (bottom)."""
    s = np.sin(phi)
    return np.stack([s * np.sin(theta), -s * np.cos(theta), np.cos(phi)], -1)


def warp(density, lo: float, hi: float, n: int) -> np.ndarray:
    """n+1 samples from lo to hi, spaced inversely to ``density`` (denser where it is high)."""
    x = np.linspace(lo, hi, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density(x[1:]) + density(x[:-1])) * np.diff(x))])
    return np.interp(np.linspace(0, cdf[-1], n + 1), cdf, x)


def direction_angles(p: np.ndarray, origin: np.ndarray = ORIGIN) -> tuple[float, float]:
    d = p - origin
    return float(np.arctan2(d[0], -d[1])), float(np.arctan2(np.hypot(d[0], d[1]), d[2]))


def wend(d: np.ndarray) -> np.ndarray:
    """Compact smooth falloff: 1 at d=0, 0 with zero slope at d>=1."""
    t = np.clip(1.0 - d * d, 0.0, 1.0)
    return t * t * t


def bump(p: np.ndarray, c, r) -> np.ndarray:
    return wend(np.linalg.norm((p - np.asarray(c, float)) / np.asarray(r, float), axis=-1))


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def rot_x(p: np.ndarray, centre: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Rotate points about the X axis through ``centre`` by per-point angles (radians; + lowers the front, -Y side)."""
    q = p - centre
    c, s = np.cos(ang), np.sin(ang)
    y = c * q[:, 1] - s * q[:, 2]
    z = s * q[:, 1] + c * q[:, 2]
    return np.stack([q[:, 0], y, z], -1) + centre
