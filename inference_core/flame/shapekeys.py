"""Shape keys for a FLAME-topology mesh, built from the FLAME model (pure numpy; no bpy).

Blender shape keys add linearly, FLAME does not: its jaw and eyes rotate (linear blend
skinning) and its pose correctives depend on sin/cos of the angle. So articulations are
*linearised*: each becomes one key equal to the least-squares best linear fit of the true
offsets over the range the key is meant for (for the jaw: the 0–0.35 rad speech uses),
and :func:`linearisation_error` measures how far the key strays from the real forward pass.
Expression blendshapes are linear in FLAME already and are copied exactly.

Keys are built on the *user's mesh*: its rest vertices stand in for T̄ + B_S (their own
identity), the joints are regressed from them, and a similarity transform fitted between
the mesh and the FLAME template maps offsets into the mesh's frame — so a head imported
Z-up, in centimetres or moved elsewhere still gets correct keys.

Names carry a ``FLAME_`` prefix (``FLAME_exp_000``, ``FLAME_jaw_open``) so they coexist with
keys other FLAME tools create; the ARKit set uses the 52 ARKit names so the bundled model's
channels bind by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .loader import FlameModel
from .model import pose_shaped, pose_vector

PREFIX = "FLAME_"
JAW_SPEECH_RANGE = 0.35  # rad (≈20°): the jaw opening speech uses; FLAME_jaw_open = 1 at this angle


def exp_key_name(i: int) -> str:
    return f"{PREFIX}exp_{i:03d}"


@dataclass
class ShapeKey:
    name: str
    offsets: np.ndarray          # (V, 3) in the mesh's frame, added to the rest positions
    slider_min: float = 0.0
    slider_max: float = 1.0
    note: str = ""


@dataclass
class Frame:
    """Similarity transform FLAME frame → mesh frame: x_mesh = scale * R @ x_flame + t."""

    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rms: float = 0.0              # residual after alignment, in FLAME units (metres)

    def to_mesh(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation

    def offsets_to_mesh(self, offsets: np.ndarray) -> np.ndarray:
        return self.scale * offsets @ self.rotation.T

    def to_flame(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.translation) @ self.rotation) / self.scale


class TopologyError(ValueError):
    """The mesh cannot carry FLAME keys (wrong vertex count or not FLAME's vertex order)."""


def fit_similarity(src: np.ndarray, dst: np.ndarray, max_rel_rms: float = 0.25) -> Frame:
    """Scale/rotation/translation best mapping ``src`` onto ``dst`` (Umeyama), same vertex order.

    Refuses a pairing whose vertex order does not correspond: after the best similarity
    fit, the residual stays a large fraction of the mesh size (``max_rel_rms``).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape:
        raise TopologyError(f"the mesh has {len(dst)} vertices; the model has {len(src)}")
    v = len(src)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var_s = (a ** 2).sum() / v
    cov = b.T @ a / v
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(3)
    if np.linalg.det(u @ vt) < 0:
        d[2, 2] = -1
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / var_s) if var_s > 0 else 0.0
    if scale <= 0:
        raise TopologyError("the mesh does not align with the model's template")
    frame = Frame(scale, rot, mu_d - scale * rot @ mu_s)
    resid = frame.to_flame(dst) - src
    frame.rms = float(np.sqrt((resid ** 2).sum(1).mean()))
    size = float(np.sqrt((a ** 2).sum(1).mean()))
    if frame.rms > max_rel_rms * size:
        raise TopologyError(
            f"the mesh has the model's vertex count but its vertices do not follow the model's order "
            f"(residual {frame.rms / size:.0%} of the head size after the best alignment)")
    return frame


def fit_frame(model: FlameModel, rest: np.ndarray, max_rel_rms: float = 0.25) -> Frame:
    """The mesh's frame relative to the FLAME template (see :func:`fit_similarity`)."""
    rest = np.asarray(rest, np.float64)
    if rest.shape != (model.num_vertices, 3):
        raise TopologyError(f"the mesh has {len(rest)} vertices; the FLAME model has {model.num_vertices}")
    return fit_similarity(model.v_template, rest, max_rel_rms)


def expression_keys(model: FlameModel, frame: Frame, count: int = 50) -> list[ShapeKey]:
    """The first ``count`` expression components, exact: key value w ≡ coefficient ψ_i = w."""
    count = min(count, model.n_expr)
    return [ShapeKey(exp_key_name(i), frame.offsets_to_mesh(model.expr_dirs[:, :, i]), -3.0, 3.0,
                     f"FLAME expression component {i} (value = coefficient, in standard deviations)")
            for i in range(count)]


def _articulate(model: FlameModel, rest_flame: np.ndarray, poses: np.ndarray,
                extra: np.ndarray | None = None) -> np.ndarray:
    """Offsets (B, V, 3) in FLAME frame of the mesh posed by each pose (B, 5, 3)."""
    shaped = rest_flame[None] if extra is None else rest_flame[None] + extra
    verts, _ = pose_shaped(model, shaped, poses)
    return verts - rest_flame[None]


@dataclass
class Recipe:
    """One shape key as FLAME parameters at slider value 1 (hand-designed, see ARKIT_RECIPES)."""

    jaw: tuple[float, float, float] = (0.0, 0.0, 0.0)
    left_eye: tuple[float, float, float] = (0.0, 0.0, 0.0)
    right_eye: tuple[float, float, float] = (0.0, 0.0, 0.0)
    eyelids: tuple[float, float] = (0.0, 0.0)        # needs eyelid blendshapes in the model
    expression: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Recipe":
        return cls(tuple(d.get("jaw", (0, 0, 0))), tuple(d.get("left_eye", (0, 0, 0))),  # type: ignore[arg-type]
                   tuple(d.get("right_eye", (0, 0, 0))), tuple(d.get("eyelids", (0, 0))),  # type: ignore[arg-type]
                   {int(k): float(v) for k, v in (d.get("expression") or {}).items()})

    @property
    def articulated(self) -> bool:
        return any(abs(x) > 0 for x in (*self.jaw, *self.left_eye, *self.right_eye))

    def pose(self) -> np.ndarray:
        return pose_vector(jaw=self.jaw, left_eye=self.left_eye, right_eye=self.right_eye)


EYE_YAW, EYE_PITCH, JAW_YAW = 0.4, 0.35, 0.12
#: ARKit channels FLAME can express from its own articulations. FLAME coordinates: y up,
#: z forward, the subject's left at +x; +x rotation opens the jaw / turns eyes down;
#: +y rotation turns chin/eyes toward the subject's left.
ARKIT_RECIPES: dict[str, Recipe] = {
    "jawOpen": Recipe(jaw=(JAW_SPEECH_RANGE, 0, 0)),
    "jawLeft": Recipe(jaw=(0, JAW_YAW, 0)),
    "jawRight": Recipe(jaw=(0, -JAW_YAW, 0)),
    "eyeLookOutLeft": Recipe(left_eye=(0, EYE_YAW, 0)),
    "eyeLookInLeft": Recipe(left_eye=(0, -EYE_YAW, 0)),
    "eyeLookOutRight": Recipe(right_eye=(0, -EYE_YAW, 0)),
    "eyeLookInRight": Recipe(right_eye=(0, EYE_YAW, 0)),
    "eyeLookUpLeft": Recipe(left_eye=(-EYE_PITCH, 0, 0)),
    "eyeLookUpRight": Recipe(right_eye=(-EYE_PITCH, 0, 0)),
    "eyeLookDownLeft": Recipe(left_eye=(EYE_PITCH, 0, 0)),
    "eyeLookDownRight": Recipe(right_eye=(EYE_PITCH, 0, 0)),
    "eyeBlinkLeft": Recipe(eyelids=(1.0, 0.0)),
    "eyeBlinkRight": Recipe(eyelids=(0.0, 1.0)),
}


def linear_key(model: FlameModel, rest_flame: np.ndarray, recipe: Recipe,
               samples: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares linear key over slider values 0..1 and the true offsets it was fitted to.

    Returns (key (V, 3), true offsets (samples, V, 3)) in FLAME frame; slider s ∈ [0, 1]
    scales every recipe parameter by s.
    """
    s = np.linspace(0.0, 1.0, samples + 1)[1:]
    extra = None
    lin = np.zeros_like(rest_flame)
    if recipe.expression:
        for i, c in recipe.expression.items():
            if not 0 <= i < model.n_expr:
                raise ValueError(f"expression component {i} does not exist (model has {model.n_expr})")
            lin = lin + c * model.expr_dirs[:, :, i]
    if any(recipe.eyelids):
        if model.eyelids is None:
            raise ValueError("this FLAME model has no eyelid blendshapes")
        lin = lin + recipe.eyelids[0] * model.eyelids[0] + recipe.eyelids[1] * model.eyelids[1]
    if not recipe.articulated:      # linear in FLAME already: exact
        return lin, s[:, None, None] * lin[None]
    extra = s[:, None, None] * lin[None]
    poses = s[:, None, None] * recipe.pose()[None]
    true = _articulate(model, rest_flame, poses, extra)
    key = np.einsum("s,svd->vd", s, true) / float((s ** 2).sum())
    return key, true


def linearisation_error(key: np.ndarray, true: np.ndarray, samples: int | None = None) -> dict[str, float]:
    """Max/RMS vertex distance between s·key and the true offsets over the fitted range."""
    n = true.shape[0]
    s = np.linspace(0.0, 1.0, n + 1)[1:]
    err = np.linalg.norm(true - s[:, None, None] * key[None], axis=-1)
    return {"max": float(err.max()), "rms": float(np.sqrt((err ** 2).mean())),
            "max_offset": float(np.linalg.norm(true, axis=-1).max())}


def jaw_key(model: FlameModel, rest: np.ndarray, frame: Frame, theta_max: float = JAW_SPEECH_RANGE,
            name: str = PREFIX + "jaw_open") -> tuple[ShapeKey, dict[str, float]]:
    """``FLAME_jaw_open``: value 1 ≙ jaw pitch ``theta_max``; error measured in FLAME units (m)."""
    rest_flame = frame.to_flame(np.asarray(rest, np.float64))
    key, true = linear_key(model, rest_flame, Recipe(jaw=(theta_max, 0.0, 0.0)), samples=36)
    err = linearisation_error(key, true)
    err["theta_max"] = theta_max
    return (ShapeKey(name, frame.offsets_to_mesh(key), 0.0, 1.5,
                     f"jaw opening, linearised; 1.0 = {theta_max:.2f} rad"), err)


def flame_keys(model: FlameModel, rest: np.ndarray, n_expr: int = 50
               ) -> tuple[list[ShapeKey], dict[str, Any]]:
    """Expression basis + jaw + eyelids (when the model has them), with a report of errors."""
    frame = fit_frame(model, rest)
    keys = expression_keys(model, frame, n_expr)
    jk, err = jaw_key(model, rest, frame)
    keys.append(jk)
    if model.eyelids is not None:
        for side, lid in zip(("left", "right"), model.eyelids):
            keys.append(ShapeKey(f"{PREFIX}eyelid_{side}", frame.offsets_to_mesh(lid), 0.0, 1.0,
                                 "eyelid blendshape (exact)"))
    return keys, {"jaw": err, "alignment_rms": frame.rms, "scale": frame.scale}


def arkit_keys(model: FlameModel, rest: np.ndarray, recipes: dict[str, Recipe] | None = None
               ) -> tuple[list[ShapeKey], dict[str, Any]]:
    """ARKit-named keys from per-channel FLAME recipes; channels without one are reported.

    The default recipes cover what FLAME's articulations and eyelids express; the other
    ARKit channels (smile, pucker, brows, …) need a user recipe of expression coefficients
    because FLAME's expression components are unnamed PCA directions.
    """
    from ..shared.channels import ARKIT_52

    recipes = dict(ARKIT_RECIPES if recipes is None else recipes)
    frame = fit_frame(model, rest)
    rest_flame = frame.to_flame(np.asarray(rest, np.float64))
    keys: list[ShapeKey] = []
    errors: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    for name in ARKIT_52:
        recipe = recipes.get(name)
        if recipe is None:
            skipped[name] = "no FLAME recipe"
            continue
        if any(recipe.eyelids) and model.eyelids is None:
            skipped[name] = "the FLAME model has no eyelid blendshapes"
            continue
        key, true = linear_key(model, rest_flame, recipe)
        errors[name] = linearisation_error(key, true)
        keys.append(ShapeKey(name, frame.offsets_to_mesh(key), 0.0, 1.0, "ARKit on FLAME (hand-designed recipe)"))
    unknown = sorted(set(recipes) - set(ARKIT_52))
    if unknown:
        raise ValueError(f"recipes name channels that are not ARKit: {', '.join(unknown[:5])}")
    return keys, {"errors": errors, "skipped": skipped, "alignment_rms": frame.rms}


def recipes_from_json(data: dict[str, Any]) -> dict[str, Recipe]:
    """User recipes (e.g. ``{"mouthSmileLeft": {"expression": {"1": 1.5, "4": -0.5}}}``) over the defaults."""
    out = dict(ARKIT_RECIPES)
    for name, d in data.items():
        if not isinstance(d, dict):
            raise ValueError(f"recipe for {name!r} must be an object")
        out[name] = Recipe.from_dict(d)
    return out
