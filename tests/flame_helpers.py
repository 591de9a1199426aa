"""FLAME-format model files the tests generate (the real FLAME model is licensed, never used).

The arrays are random but well formed and roughly head-like (metres, y up, z forward):
a half-ellipsoid face, two eyeball spheres, a jaw joint near the ears with smooth
skinning weights on the lower face, a sparse joint regressor, and smooth random
blendshapes. ``write_flame_pkl`` writes it the way FLAME's own Python-2-era files
look: chumpy ``Ch`` objects (emulated: chumpy is never imported), a scipy
``csc_matrix`` joint regressor, and Python 2 byte strings.
"""

from __future__ import annotations

import copyreg
import importlib.util
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

V, F = 5023, 9976


def synthetic_flame(seed: int = 0, n_vertices: int = V, n_faces: int = F, n_shape: int = 300,
                    n_expr: int = 100, eyelids: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    n_eye = max(4, n_vertices // 16)
    n_face = n_vertices - 2 * n_eye
    # face: points on the front half of an ellipsoid
    u = rng.uniform(-0.45 * np.pi, 0.45 * np.pi, n_face)
    w = rng.uniform(-0.5 * np.pi, 0.5 * np.pi, n_face)
    face = np.stack([0.075 * np.sin(u) * np.cos(w), 0.11 * np.sin(w), 0.09 * np.cos(u) * np.cos(w)], 1)
    eyes = []
    for sx in (1, -1):  # FLAME's left eye is at +x
        d = rng.standard_normal((n_eye, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        eyes.append(np.array([0.032 * sx, 0.03, 0.06]) + 0.012 * d)
    vt = np.concatenate([face] + eyes)
    eye_idx = [np.arange(n_face, n_face + n_eye), np.arange(n_face + n_eye, n_vertices)]

    def near(target, k=12):
        return np.argsort(np.linalg.norm(face - target, axis=1))[:k]

    jr = np.zeros((5, n_vertices))
    for j, (y, z) in enumerate([(-0.1, 0.0), (-0.07, 0.0), (-0.02, 0.0)]):  # root, neck, jaw
        idx = np.concatenate([near(np.array([0.075, y, z])), near(np.array([-0.075, y, z]))])
        jr[j, idx] = 1.0 / len(idx)
    for j, idx in zip((3, 4), eye_idx):
        jr[j, idx] = 1.0 / len(idx)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    wts = np.zeros((n_vertices, 5))
    y, z = face[:, 1], face[:, 2]
    jaw = sig((-0.025 - y) / 0.008) * sig((z - 0.02) / 0.01)
    neck = sig((-0.085 - y) / 0.006) * (1 - jaw)
    wts[:n_face, 2] = jaw
    wts[:n_face, 1] = neck
    wts[:n_face, 0] = 1 - jaw - neck
    wts[eye_idx[0], 3] = 1.0
    wts[eye_idx[1], 4] = 1.0

    def smooth(n, scale):
        proj = rng.standard_normal((3, 24)) * 30.0
        feats = np.concatenate([np.sin(vt @ proj), np.cos(vt @ proj)], 1)  # (V, 48)
        coef = rng.standard_normal((48, 3 * n)) * scale / np.sqrt(48)
        return (feats @ coef).reshape(n_vertices, 3, n)

    shapedirs = np.concatenate([smooth(n_shape, 4e-3), smooth(n_expr, 2e-3)], axis=2)
    posedirs = smooth(36, 1e-3)
    i = np.arange(n_faces)
    k = i // n_vertices
    faces = np.stack([i % n_vertices, (i + 1 + k) % n_vertices, (i + 3 + 2 * k) % n_vertices], 1)
    out = {
        "v_template": vt, "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": jr,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "weights": wts, "f": faces.astype(np.uint32), "bs_style": "lbs", "bs_type": "lrotmin",
    }
    if eyelids:
        for name, idx, sx in (("l_eyelid", eye_idx[0], 1), ("r_eyelid", eye_idx[1], -1)):
            lid = np.zeros((n_vertices, 3))
            near_eye = np.argsort(np.linalg.norm(face - np.array([0.032 * sx, 0.045, 0.07]), axis=1))[:40]
            lid[near_eye, 1] = -0.008
            out[name] = lid
    return out


# -- writing it the way FLAME's files look ------------------------------------------------
class _Ch:
    """Pickles as chumpy.ch.Ch (state {'x': array}) without chumpy existing."""

    def __init__(self, x):
        self.x = x


class _Csc:
    def __init__(self, dense):
        cols = [np.nonzero(dense[:, c])[0] for c in range(dense.shape[1])]
        self.state = {"_shape": dense.shape, "maxprint": 50, "format": "csc",
                      "indices": np.concatenate(cols).astype(np.int32),
                      "indptr": np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32),
                      "data": np.concatenate([dense[c, i] for i, c in enumerate(cols)]),
                      "has_sorted_indices": True}


def _fake_class(module: str, name: str) -> type:
    cls = type(name, (), {})
    cls.__module__ = module
    cls.__qualname__ = name
    return cls


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-Python pickler that writes bytes as Python 2 ``str`` (BINSTRING) like FLAME's files."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, f, newobj: bool, py2_strings: bool):
        super().__init__(f, protocol=2)
        self.newobj = newobj
        self.py2_strings = py2_strings
        self.fakes: dict[str, type] = {}

    def save_bytes(self, obj):
        if not self.py2_strings:
            return pickle._Pickler.save_bytes(self, obj)  # type: ignore[attr-defined]
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def reducer_override(self, obj):
        """Protocol 0/1 style: copy_reg._reconstructor(cls, object, None) + BUILD."""
        if isinstance(obj, _Ch):
            cls, state = self.fakes["ch"], {"x": obj.x}
        elif isinstance(obj, _Csc):
            cls, state = self.fakes["csc"], obj.state
        else:
            return NotImplemented
        return (copyreg._reconstructor, (cls, object, None), state)


def write_flame_pkl(path: Path, arrays: dict, chumpy: bool = True, sparse: bool = True,
                    py2_strings: bool = True, newobj: bool = True) -> Path:
    """Write ``arrays`` as a FLAME-style pickle (chumpy shapedirs/J, sparse J_regressor)."""
    data = dict(arrays)
    if chumpy:
        data["shapedirs"] = _Ch(data["shapedirs"])
        data["J"] = _Ch(data["J_regressor"] @ data["v_template"])
    if sparse:
        data["J_regressor"] = _Csc(data["J_regressor"])
    ch, csc = _fake_class("chumpy.ch", "Ch"), _fake_class("scipy.sparse.csc", "csc_matrix")
    if newobj:  # protocol 2 for new-style classes: NEWOBJ + BUILD(__dict__), as Python 2 wrote them
        for key, value in list(data.items()):
            if isinstance(value, (_Ch, _Csc)):
                inst = (ch if isinstance(value, _Ch) else csc).__new__(ch if isinstance(value, _Ch) else csc)
                inst.__dict__.update({"x": value.x} if isinstance(value, _Ch) else value.state)
                data[key] = inst
    mods = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch"),
            "scipy.sparse.csc": types.ModuleType("scipy.sparse.csc")}
    mods["chumpy.ch"].Ch = ch  # type: ignore[attr-defined]
    mods["scipy.sparse.csc"].csc_matrix = csc  # type: ignore[attr-defined]
    if importlib.util.find_spec("scipy") is None:  # pickle imports the parents too (Blender's Python has no scipy)
        mods.update({"scipy": types.ModuleType("scipy"), "scipy.sparse": types.ModuleType("scipy.sparse")})
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        with open(path, "wb") as fh:
            p = _Py2Pickler(fh, newobj, py2_strings)
            p.fakes = {"ch": ch, "csc": csc}
            p.dump(data)
    finally:
        for k, old in saved.items():
            if old is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = old
    return path


def write_plain_pkl(path: Path, arrays: dict, protocol: int = 4) -> Path:
    """A modern Python 3 pickle of plain numpy + a real scipy csc_matrix (FLAME 2023 style)."""
    import scipy.sparse

    data = dict(arrays)
    data["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)
    return path


def write_smplx_folder(folder: Path, arrays: dict) -> Path:
    """The layout smplx.FLAME reads: FLAME_NEUTRAL.pkl + flame_static_embedding.pkl (tests only)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_plain_pkl(folder / "FLAME_NEUTRAL.pkl", arrays, protocol=2)
    rng = np.random.default_rng(1)
    emb = {"lmk_face_idx": rng.integers(0, len(arrays["f"]), 51).astype(np.int64),
           "lmk_b_coords": rng.dirichlet(np.ones(3), 51)}
    with open(folder / "flame_static_embedding.pkl", "wb") as fh:
        pickle.dump(emb, fh, protocol=2)
    return folder


# -- fabricated VOCASET / BIWI layouts ----------------------------------------------------
def _speech_like(seconds: float, sr: int, rng) -> tuple[np.ndarray, callable]:
    """Voiced 'syllables' and their envelope as a function of time (louder = mouth more open)."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    rate, phase, f0 = rng.uniform(3, 5), rng.uniform(0, 2 * np.pi), rng.uniform(100, 220)

    def env(tt):
        return np.clip(np.sin(np.pi * rate * tt + phase), 0, None) ** 2

    sig = (np.sign(np.sin(2 * np.pi * f0 * t)) * 0.3 + rng.standard_normal(n) * 0.05) * env(t) * 0.6
    return sig, env


def vertex_sequences(n_subjects=3, n_sentences=2, seconds=2.0, fps=60.0, sr=22000, flame_arrays=None,
                     n_vertices=60, seed=0):
    """(subject, sentence, audio, sr, verts (T, V, 3)), templates: speech-driven synthetic motion.

    With ``flame_arrays`` the heads are FLAME heads (own identity, jaw + expressions driven by
    the audio envelope through the real forward pass); otherwise a small random topology.
    """
    from inference_core.flame import model as fm
    from inference_core.flame.loader import from_arrays

    rng = np.random.default_rng(seed)
    flame = from_arrays(flame_arrays) if flame_arrays is not None else None
    modes = rng.standard_normal((3, n_vertices, 3)) * np.array([4e-3, 2e-3, 1e-3])[:, None, None]
    templates, seqs = {}, []
    for s in range(n_subjects):
        subj = f"FaceTalk_1707{s:02d}_TA"
        if flame is not None:
            beta = rng.standard_normal(300) * 0.1  # ~7 mm identity differences
            templates[subj] = fm.forward(flame, shape=beta)[0]
        else:
            templates[subj] = rng.standard_normal((n_vertices, 3)) * 0.05
        for q in range(n_sentences):
            audio, env = _speech_like(seconds, sr, rng)
            tt = np.arange(int(seconds * fps)) / fps
            e = env(tt)
            slow = np.sin(2 * np.pi * tt / seconds + rng.uniform(0, 6))
            if flame is not None:
                pose = np.zeros((len(tt), 5, 3))
                pose[:, 2, 0] = 0.3 * e
                expr = np.stack([1.5 * e, 0.8 * slow, 0.5 * np.cos(3 * tt)], 1)
                verts = fm.forward(flame, shape=beta, expression=expr, pose=pose)
            else:
                verts = templates[subj][None] + e[:, None, None] * modes[0] + slow[:, None, None] * modes[1] \
                    + (e * slow)[:, None, None] * modes[2] + rng.standard_normal((len(tt), n_vertices, 3)) * 1e-5
            seqs.append((subj, f"sentence{q + 1:02d}", audio, sr, verts.astype(np.float32)))
    return seqs, templates


def write_vocaset(root: Path, seqs, templates) -> Path:
    """VOCASET release layout: data_verts.npy + raw_audio_fixed.pkl + subj_seq_to_idx.pkl + templates.pkl."""
    root.mkdir(parents=True, exist_ok=True)
    verts, audio, index, row = [], {}, {}, 0
    for subj, sent, pcm, sr, v in seqs:
        audio.setdefault(subj, {})[sent] = {"audio": (pcm * 32767).astype(np.int16), "sample_rate": sr}
        index.setdefault(subj, {})[sent] = {i + 1: row + i for i in range(len(v))}  # 1-based frame ids
        row += len(v)
        verts.append(v)
    np.save(root / "data_verts.npy", np.concatenate(verts))
    for name, obj in (("raw_audio_fixed.pkl", audio), ("subj_seq_to_idx.pkl", index),
                      ("templates.pkl", templates)):
        with open(root / name, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)
    return root


def write_sequences(root: Path, seqs, templates) -> Path:
    """BIWI / FaceFormer layout: vertices_npy/<subj>_<sent>.npy (T, V*3) + wav/ + templates.pkl."""
    import soundfile as sf

    (root / "vertices_npy").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    for subj, sent, pcm, sr, v in seqs:
        np.save(root / "vertices_npy" / f"{subj}_{sent}.npy", v.reshape(len(v), -1))
        sf.write(str(root / "wav" / f"{subj}_{sent}.wav"), pcm, sr)
    with open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh, protocol=2)
    return root
