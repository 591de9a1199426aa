"""The demo head's geometry and shape keys, measured in pure numpy (no Blender)."""

from __future__ import annotations

import numpy as np
import pytest

from inference_core.shared.channels import ARKIT_52
from streamingtalker_addon.demo_head import geometry as hg

MM = 0.001
FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def head() -> hg.HeadData:
    return hg.build_head()


def _edges(faces) -> np.ndarray:
    out = []
    for f in faces:
        for i in range(len(f)):
            out.append((f[i], f[(i + 1) % len(f)]))
    return np.array(out)


def _pocket(head: hg.HeadData) -> np.ndarray:
    """Vertices of the inner mouth/eye pockets (by material of the faces using them)."""
    mask = np.zeros(len(head.vertices), bool)
    inner = {hg.MATERIALS.index(n) for n in ("MouthInside", "Teeth", "EyeSocket")}
    for f, m in zip(head.faces, head.face_materials):
        if m in inner:
            mask[list(f)] = True
    return mask


def test_deterministic_and_complete():
    a = hg._build_cached.__wrapped__()
    b = hg._build_cached.__wrapped__()
    assert np.array_equal(a.vertices, b.vertices)
    assert a.faces == b.faces
    assert list(a.shape_keys) == list(ARKIT_52)
    for name in ARKIT_52:
        assert np.array_equal(a.shape_keys[name], b.shape_keys[name]), name


def test_sizes_and_key_magnitudes(head):
    V = len(head.vertices)
    assert 3000 <= V <= 15000
    assert head.vertices.dtype == np.float32 and np.isfinite(head.vertices).all()
    quads = sum(len(f) == 4 for f in head.faces)
    assert quads / len(head.faces) > 0.95
    assert len(head.face_materials) == len(head.faces)
    assert head.colours.shape == (V, 4)
    height = np.ptp(head.vertices[:, 2])
    assert 0.25 < height < 0.35  # crown to neck, metres
    for name, off in head.shape_keys.items():
        assert off.shape == (V, 3) and off.dtype == np.float32 and np.isfinite(off).all(), name
        peak = np.linalg.norm(off, axis=1).max()
        assert 1.5 * MM < peak < 60 * MM, (name, peak)


def test_closed_oriented_manifold(head):
    e = _edges(head.faces)
    # every directed edge once, and its reverse exactly once: closed, consistently oriented
    directed = {tuple(x) for x in e.tolist()}
    assert len(directed) == len(e)
    assert all((b, a) in directed for a, b in directed)
    n_edges = len(e) // 2
    V, F = len(head.vertices), len(head.faces)
    assert V - n_edges + F == 2  # a sphere: no handles, no holes
    # outward normals: positive enclosed volume of a plausible size (litres)
    P = head.vertices.astype(np.float64)
    vol = 0.0
    for f in head.faces:
        for i in range(1, len(f) - 1):
            vol += np.dot(P[f[0]], np.cross(P[f[i]], P[f[i + 1]])) / 6
    assert 3.0e-3 < vol < 7.0e-3
    assert all(len(set(f)) == len(f) >= 3 for f in head.faces)


def test_lips_rest_open_close(head):
    assert abs(head.lip_gap()) < 0.3 * MM
    gap = head.lip_gap({"jawOpen": 1.0})
    assert 28 * MM < gap < 45 * MM  # ICT FaceKit's jawOpen parts the lips by 39 mm
    assert head.lip_gap({"jawOpen": 0.3}) == pytest.approx(0.3 * gap, rel=1e-4)
    for w in (0.25, 0.6, 1.0):  # mouthClose at the same weight as jawOpen seals the lips
        assert abs(head.lip_gap({"jawOpen": w, "mouthClose": w})) < 0.3 * MM
    # the jaw opens by rotating: the lower lip also moves back, the chin moves down and back
    p0 = head.posed({})[head.landmarks["chin"]]
    p1 = head.posed({"jawOpen": 1.0})[head.landmarks["chin"]]
    assert p1[2] < p0[2] - 20 * MM and p1[1] > p0[1]


def test_rounding_and_spreading(head):
    w0 = head.mouth_width()
    assert 40 * MM < w0 < 60 * MM
    assert head.mouth_width({"mouthPucker": 1}) < 0.9 * w0
    assert abs(head.lip_gap({"mouthPucker": 1})) < 1 * MM  # a kiss: narrow and closed
    assert head.mouth_width({"mouthFunnel": 1}) < 0.95 * w0
    assert head.lip_gap({"mouthFunnel": 1}) > 6 * MM  # an "oo": rounded opening
    for name in ("mouthPucker", "mouthFunnel"):  # both push the lips forward
        c = head.landmarks["upper_lip_centre"]
        assert head.shape_keys[name][c, 1] < -5 * MM
    assert head.mouth_width({"mouthSmileLeft": 1, "mouthSmileRight": 1}) > w0 + 8 * MM
    assert head.mouth_width({"mouthStretchLeft": 1, "mouthStretchRight": 1}) > w0 + 6 * MM
    cl, cr = head.landmarks["mouth_corner_left"], head.landmarks["mouth_corner_right"]
    smile = head.shape_keys["mouthSmileLeft"]
    assert smile[cl, 2] > 5 * MM and abs(smile[cr]).max() < 0.2 * MM  # one-sided, upwards
    assert head.shape_keys["mouthFrownLeft"][cl, 2] < -4 * MM
    assert head.lip_gap({"mouthLowerDownLeft": 1, "mouthLowerDownRight": 1}) > 3 * MM
    assert head.lip_gap({"mouthUpperUpLeft": 1, "mouthUpperUpRight": 1}) > 3 * MM
    assert head.shape_keys["mouthLeft"][cl, 0] > 4 * MM and head.shape_keys["mouthRight"][cr, 0] < -4 * MM
    # rolls tuck the lip seam inwards (+Y); shrug lower pushes the lower lip up
    up, lo = head.landmarks["upper_lip_centre"], head.landmarks["lower_lip_centre"]
    assert head.shape_keys["mouthRollUpper"][up, 1] > 2 * MM
    assert head.shape_keys["mouthRollLower"][lo, 1] > 2 * MM
    assert head.shape_keys["mouthShrugLower"][lo, 2] > 2 * MM


