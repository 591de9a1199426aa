"""Read a user's FLAME model file (.pkl or .npz) without ever running code from it.

FLAME ships as Python-2-era pickles holding numpy arrays, a scipy sparse
``J_regressor`` and chumpy ``Ch`` objects. ``pickle.load`` on such a file can
execute anything the file asks for, and chumpy/scipy may be missing (Blender
has neither), so :class:`RestrictedUnpickler` admits an explicit allow-list:
numpy array/dtype reconstruction, and stand-ins that merely *record the state*
of chumpy and scipy.sparse objects, converted afterwards with numpy alone.
Anything else is refused with :class:`FlameFileError` before it is called.

numpy + stdlib only, so the Blender add-on imports this module directly.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.paths import NotARegularFile, open_regular, path_kind
from .bounds import MAX_ARRAY_BYTES, MAX_MEMBERS, BoundsError, Budget, prescan_pickle, read_npy

#: FLAME's fixed topology (2020 and 2023 releases).
FLAME_VERTICES = 5023
FLAME_FACES = 9976
FLAME_JOINTS = 5
#: FLAME's joint order (kintree_table columns): the pose vector is 5 axis-angle triples in this order.
JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")
MAX_FILE_BYTES = 512 << 20  # a real FLAME file is ~50-300 MB; refuse absurd inputs early
#: Links followed from a chumpy object to the array it stores (real files: one or two).
MAX_CHAIN = 32


class FlameFileError(ValueError):
    """The file is not a usable FLAME model (unsafe, truncated, or wrong content)."""


# -- stand-ins: objects the pickle may build, which only remember their state ---------------
class _Recorded:
    """Base for stand-ins: ``__setstate__`` keeps the state; nothing else runs."""

    kind = "object"
    args: tuple[Any, ...] = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class ChumpyStandIn(_Recorded):
    """Replaces any ``chumpy`` class: a stored ``Ch`` keeps its array in ``state['x']``."""

    kind = "chumpy"
    source = "chumpy"


class SparseStandIn(_Recorded):
    """Replaces a scipy.sparse csc/csr/coo matrix: the state holds its index arrays."""

    kind = "sparse"
    fmt = "csc"


def _sparse_class(fmt: str) -> type:
    return type(f"Sparse_{fmt}", (SparseStandIn,), {"fmt": fmt})


_SPARSE = {fmt: _sparse_class(fmt) for fmt in ("csc", "csr", "coo")}
_CHUMPY_CLASSES: dict[str, type] = {}


def _chumpy_class(name: str) -> type:
    if name not in _CHUMPY_CLASSES:
        _CHUMPY_CLASSES[name] = type(f"Chumpy_{name}", (ChumpyStandIn,), {"source": name})
    return _CHUMPY_CLASSES[name]


class _ObjectBase:
    """What ``__builtin__.object`` resolves to: accepted only as _reconstructor's base."""

    def __call__(self, *args: Any) -> Any:
        raise FlameFileError("the file tries to call 'object' directly (not FLAME array data)")


_OBJECT = _ObjectBase()


class _NdarrayName(_ObjectBase):
    """What ``numpy.ndarray`` resolves to: only a marker for ``_reconstruct``, never called."""

    def __call__(self, *args: Any) -> Any:
        raise FlameFileError("the file tries to call numpy.ndarray directly (not pickled array data)")


_NDARRAY = _NdarrayName()


# -- safe replacements of the few callables numpy pickles name -------------------------------
# numpy's own __setstate__ (C code) trusts its input: a malformed dtype state crashed it
# (found by tests/test_fuzz.py). So a pickle never reaches it with a state that was not
# checked here first, in Python: dtypes are stand-ins that keep a plain numeric type and
# its byte order, and arrays check shape, type and data length before numpy fills them.
_PLAIN_KINDS = "biufcOSU"


def _real_dtype(value: Any) -> np.dtype:
    """A plain dtype (numbers, bool, object, fixed strings) from what a pickle names."""
    if isinstance(value, _DtypeStandIn):
        return value.dtype
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if isinstance(value, str) and len(value) <= 16:
        try:
            dt = np.dtype(value)
        except (TypeError, ValueError):
            dt = None
        if dt is not None and dt.kind in _PLAIN_KINDS and dt.fields is None and dt.subdtype is None:
            return dt
    raise FlameFileError(f"the file names the data type {str(value)[:40]!r}, not a plain numeric type")


