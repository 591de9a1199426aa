"""FLAME forward pass against smplx's independent FLAME layer, and the shape keys built from it."""

from __future__ import annotations

import numpy as np
import pytest

from flame_helpers import synthetic_flame, write_smplx_folder
from inference_core.flame import model as fm
from inference_core.flame import shapekeys as sk
from inference_core.flame.loader import from_arrays, load_flame


@pytest.fixture(scope="module")
def arrays():
    return synthetic_flame(3, eyelids=True)


@pytest.fixture(scope="module")
def flame(arrays):
    return from_arrays(arrays)


def test_forward_matches_smplx(tmp_path, arrays):
    torch = pytest.importorskip("torch")
    smplx = pytest.importorskip("smplx")
    folder = write_smplx_folder(tmp_path / "smplx", {k: v for k, v in arrays.items() if "eyelid" not in k})
    mine_model = load_flame(folder / "FLAME_NEUTRAL.pkl")  # the same file, through our loader
    batch = 8
    layer = smplx.FLAME(model_path=str(folder), num_betas=300, num_expression_coeffs=100,
                        dtype=torch.float64, batch_size=batch)
    rng = np.random.default_rng(0)
    betas = rng.standard_normal((batch, 300))
    expr = rng.standard_normal((batch, 100)) * 2
    pose = rng.uniform(-0.5, 0.5, (batch, 5, 3))
    pose[0] = 0.0
    t = {k: torch.tensor(v) for k, v in dict(global_orient=pose[:, 0], neck_pose=pose[:, 1],
                                               jaw_pose=pose[:, 2], leye_pose=pose[:, 3],
                                               reye_pose=pose[:, 4]).items()}
    out = layer(betas=torch.tensor(betas), expression=torch.tensor(expr), **t)
    ref = out.vertices.detach().numpy()
    mine, joints = fm.forward(mine_model, betas, expr, pose, return_joints=True)
    err = np.abs(ref - mine).max()
    moved = np.abs(mine - fm.forward(mine_model)).max()
    print(f"forward pass vs smplx: max |Δ| = {err:.2e} m over {batch} random frames "
          f"(vertices move up to {moved:.3f} m)")
    assert moved > 0.05          # the comparison exercises real deformation
    assert err < 1e-6
    np.testing.assert_allclose(joints, out.joints.detach().numpy()[:, :5], atol=1e-6)


def test_forward_basics(flame):
    rest = fm.forward(flame)[0]
    np.testing.assert_allclose(rest, flame.v_template, atol=1e-12)
    # expression blendshapes are exactly linear; global rotation is rigid
    e = np.zeros(100)
    e[4] = 1.5
    np.testing.assert_allclose(fm.forward(flame, expression=e)[0] - rest, 1.5 * flame.expr_dirs[:, :, 4],
                               atol=1e-12)
    rot = fm.forward(flame, pose=fm.pose_vector(global_rot=[0, 0.7, 0]))[0]
    r = fm.rodrigues(np.array([0, 0.7, 0]))
    j0 = flame.J_regressor[0] @ rest
    np.testing.assert_allclose(rot, (rest - j0) @ r.T + j0, atol=1e-9)
    with pytest.raises(ValueError, match="101 expression"):
        fm.forward(flame, expression=np.zeros(101))
    np.testing.assert_allclose(fm.rodrigues(np.zeros(3)), np.eye(3))


def test_flame_keys_reproduce_forward_pass(flame):
    rest = fm.forward(flame)[0]
    keys, report = sk.flame_keys(flame, rest, n_expr=20)
    names = [k.name for k in keys]
    assert names[:2] == ["FLAME_exp_000", "FLAME_exp_001"] and "FLAME_jaw_open" in names
    assert names[-2:] == ["FLAME_eyelid_left", "FLAME_eyelid_right"]
    by = {k.name: k for k in keys}
    # expression keys: exact
    psi = np.random.default_rng(1).standard_normal(20)
    mix = rest + sum(psi[i] * by[sk.exp_key_name(i)].offsets for i in range(20))
    np.testing.assert_allclose(mix, fm.forward(flame, expression=psi)[0], atol=1e-9)
    # jaw: within the measured linearisation error over the speech range, with real motion
    jaw = by["FLAME_jaw_open"].offsets
    worst = 0.0
    for theta in np.linspace(0, sk.JAW_SPEECH_RANGE, 15):
        true = fm.forward(flame, pose=fm.pose_vector(jaw=[theta, 0, 0]))[0]
        worst = max(worst, np.linalg.norm(rest + theta / sk.JAW_SPEECH_RANGE * jaw - true, axis=1).max())
    travel = np.linalg.norm(jaw, axis=1).max()
    print(f"jaw linearisation over 0-{sk.JAW_SPEECH_RANGE} rad: max error {worst * 1000:.2f} mm "
          f"for {travel * 1000:.1f} mm of chin travel (report: {report['jaw']})")
    assert travel > 0.01
    assert worst <= report["jaw"]["max"] + 1e-9
    assert worst < 0.06 * travel
    # the least-squares key beats the naive chord (key sampled at the end angle) in RMS
    chord = fm.forward(flame, pose=fm.pose_vector(jaw=[sk.JAW_SPEECH_RANGE, 0, 0]))[0] - rest
    thetas = np.linspace(0, 1, 37)[1:]
    true = fm.forward(flame, pose=thetas[:, None, None] * fm.pose_vector(jaw=[sk.JAW_SPEECH_RANGE, 0, 0]))
    rms = lambda k: np.sqrt((np.linalg.norm(rest + thetas[:, None, None] * k - true, axis=-1) ** 2).mean())  # noqa: E731
    assert rms(jaw) < rms(chord)


