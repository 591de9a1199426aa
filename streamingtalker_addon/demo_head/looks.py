"""How the head looks: vertex normals, the eyeballs, the skin paint (numpy only)."""

from __future__ import annotations

import numpy as np

from .design import BLUSH, BROW, EYE_RADIUS, HAIR, LIP, MATERIAL_COLOURS, MOUTH_HALF_WIDTH, MOUTH_Z, Eyeball, KeyContext
from .fields import bump, smoothstep


def vertex_normals(P: np.ndarray, faces: list) -> np.ndarray:
    n = np.zeros_like(P)
    for f in faces:
        f = np.asarray(f)
        c = np.cross(P[f[1]] - P[f[0]], P[f[-1]] - P[f[0]]) + (
            np.cross(P[f[-1]] - P[f[-2]], P[f[-3]] - P[f[-2]]) if len(f) == 4 else 0)
        n[f] += c
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def eyeball(name: str, centre: np.ndarray, n_ring: int = 32, n_seg: int = 16) -> Eyeball:
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


def paint(ctx: KeyContext, hair: np.ndarray) -> np.ndarray:
    """Per-vertex skin paint: soft-edged lips (with a cupid's bow), brow arches, a hair cap."""
    P = ctx.P
    x, y, z = np.abs(P[:, 0]), P[:, 1], P[:, 2]
    front = smoothstep(-0.07, -0.082, y)
    # vermilion outline around the seam, in front of the face
    u = np.clip(x / (MOUTH_HALF_WIDTH * 1.04), 0, 1.5)
    top = (0.0088 * np.clip(1 - u ** 2.2, 0, 1) + 0.0013 * np.exp(-((u - 0.27) / 0.15) ** 2)
           - 0.0014 * np.exp(-(u / 0.09) ** 2))
    bot = 0.0105 * np.clip(1 - u ** 2.0, 0, 1)
    dz = z - MOUTH_Z
    inside = np.minimum(top - dz, dz + bot)
    lips = smoothstep(-0.0006, 0.0012, inside) * front * (u < 1.0)
    lips = np.maximum(lips, (ctx.mouth_ring & (ctx.ring_no == 1)).astype(float))
    # brows: an arch above each eye, thinning outwards
    ub = np.clip((x - 0.007) / 0.05, 0, 1)
    centre = 0.0462 + 0.0062 * np.sin(np.pi * np.clip(ub * 1.15, 0, 1)) - 0.004 * ub
    thick = 0.0046 * (1.25 - 0.65 * ub)
    brows = (1 - smoothstep(0.7, 1.15, np.abs(z - centre) / thick)) * smoothstep(0.006, 0.011, x)
    brows *= 1 - smoothstep(0.052, 0.060, x)
    brows *= smoothstep(-0.045, -0.06, y)
    pa = P.copy()
    pa[:, 0] = x
    blush = 0.5 * bump(pa, [0.042, -0.075, 0.0], [0.025, 0.04, 0.022])
    blush += 0.35 * bump(P, [0, -0.108, -0.012], [0.014, 0.02, 0.014])
    skin = np.array(MATERIAL_COLOURS["Skin"][:3])
    c = skin[None, :] * (1 - blush[:, None]) + BLUSH[None, :] * blush[:, None]
    for w, col in ((lips, LIP), (brows * 0.92, BROW), (hair, HAIR)):
        c = c * (1 - w[:, None]) + col[None, :] * w[:, None]
    out = np.ones((len(P), 4), np.float32)
    out[:, :3] = c
    return out