class _DtypeStandIn:
    """What ``numpy.dtype(...)`` builds: the type, and from its pickled state only the byte order."""

    def __init__(self, name: Any = None, align: Any = False, copy: Any = False) -> None:
        self.dtype = _real_dtype(name)

    def __setstate__(self, state: Any) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if order in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)


class _SafeArray(np.ndarray):
    """What ``_reconstruct`` builds: its state is checked before numpy's __setstate__ sees it."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise FlameFileError("an array's pickled state is malformed")
        shape, dtype, fortran, raw = state[-4:]
        if not (isinstance(shape, tuple) and len(shape) <= 32
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise FlameFileError(f"an array's shape is malformed ({str(shape)[:60]})")
        dt = _real_dtype(dtype)
        count = math.prod(shape)
        if isinstance(raw, str):
            raw = raw.encode("latin1")  # Python 2 str
        if dt.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                raise FlameFileError("an array of objects has the wrong number of items")
        elif not isinstance(raw, (bytes, bytearray)) or len(raw) != count * dt.itemsize:
            raise FlameFileError(f"an array of shape {shape} has {len(raw) if hasattr(raw, '__len__') else 'no'} "
                                 f"bytes of data, not {count * dt.itemsize}")
        np.ndarray.__setstate__(self, (1, shape, dt, bool(fortran), raw))


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not _NDARRAY:
        raise FlameFileError("the file asks numpy to rebuild an array of a foreign class")
    # numpy pickles rebuild an empty placeholder here and fill it in __setstate__
    return np.ndarray.__new__(_SafeArray, (0,), np.dtype("b"))


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    dt = _real_dtype(dtype)
    if dt.hasobject or not isinstance(buf, (bytes, bytearray)):
        raise FlameFileError("the file holds an array of Python objects, not numbers")
    arr = np.frombuffer(bytes(buf), dtype=dt)
    return arr.reshape(shape, order="F" if order == "F" else "C").copy()


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    dt = _real_dtype(dtype)
    if dt.hasobject or not isinstance(data, (str, bytes)):
        raise FlameFileError("the file holds a numpy object scalar, not a number")
    raw = data.encode("latin1") if isinstance(data, str) else data
    return np.frombuffer(raw, dtype=dt, count=1)[0]


def _safe_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise FlameFileError("unexpected use of _codecs.encode in the file")
    return text.encode(encoding)


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, _Recorded)) or base is not _OBJECT:
        raise FlameFileError("the file rebuilds an object this loader does not admit")
    obj = cls.__new__(cls)
    obj.args, obj.state = (), None
    return obj


_NUMPY_CORE = {"numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
               "numpy._core.numeric"}
_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in _NUMPY_CORE:
    _ALLOWED[(_mod, "_reconstruct")] = _safe_reconstruct
    _ALLOWED[(_mod, "scalar")] = _safe_scalar
    _ALLOWED[(_mod, "_frombuffer")] = _safe_frombuffer
_ALLOWED[("numpy", "ndarray")] = _NDARRAY
_ALLOWED[("numpy", "dtype")] = _DtypeStandIn
_ALLOWED[("_codecs", "encode")] = _safe_encode
for _mod in ("copy_reg", "copyreg"):
    _ALLOWED[(_mod, "_reconstructor")] = _safe_reconstructor
for _mod in ("__builtin__", "builtins"):
    _ALLOWED[(_mod, "object")] = _OBJECT


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed names (see module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        hit = _ALLOWED.get((module, name))
        if hit is not None:
            return hit
        if module.startswith("chumpy"):
            return _chumpy_class(f"{module}.{name}")
        if module.startswith("scipy.sparse"):
            fmt = name.split("_")[0]
            if fmt in _SPARSE and name.endswith(("_matrix", "_array")):
                return _SPARSE[fmt]
        raise FlameFileError(
            f"refusing to load: the file references '{module}.{name}', which is not array data. "
            "A FLAME model file holds only numpy arrays, chumpy arrays and a sparse matrix; this "
            "file may be malicious or is not a FLAME model.")


def restricted_loads(data: bytes) -> Any:
    """Unpickle bytes with the allow-list; Python 2 strings decode as latin1 (FLAME's own files).

    The bytes are pre-scanned first (:func:`~.bounds.prescan_pickle`): nesting depth, length and
    re-used data are bounded before the unpickler builds anything."""
    try:
        prescan_pickle(data)
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except BoundsError as exc:
        raise FlameFileError(str(exc)) from None
    except FlameFileError:
        raise
    except (pickle.UnpicklingError, EOFError) as exc:
        raise FlameFileError(f"the pickle is truncated or corrupt ({exc})") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError,
            OverflowError, UnicodeError, RecursionError) as exc:
        raise FlameFileError(f"the pickle does not decode as array data ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None


# -- converting what the pickle produced into plain numpy -------------------------------------
def to_array(value: Any, key: str = "") -> Any:
    """Plain numpy from a recorded chumpy/sparse object (other values unchanged).

    Follows chumpy objects to the array they store and unwraps 0-d object arrays, at most
    MAX_CHAIN links: a deep or cyclic chain is refused, never recursed into."""
    for _ in range(MAX_CHAIN):
        if isinstance(value, ChumpyStandIn):
            state = value.state if isinstance(value.state, dict) else {}
            if state.get("x") is None:
                raise FlameFileError(
                    f"'{key}' is a chumpy {value.source} expression, not stored array data; "
                    "re-save the model with plain numpy arrays")
            value = state["x"]
        elif isinstance(value, SparseStandIn):
            return _sparse_to_dense(value, key)
        elif isinstance(value, np.ndarray) and value.dtype.hasobject:
            if value.shape != ():
                raise FlameFileError(f"'{key}' is an array of Python objects, not numbers")
            value = value.item()
        else:
            return value
    raise FlameFileError(f"'{key}' is a chain of more than {MAX_CHAIN} wrapped objects (or a cycle), "
                         "not array data")


def _sparse_to_dense(sp: SparseStandIn, key: str) -> np.ndarray:
    st = sp.state if isinstance(sp.state, dict) else {}
    try:
        raw_shape: Any = st.get("_shape") or st.get("shape")  # None -> TypeError, reported below
        shape = tuple(int(s) for s in raw_shape)
        if len(shape) != 2 or min(shape) < 0:
            raise ValueError("not 2-D")
        if math.prod(shape) * 8 > MAX_ARRAY_BYTES:
            raise FlameFileError(f"'{key}' is a sparse matrix of shape {shape}: as dense numbers that is "
                                 f"{math.prod(shape) * 8 / 2**30:.1f} GiB, past the {MAX_ARRAY_BYTES >> 20} MiB "
                                 "a FLAME array takes")
        out = np.zeros(shape, np.float64)
        data = np.asarray(st["data"], np.float64)
        if sp.fmt == "coo":
            row = np.asarray(st.get("row", st.get("coords", [None])[0]), np.int64)
            col = np.asarray(st.get("col", st.get("coords", [None, None])[1]), np.int64)
            np.add.at(out, (row, col), data)
            return out
        indices = np.asarray(st["indices"], np.int64)
        indptr = np.asarray(st["indptr"], np.int64)
        major = shape[1] if sp.fmt == "csc" else shape[0]
        if len(indptr) != major + 1 or indptr[-1] > len(data) or len(indices) < indptr[-1]:
            raise ValueError("index arrays inconsistent with the shape")
        counts = np.diff(indptr)
        if (counts < 0).any():
            raise ValueError("indptr is not increasing")
        majors = np.repeat(np.arange(major), counts)
        minors = indices[: indptr[-1]]
        if sp.fmt == "csc":
            np.add.at(out, (minors, majors), data[: indptr[-1]])
        else:
            np.add.at(out, (majors, minors), data[: indptr[-1]])
        return out
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise FlameFileError(f"'{key}' is a malformed sparse matrix ({str(exc)[:200]})") from None


# -- the model -------------------------------------------------------------------------------
@dataclass
class FlameModel:
    """FLAME's arrays as plain float64 numpy (see :mod:`.model` for the forward pass)."""

    v_template: np.ndarray        # (V, 3)
    shapedirs: np.ndarray         # (V, 3, n_shape + n_expr)
    posedirs: np.ndarray          # (V, 3, 9 * (J - 1))
    J_regressor: np.ndarray       # (J, V) dense
    parents: np.ndarray           # (J,) int, parents[0] == -1
    weights: np.ndarray           # (V, J)
    faces: np.ndarray             # (F, 3) int
    n_shape: int
    n_expr: int
    eyelids: np.ndarray | None = None   # (2, V, 3): left, right eyelid blendshapes, if the file has them
    source: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def shape_dirs(self) -> np.ndarray:
        return self.shapedirs[:, :, : self.n_shape]

    @property
    def expr_dirs(self) -> np.ndarray:
        return self.shapedirs[:, :, self.n_shape: self.n_shape + self.n_expr]


_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
_EYELID_KEYS = (("l_eyelid", "r_eyelid"), ("eyelid_left", "eyelid_right"))


def load_flame(path: str | Path, expect_vertices: int | None = FLAME_VERTICES) -> FlameModel:
    """Load and validate a FLAME model file (.pkl, .npz); raise FlameFileError with the reason.

    ``expect_vertices=None`` accepts any consistent vertex count (tests of the maths on
    small meshes); by default the file must have FLAME's 5023-vertex topology.
    """
    path = Path(path)
    raw = _read_file(path)
    if raw[:4] == b"PK\x03\x04":
        data = read_npz(raw, path.name)
    else:
        data = restricted_loads(raw)
        if not isinstance(data, dict):
            raise FlameFileError(f"{path.name} holds a {type(data).__name__}, not the dictionary "
                                 "of arrays a FLAME model file contains")
    model = from_arrays(data, expect_vertices, name=path.name)
    model.source = str(path)
    if model.eyelids is None:
        model.eyelids = _sidecar_eyelids(path, model.num_vertices)
    return model


def _read_file(path: Path) -> bytes:
    """The file's bytes: a regular file of sane size (a FIFO is refused instead of read forever)."""
    kind = path_kind(path)
    if kind == "missing":
        raise FlameFileError(f"FLAME model file not found: {path}")
    if kind == "folder":
        raise FlameFileError(f"{path} is a folder; choose the FLAME model file inside it "
                             "(e.g. generic_model.pkl, flame2023.pkl)")
    if kind == "unreadable":
        raise FlameFileError(f"cannot read {str(path)[:200]} (no permission, or not a valid file name)")
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except NotARegularFile as exc:
        raise FlameFileError(str(exc)) from None
    except OSError as exc:
        raise FlameFileError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if not raw:
        raise FlameFileError(f"{path.name} is empty")
    if len(raw) > MAX_FILE_BYTES:
        raise FlameFileError(f"{path.name} is over {MAX_FILE_BYTES >> 20} MiB, too large for a FLAME model")
    return raw


def read_npz(raw: bytes, name: str) -> dict[str, Any]:
    """npz members are .npy files, read header first within a budget (a zip bomb or a header
    claiming terabytes is refused before it inflates); object arrays inside are pickles and go
    through the allow-list."""
    out: dict[str, Any] = {}
    budget = Budget()
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise FlameFileError(f"{name} has {len(members)} members; a FLAME .npz has about ten")
            for info in members:
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with zf.open(info) as fh:
                    value = read_npy(fh, f"{name}:{info.filename[:80]}", budget)
                out[key] = restricted_loads(value) if isinstance(value, bytes) else value
    except FlameFileError:
        raise
    except BoundsError as exc:
        raise FlameFileError(str(exc)) from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
        raise FlameFileError(f"{name} is not a readable .npz archive (truncated or corrupt: {str(exc)[:200]})"
                             ) from None
    return out


def _sidecar_eyelids(path: Path, v: int) -> np.ndarray | None:
    """Eyelid blendshapes some FLAME toolkits ship as l_eyelid.npy / r_eyelid.npy beside the model."""
    left, right = path.parent / "l_eyelid.npy", path.parent / "r_eyelid.npy"
    if not (left.exists() and right.exists()):
        return None
    try:
        arrs = []
        for p in (left, right):
            with open_regular(p) as fh:
                arr = read_npy(fh, p.name, Budget(2 * MAX_ARRAY_BYTES))
            if isinstance(arr, bytes):
                return None
            arrs.append(arr.astype(np.float64).reshape(v, 3))
    except (ValueError, OSError):  # BoundsError and NotARegularFile are ValueErrors
        return None
    return np.stack(arrs)


def _shape(arr: Any, key: str) -> np.ndarray:
    arr = to_array(arr, key)
    try:
        out = np.asarray(arr)
    except Exception as exc:  # pragma: no cover - numpy raises many types for odd objects
        raise FlameFileError(f"'{key}' is not an array ({exc})") from None
    if out.dtype.hasobject or not (np.issubdtype(out.dtype, np.number) or out.dtype == bool):
        raise FlameFileError(f"'{key}' has dtype {out.dtype}, not numbers")
    return out


def from_arrays(data: dict[str, Any], expect_vertices: int | None = FLAME_VERTICES,
                name: str = "the FLAME file") -> FlameModel:
    """Validate a dict of FLAME arrays (as stored in the file) and build a :class:`FlameModel`."""
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise FlameFileError(f"{name} is missing {', '.join(missing)}: not a FLAME model file "
                             f"(it has {', '.join(sorted(map(str, data))[:12]) or 'nothing'})")
    a = {k: _shape(data[k], k) for k in _REQUIRED}
    vt = a["v_template"].astype(np.float64)
    if vt.ndim != 2 or vt.shape[1] != 3:
        raise FlameFileError(f"v_template has shape {vt.shape}, expected (V, 3)")
    v = vt.shape[0]
    if expect_vertices is not None and v != expect_vertices:
        raise FlameFileError(f"v_template has {v} vertices; a FLAME model has {expect_vertices}")
    sd = a["shapedirs"].astype(np.float64)
    if sd.ndim != 3 or sd.shape[:2] != (v, 3):
        raise FlameFileError(f"shapedirs has shape {sd.shape}, expected ({v}, 3, 300 + 100)")
    s = sd.shape[2]
    if s >= 400:
        n_shape, n_expr = 300, s - 300
    elif s == 20:                      # the 10 + 10 low-dimensional releases
        n_shape, n_expr = 10, 10
    else:
        raise FlameFileError(f"shapedirs has {s} components; FLAME has 300 shape + 100 expression")
    kt = a["kintree_table"]
    if kt.ndim != 2 or kt.shape[0] != 2 or kt.shape[1] < 1:
        raise FlameFileError(f"kintree_table has shape {kt.shape}, expected (2, J)")
    j = kt.shape[1]
    if expect_vertices is not None and j != FLAME_JOINTS:
        raise FlameFileError(f"kintree_table has {j} joints; FLAME has {FLAME_JOINTS}")
    parents = kt[0].astype(np.int64).copy()
    parents[0] = -1
    if any(not (0 <= parents[i] < i) for i in range(1, j)):
        raise FlameFileError("kintree_table's parents are not in topological order")
    jr = a["J_regressor"].astype(np.float64)
    if jr.shape != (j, v):
        raise FlameFileError(f"J_regressor has shape {jr.shape}, expected ({j}, {v})")
    pd = a["posedirs"].astype(np.float64)
    if pd.ndim != 3 or pd.shape != (v, 3, 9 * (j - 1)):
        raise FlameFileError(f"posedirs has shape {pd.shape}, expected ({v}, 3, {9 * (j - 1)})")
    w = a["weights"].astype(np.float64)
    if w.shape != (v, j):
        raise FlameFileError(f"weights has shape {w.shape}, expected ({v}, {j})")
    f = a["f"]
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
        raise FlameFileError(f"f (faces) has shape {f.shape} and dtype {f.dtype}, expected (F, 3) integers")
    if expect_vertices is not None and f.shape[0] != FLAME_FACES:
        raise FlameFileError(f"f has {f.shape[0]} faces; a FLAME model has {FLAME_FACES}")
    if f.size and (f.min() < 0 or f.max() >= v):
        raise FlameFileError("f (faces) refers to vertices that do not exist")
    for key, arr in (("v_template", vt), ("shapedirs", sd), ("posedirs", pd), ("J_regressor", jr),
                     ("weights", w)):
        if not np.isfinite(arr).all():
            raise FlameFileError(f"'{key}' contains NaN or infinite values")
    eyelids = None
    for lk, rk in _EYELID_KEYS:
        if lk in data and rk in data:
            try:
                eyelids = np.stack([_shape(data[lk], lk).astype(np.float64).reshape(v, 3),
                                    _shape(data[rk], rk).astype(np.float64).reshape(v, 3)])
            except ValueError as exc:
                raise FlameFileError(f"eyelid blendshapes have the wrong size ({exc})") from None
    extras = {k: data[k] for k in data if isinstance(data[k], (str, int, float))}
    return FlameModel(vt, sd, pd, jr, parents, w, f.astype(np.int64), n_shape, n_expr, eyelids,
                      name, extras)