def test_keys_follow_the_mesh_frame(flame):
    """A FLAME head stored Z-up in centimetres elsewhere gets the same keys, transformed."""
    rest = fm.forward(flame)[0]
    r = fm.rodrigues(np.array([np.pi / 2, 0, 0]))
    moved = 100.0 * rest @ r.T + np.array([3.0, -2.0, 10.0])
    keys_a, _ = sk.flame_keys(flame, rest, n_expr=3)
    keys_b, rep = sk.flame_keys(flame, moved, n_expr=3)
    assert rep["scale"] == pytest.approx(100.0)
    for a, b in zip(keys_a, keys_b):
        np.testing.assert_allclose(b.offsets, 100.0 * a.offsets @ r.T, atol=1e-7)


def test_wrong_meshes_are_refused(flame):
    rest = fm.forward(flame)[0]
    with pytest.raises(sk.TopologyError, match="5022 vertices"):
        sk.flame_keys(flame, rest[:-1])
    shuffled = rest[np.random.default_rng(0).permutation(len(rest))]
    with pytest.raises(sk.TopologyError, match="do not follow the model's order"):
        sk.flame_keys(flame, shuffled)


def test_arkit_keys_on_flame(flame, arrays):
    rest = fm.forward(flame)[0]
    keys, report = sk.arkit_keys(flame, rest)
    names = {k.name for k in keys}
    assert {"jawOpen", "jawLeft", "eyeLookUpLeft", "eyeBlinkLeft", "eyeBlinkRight"} <= names
    assert "mouthSmileLeft" in report["skipped"]
    by = {k.name: k for k in keys}
    # jawOpen at 1 is the jaw at the speech range; eye look moves only that eye's vertices
    full = fm.forward(flame, pose=fm.pose_vector(jaw=[sk.JAW_SPEECH_RANGE, 0, 0]))[0]
    assert np.linalg.norm(rest + by["jawOpen"].offsets - full, axis=1).max() <= report["errors"]["jawOpen"]["max"] + 1e-9
    left_eye = flame.weights[:, 3] > 0.5
    moved = np.linalg.norm(by["eyeLookOutLeft"].offsets, axis=1)
    # (the synthetic pose correctives move everything a little; the rotation dominates)
    assert moved[left_eye].mean() > 5 * moved[flame.weights[:, 4] > 0.5].mean()
    # eyeLookOutLeft turns the left eye's front toward the subject's left (+x)
    front = left_eye & (flame.v_template[:, 2] > np.median(flame.v_template[left_eye, 2]))
    assert by["eyeLookOutLeft"].offsets[front, 0].mean() > 0
    assert by["jawOpen"].offsets[:, 1].min() < -0.005   # the chin goes down
    # user recipes extend the defaults; eyelid channels are skipped when the model has none
    recipes = sk.recipes_from_json({"mouthSmileLeft": {"expression": {"2": 1.5}}})
    keys2, rep2 = sk.arkit_keys(flame, rest, recipes)
    smile = {k.name: k for k in keys2}["mouthSmileLeft"]
    np.testing.assert_allclose(smile.offsets, 1.5 * flame.expr_dirs[:, :, 2], atol=1e-12)
    bare = from_arrays({k: v for k, v in arrays.items() if "eyelid" not in k})
    _, rep3 = sk.arkit_keys(bare, rest)
    assert "eyeBlinkLeft" in rep3["skipped"]
    with pytest.raises(ValueError, match="not ARKit"):
        sk.arkit_keys(flame, rest, sk.recipes_from_json({"smile": {}}))
