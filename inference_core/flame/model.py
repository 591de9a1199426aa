"""FLAME forward pass in numpy: blendshapes, pose correctives, joints, linear blend skinning.

Written from the FLAME paper's definition (Li et al. 2017, SIGGRAPH Asia):

    T(β, ψ, θ) = T̄ + B_S(β) + B_E(ψ) + B_P(θ)      shape, expression, pose correctives
    M(β, ψ, θ) = W(T(β, ψ, θ), J(β, ψ), θ, 𝒲)       linear blend skinning

B_P is linear in the entries of (R(θ_k) − I) for the four non-root joints (neck, jaw,
eyes); J regresses the joints from the shaped mesh. Pure numpy so the Blender add-on
(which has no torch) builds shape keys from the exact same code the tests check
against an independent implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .loader import JOINT_NAMES, FlameModel


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) → rotation matrices (..., 3, 3); stable at zero angle."""
    aa = np.asarray(axis_angle, np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = aa / safe
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None]
    c = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + s * K + (1.0 - c) * (K @ K)


@dataclass
class FlameParams:
    """One frame's FLAME parameters; missing trailing coefficients are zero."""

    shape: np.ndarray | None = None        # (≤ n_shape,)
    expression: np.ndarray | None = None   # (≤ n_expr,)
    pose: np.ndarray | None = None         # (5, 3) axis-angle, rows in JOINT_NAMES order
    eyelids: np.ndarray | None = None      # (2,) left, right (only if the model has eyelid shapes)
    translation: np.ndarray | None = None  # (3,)


def pose_vector(global_rot=None, neck=None, jaw=None, left_eye=None, right_eye=None) -> np.ndarray:
    """Build the (5, 3) pose array from named joints (all zero by default)."""
    pose = np.zeros((len(JOINT_NAMES), 3))
    for i, value in enumerate((global_rot, neck, jaw, left_eye, right_eye)):
        if value is not None:
            pose[i] = value
    return pose


def _pad(values: np.ndarray | None, n: int, what: str, batch: int) -> np.ndarray:
    out = np.zeros((batch, n))
    if values is None:
        return out
    v = np.asarray(values, np.float64)
    if v.ndim == 1:
        v = np.broadcast_to(v, (batch, v.shape[0]))
    if v.shape[-1] > n:
        raise ValueError(f"{v.shape[-1]} {what} coefficients given; the model has {n}")
    out[:, : v.shape[-1]] = v
    return out


def shaped_template(model: FlameModel, shape=None, expression=None, eyelids=None) -> np.ndarray:
    """T̄ + B_S + B_E (+ eyelids) for a batch: returns (B, V, 3)."""
    batch = max([1] + [np.shape(x)[0] for x in (shape, expression, eyelids)
                       if x is not None and np.ndim(x) == 2])
    beta = _pad(shape, model.n_shape, "shape", batch)
    psi = _pad(expression, model.n_expr, "expression", batch)
    v = model.v_template[None] + np.einsum("vdk,bk->bvd", model.shape_dirs, beta)
    v = v + np.einsum("vdk,bk->bvd", model.expr_dirs, psi)
    if eyelids is not None:
        if model.eyelids is None:
            raise ValueError("this FLAME model has no eyelid blendshapes")
        e = _pad(eyelids, 2, "eyelid", batch)
        v = v + np.einsum("lvd,bl->bvd", model.eyelids, e)
    return v


def forward(model: FlameModel, shape=None, expression=None, pose=None, eyelids=None,
            translation=None, return_joints: bool = False):
    """Posed vertices (B, V, 3) for batched parameters (a single frame gives B = 1).

    ``pose`` is (5, 3) or (B, 5, 3) axis-angle: global, neck, jaw, left eye, right eye.
    """
    v_shaped = shaped_template(model, shape, expression, eyelids)
    verts, posed_joints = pose_shaped(model, v_shaped, pose)
    if translation is not None:
        t = np.asarray(translation, np.float64).reshape(-1, 1, 3)
        verts = verts + t
        posed_joints = posed_joints + t
    return (verts, posed_joints) if return_joints else verts


def pose_shaped(model: FlameModel, v_shaped: np.ndarray, pose=None) -> tuple[np.ndarray, np.ndarray]:
    """Pose correctives + LBS applied to an already shaped mesh (B, V, 3) → (verts, joints).

    Separate from :func:`forward` so shape keys can be built on a user's own FLAME-topology
    mesh: its rest vertices play the role of T̄ + B_S + B_E and the joints are regressed from them.
    """
    v_shaped = np.asarray(v_shaped, np.float64)
    if v_shaped.ndim == 2:
        v_shaped = v_shaped[None]
    nj = len(model.parents)
    if pose is None:
        pose = np.zeros((1, nj, 3))
    pose = np.asarray(pose, np.float64).reshape(-1, nj, 3)
    batch = max(v_shaped.shape[0], pose.shape[0])
    v_shaped = np.broadcast_to(v_shaped, (batch,) + v_shaped.shape[1:])
    pose = np.broadcast_to(pose, (batch, nj, 3))
    joints = np.einsum("jv,bvd->bjd", model.J_regressor, v_shaped)          # (B, J, 3)
    rots = rodrigues(pose)                                                   # (B, J, 3, 3)
    feat = (rots[:, 1:] - np.eye(3)).reshape(batch, -1)                      # (B, 9(J-1))
    v_posed = v_shaped + np.einsum("vdp,bp->bvd", model.posedirs, feat)
    # world transforms along the kinematic chain
    world = np.zeros((batch, nj, 4, 4))
    for j in range(nj):
        local = np.zeros((batch, 4, 4))
        local[:, :3, :3] = rots[:, j]
        local[:, 3, 3] = 1.0
        p = model.parents[j]
        local[:, :3, 3] = joints[:, j] - (joints[:, p] if p >= 0 else 0.0)
        world[:, j] = local if p < 0 else world[:, p] @ local
    posed_joints = world[:, :, :3, 3].copy()
    # remove the rest-pose joint location so each transform acts on rest-pose vertices
    rel = world.copy()
    rel[:, :, :3, 3] -= np.einsum("bjde,bje->bjd", world[:, :, :3, :3], joints)
    blend = np.einsum("vj,bjde->bvde", model.weights, rel)                  # (B, V, 4, 4)
    verts = np.einsum("bvde,bve->bvd", blend[:, :, :3, :3], v_posed) + blend[:, :, :3, 3]
    return verts, posed_joints


def forward_params(model: FlameModel, p: FlameParams) -> np.ndarray:
    """(V, 3) vertices for one :class:`FlameParams`."""
    return forward(model, p.shape, p.expression, p.pose, p.eyelids, p.translation)[0]
