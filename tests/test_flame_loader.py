"""The FLAME loader: real FLAME-style pickles load, hostile or broken files are refused safely."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from flame_helpers import synthetic_flame, write_flame_pkl, write_plain_pkl
from inference_core.flame.loader import FlameFileError, load_flame, restricted_loads


@pytest.fixture(scope="module")
def arrays():
    return synthetic_flame(0)


@pytest.fixture(scope="module")
def small():
    return synthetic_flame(1, n_vertices=200, n_faces=300)


def _check_same(model, arrays):
    assert model.num_vertices == 5023
    np.testing.assert_array_equal(model.v_template, arrays["v_template"])
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(model.posedirs, arrays["posedirs"])
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"])
    np.testing.assert_array_equal(model.weights, arrays["weights"])
    np.testing.assert_array_equal(model.faces, arrays["f"])
    assert list(model.parents) == [-1, 0, 1, 1, 1]
    assert (model.n_shape, model.n_expr) == (300, 100)


@pytest.mark.parametrize("newobj,py2", [(True, True), (False, True), (False, False)])
def test_chumpy_style_pickle_loads_without_chumpy(tmp_path, arrays, newobj, py2):
    """FLAME 2020 style: chumpy Ch shapedirs, scipy csc J_regressor, Python 2 strings."""
    path = write_flame_pkl(tmp_path / "generic_model.pkl", arrays, newobj=newobj, py2_strings=py2)
    raw = path.read_bytes()
    assert b"chumpy.ch" in raw and b"csc_matrix" in raw
    model = load_flame(path)
    _check_same(model, arrays)
    import sys
    assert "chumpy" not in sys.modules


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_modern_pickle_with_real_scipy_sparse(tmp_path, arrays, protocol):
    """FLAME 2023 style: plain numpy arrays and a real scipy.sparse matrix, any protocol."""
    model = load_flame(write_plain_pkl(tmp_path / "flame2023.pkl", arrays, protocol))
    _check_same(model, arrays)


def test_npz_variant_plain_and_with_pickled_member(tmp_path, arrays):
    plain = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
    np.savez(tmp_path / "flame.npz", **plain)
    _check_same(load_flame(tmp_path / "flame.npz"), arrays)
    # an .npz whose J_regressor member is an object array (a pickled sparse matrix)
    import scipy.sparse
    obj = np.empty((), dtype=object)
    obj[()] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    np.savez(tmp_path / "flame_obj.npz", **dict(plain, J_regressor=obj))
    _check_same(load_flame(tmp_path / "flame_obj.npz"), arrays)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').write('x')",))


@pytest.mark.parametrize("evil", [_Evil, _EvalEvil])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused_and_does_nothing(tmp_path, arrays, evil, protocol):
    marker = tmp_path / "pwned"
    # the payload hides among real FLAME arrays, as an attacker would ship it
    data = dict(arrays, extra=evil(marker))
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    # control: the payload is live — plain pickle runs it (creating a different marker)
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(evil(control), protocol=protocol))
    assert control.exists()
    with pytest.raises(FlameFileError, match="refusing to load"):
        load_flame(path)
    assert not marker.exists()


def test_hostile_names_under_allowed_looking_modules(tmp_path):
    for module, name in [("numpy", "load"), ("numpy.core.multiarray", "__builtins__"),
                         ("builtins", "getattr"), ("copyreg", "__newobj__"), ("posix", "system"),
                         ("scipy.sparse", "load_npz"), ("numpy.testing", "run_module_suite")]:
        payload = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
        with pytest.raises(FlameFileError, match=f"{module}.{name}"):
            restricted_loads(payload)


def test_allowed_names_cannot_be_misused():
    """numpy.ndarray / object are markers, not callables: a pickle cannot allocate or build with them."""
    huge = b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x7f\x85R."
    with pytest.raises(FlameFileError, match="numpy.ndarray directly"):
        restricted_loads(huge)
    with pytest.raises(FlameFileError, match="'object' directly"):
        restricted_loads(b"\x80\x02c__builtin__\nobject\n)R.")
    with pytest.raises(FlameFileError, match="foreign class"):
        restricted_loads(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nc__builtin__\nobject\n"
                         b"K\x00\x85U\x01b\x87R.")


def test_pickle_calling_chumpy_is_only_recorded(tmp_path, arrays):
    """Any chumpy name maps to a recorder: calling it runs nothing, and the key is refused."""
    marker = tmp_path / "pwned"
    payload = (b"\x80\x02}q\x00X\t\x00\x00\x00shapedirsq\x01cchumpy.utils\nsystem\nX"
               + len(f"touch {marker}").to_bytes(4, "little") + f"touch {marker}".encode()
               + b"\x85R\x73.")
    data = restricted_loads(payload)
    assert not marker.exists()
    path = tmp_path / "m.pkl"
    arr = dict(arrays)
    arr.pop("shapedirs")
    raw = pickle.dumps(arr, protocol=2)
    path.write_bytes(raw)
    with pytest.raises(FlameFileError, match="missing shapedirs"):
        load_flame(path)
    from inference_core.flame.loader import from_arrays
    with pytest.raises(FlameFileError, match="chumpy .* expression, not stored array data"):
        from_arrays(dict(arrays, shapedirs=data["shapedirs"]))


def test_truncated_and_garbage_files(tmp_path, arrays):
    path = write_flame_pkl(tmp_path / "full.pkl", arrays)
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 3):
        bad = tmp_path / f"cut{cut}.pkl"
        bad.write_bytes(raw[:cut])
        with pytest.raises(FlameFileError, match="truncated or corrupt|does not decode"):
            load_flame(bad)
    np.savez(tmp_path / "z.npz", **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    zraw = (tmp_path / "z.npz").read_bytes()
    (tmp_path / "zcut.npz").write_bytes(zraw[: len(zraw) // 2])
    with pytest.raises(FlameFileError, match="not a readable .npz"):
        load_flame(tmp_path / "zcut.npz")
    (tmp_path / "text.pkl").write_text("hello, not a pickle\n")
    with pytest.raises(FlameFileError):
        load_flame(tmp_path / "text.pkl")
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(FlameFileError, match="empty"):
        load_flame(tmp_path / "empty.pkl")
    with pytest.raises(FlameFileError, match="not found"):
        load_flame(tmp_path / "nope.pkl")
    with pytest.raises(FlameFileError, match="folder"):
        load_flame(tmp_path)
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(FlameFileError, match="not the dictionary"):
        load_flame(tmp_path / "list.pkl")


@pytest.mark.parametrize("key,value,needle", [
    ("v_template", lambda a: a["v_template"][:-1], "5022 vertices"),
    ("v_template", lambda a: a["v_template"][:, :2], r"expected \(V, 3\)"),
    ("shapedirs", lambda a: a["shapedirs"][:, :, :250], "250 components"),
    ("shapedirs", lambda a: a["shapedirs"][:-1], "shapedirs has shape"),
    ("posedirs", lambda a: a["posedirs"][:, :, :30], "posedirs has shape"),
    ("J_regressor", lambda a: a["J_regressor"][:4], "J_regressor has shape"),
    ("weights", lambda a: a["weights"][:, :4], "weights has shape"),
    ("f", lambda a: a["f"][:100], "100 faces"),
    ("f", lambda a: a["f"] + 6000, "vertices that do not exist"),
    ("f", lambda a: a["f"].astype(np.float32), "integers"),
    ("kintree_table", lambda a: a["kintree_table"][:, :4], "4 joints"),
    ("kintree_table", lambda a: np.array([[0, 3, 0, 0, 0], [0, 1, 2, 3, 4]]), "topological order"),
    ("posedirs", lambda a: np.where(np.arange(36) == 3, np.nan, a["posedirs"]), "NaN"),
    ("v_template", lambda a: "not an array", "dtype"),
])
def test_wrong_shapes_are_named(tmp_path, arrays, key, value, needle):
    path = write_plain_pkl(tmp_path / "bad.pkl", dict(arrays, **{key: value(arrays)}))
    with pytest.raises(FlameFileError, match=needle):
        load_flame(path)


def test_missing_keys_listed(tmp_path, arrays):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"v_template": arrays["v_template"], "hello": 1}, protocol=2))
    with pytest.raises(FlameFileError, match="missing shapedirs, posedirs, J_regressor"):
        load_flame(path)


def test_small_topology_only_when_asked(tmp_path, small):
    path = write_flame_pkl(tmp_path / "small.pkl", small)
    with pytest.raises(FlameFileError, match="200 vertices"):
        load_flame(path)
    assert load_flame(path, expect_vertices=None).num_vertices == 200


def test_eyelids_inline_and_sidecar(tmp_path):
    arrays = synthetic_flame(2, eyelids=True)
    inline = load_flame(write_plain_pkl(tmp_path / "inline.pkl", arrays))
    assert inline.eyelids is not None and inline.eyelids.shape == (2, 5023, 3)
    side = tmp_path / "side"
    side.mkdir()
    bare = {k: v for k, v in arrays.items() if "eyelid" not in k}
    m = load_flame(write_plain_pkl(side / "flame.pkl", bare))
    assert m.eyelids is None
    np.save(side / "l_eyelid.npy", arrays["l_eyelid"])
    np.save(side / "r_eyelid.npy", arrays["r_eyelid"])
    m = load_flame(side / "flame.pkl")
    np.testing.assert_array_equal(m.eyelids, inline.eyelids)