@pytest.mark.parametrize("side", ["left", "right"])
def test_blink_closes_one_lid(head, side):
    other = "right" if side == "left" else "left"
    key = "eyeBlink" + side.capitalize()
    rest = head.lid_gap(side)
    assert 7 * MM < rest < 14 * MM
    assert abs(head.lid_gap(side, {key: 1.0})) < 0.3 * MM
    assert head.lid_gap(other, {key: 1.0}) == pytest.approx(head.lid_gap(other), abs=1e-6)
    assert head.lid_gap(side, {"eyeWide" + side.capitalize(): 1}) > rest + 2 * MM
    assert head.lid_gap(side, {"eyeSquint" + side.capitalize(): 1}) < rest - 2 * MM


def test_lids_never_cut_into_the_eyeballs(head):
    skin = ~_pocket(head)
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        for extra in ({}, {"eyeSquintLeft": 1.0}, {"eyeLookDownLeft": 1.0}, {"eyeLookUpLeft": 1.0}):
            weights = {"eyeBlinkLeft": w, "eyeBlinkRight": w, **extra}
            P = head.posed(weights)[skin]
            for eye in head.eyes:
                d = np.linalg.norm(P - eye.centre, axis=1)
                # linear in-betweens cut chords of the lid's arc: allow half a millimetre
                assert d.min() > eye.radius - 0.5 * MM, (w, extra, d.min())


def test_mirror_symmetry(head):
    P = head.vertices.astype(np.float64)
    m = head.mirror
    assert np.array_equal(m[m], np.arange(len(P)))  # an involution
    np.testing.assert_allclose(P[m] * FLIP, P, atol=1e-7)
    # independent of the map: every mirrored vertex lands on a vertex of the mesh
    from scipy.spatial import cKDTree
    dist, _ = cKDTree(P).query(P * FLIP)
    assert dist.max() < 1e-6
    for name in ARKIT_52:
        off = head.shape_keys[name].astype(np.float64)
        if name.endswith("Left"):
            twin = name[:-4] + "Right"
            np.testing.assert_allclose(head.shape_keys[twin][m] * FLIP, off, atol=1e-7, err_msg=name)
            if name not in ("jawLeft", "mouthLeft"):  # those two shift the whole jaw / mouth
                assert np.abs(off[P[:, 0] < -0.02]).max() < 1e-4, name  # left keys stay on the left
        elif not name.endswith("Right") and name not in ("jawLeft", "jawRight"):
            np.testing.assert_allclose(off[m] * FLIP, off, atol=1e-7, err_msg=name)


def test_deformations_are_smooth_and_local(head):
    skin = ~_pocket(head)
    e = _edges(head.faces)
    e = e[skin[e[:, 0]] & skin[e[:, 1]]]
    P = head.vertices.astype(np.float64)
    length = np.linalg.norm(P[e[:, 0]] - P[e[:, 1]], axis=1)
    for name, off in head.shape_keys.items():
        # strain: how much an edge's ends move apart relative to its length. A torn or
        # discontinuous field shows up as a large value on some short edge.
        strain = np.linalg.norm(off[e[:, 0]] - off[e[:, 1]], axis=1) / length
        # lids and jaw stretch the skin they pull (the lid crease unfolds); a tear would be ≫ 10
        limit = 3.0 if name.startswith(("eyeBlink", "jaw", "mouthClose", "eyeLookDown")) else 1.0
        assert strain.max() < limit, (name, strain.max())
        moved = np.linalg.norm(off, axis=1) > 0.05 * MM
        if name.startswith(("mouth", "jaw", "tongue")):
            assert not (moved & (P[:, 2] > 0.03)).any(), name  # nothing above the eyes
        if name.startswith(("eye", "brow")):
            assert not (moved & (P[:, 2] < -0.03)).any(), name  # nothing below the nose
        assert not (moved & (P[:, 1] > 0.06)).any(), name  # the back of the head never moves


def test_vertex_groups_and_landmarks(head):
    V = len(head.vertices)
    for name, (idx, w) in head.vertex_groups.items():
        assert len(idx) > 0 and idx.max() < V and (w > 0).all() and (w <= 1 + 1e-6).all(), name
    for g in ("jaw", "lip_upper", "lip_lower", "eyelid_upper_L", "eyelid_upper_R"):
        assert g in head.vertex_groups
    P = head.vertices
    lm = head.landmarks
    assert P[lm["mouth_corner_left"], 0] > 0 > P[lm["mouth_corner_right"], 0]
    assert P[lm["eyelid_upper_left"], 2] > P[lm["eyelid_lower_left"], 2]
    assert P[lm["nose_tip"], 1] == pytest.approx(P[:, 1].min(), abs=2 * MM)  # the most forward point
    for eye in head.eyes:
        assert len(eye.faces) == len(eye.face_materials)
        assert np.allclose(np.linalg.norm(eye.vertices, axis=1)[eye.vertices[:, 1] > 0], eye.radius, atol=1e-6)
