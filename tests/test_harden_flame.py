"""Hardening of the FLAME loader (issue 18, rows 6, 12 and the FLAME part of 16): hostile
files are refused before unpickling or allocating, with bounded memory, and a crash while
parsing stays in a child process."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from flame_helpers import synthetic_flame, write_flame_pkl
from inference_core.flame.bounds import MAX_ARRAY_BYTES, MAX_DEPTH, prescan_pickle
from inference_core.flame.isolated import load_isolated
from inference_core.flame.loader import FlameFileError, load_flame, restricted_loads, to_array

P = pickle  # opcodes


def deep_tuple_key(depth: int) -> bytes:
    """{((((None,),),)...): 1} with the key ``depth`` tuples deep (hashing it overflowed the C stack)."""
    return (P.PROTO + b"\x02" + P.EMPTY_DICT + P.NONE + P.TUPLE1 * depth + P.BININT1 + b"\x01"
            + P.SETITEM + P.STOP)


def chumpy_chain(depth: int, cyclic: bool = False) -> bytes:
    """{'shapedirs': Ch(x=Ch(x=...))}: chumpy objects each storing the next as its array."""
    ch = P.GLOBAL + b"chumpy.ch\nCh\n" + P.EMPTY_TUPLE + P.NEWOBJ
    out = P.PROTO + b"\x02" + P.EMPTY_DICT + P.SHORT_BINUNICODE + b"\x09shapedirs"
    if cyclic:  # Ch whose state['x'] is the Ch itself
        out += ch + P.BINPUT + b"\x00" + P.EMPTY_DICT + P.SHORT_BINUNICODE + b"\x01x" + P.BINGET + b"\x00"
        out += P.SETITEM + P.BUILD
    else:
        out += (ch + P.EMPTY_DICT + P.SHORT_BINUNICODE + b"\x01x") * depth + P.NONE + (P.SETITEM + P.BUILD) * depth
    return out + P.SETITEM + P.STOP


def npy_header(shape, dtype="<f8") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def peak_rss_of_loading(path, tmp_path) -> tuple[str, float]:
    """(error message, peak RSS in MB) of load_flame(path) in a fresh process."""
    code = ("import resource, sys\n"
            "from inference_core.flame.loader import FlameFileError, load_flame, restricted_loads, to_array\n"
            "try:\n    load_flame(sys.argv[1]); msg = 'loaded'\n"
            "except FlameFileError as e:\n    msg = str(e)\n"
            "print(msg); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    msg, rss = r.stdout.strip().rsplit("\n", 1)
    return msg, float(rss)


def baseline_rss(tmp_path) -> float:
    tiny = tmp_path / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    return peak_rss_of_loading(tiny, tmp_path)[1]


# -- row 6 --------------------------------------------------------------------------------------
def test_deep_tuple_key_is_refused_not_a_segfault(tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_tuple_key(200_000))
    r = subprocess.run([sys.executable, "-m", "inference_core", "flame", "info", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr[-500:])  # was -11 (SIGSEGV)
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert f"more than {MAX_DEPTH} deep" in r.stderr
    with pytest.raises(FlameFileError, match="deep"):
        load_flame(path)


def test_nesting_of_real_files_is_far_below_the_bound(tmp_path):
    raw = write_flame_pkl(tmp_path / "m.pkl", synthetic_flame(0, n_vertices=200, n_faces=300)).read_bytes()
    assert prescan_pickle(raw) < 10 < MAX_DEPTH


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_chumpy_chain_is_refused_before_unpickling(tmp_path, depth):
    path = tmp_path / "chain.pkl"
    path.write_bytes(chumpy_chain(depth))
    with pytest.raises(FlameFileError, match=f"more than {MAX_DEPTH} deep"):
        load_flame(path)


def test_cyclic_chumpy_chain_is_refused():
    """A Ch whose array is itself: the conversion follows at most MAX_CHAIN links."""
    data = restricted_loads(chumpy_chain(0, cyclic=True))
    with pytest.raises(FlameFileError, match=r"chain of more than 32 wrapped objects \(or a cycle\)"):
        to_array(data["shapedirs"], "shapedirs")
    shallow = restricted_loads(chumpy_chain(3))
    with pytest.raises(FlameFileError, match="chumpy .* expression"):  # ends in None: no stored array
        to_array(shallow["shapedirs"], "shapedirs")


def test_memo_reuse_past_the_budget_is_refused():
    """One 1 MiB string referenced 600 times: 600 MiB of copies once unpickled."""
    blob = P.BINBYTES + struct.pack("<I", 1 << 20) + b"\0" * (1 << 20)
    data = (P.PROTO + b"\x02" + P.EMPTY_LIST + P.MARK + blob + P.BINPUT + b"\x00"
            + P.BINGET + b"\x00" * 1 + (P.BINGET + b"\x00") * 598 + P.APPENDS + P.STOP)
    with pytest.raises(ValueError, match="re-uses its data"):
        prescan_pickle(data)


def test_npz_header_claiming_8_tib_is_refused_with_bounded_memory(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("v_template.npy", npy_header((2**40, 1)) + b"\0" * 64)
    msg, rss = peak_rss_of_loading(path, tmp_path)
    assert "claims" in msg and "MiB" in msg
    assert rss < baseline_rss(tmp_path) + 50


def test_zip_bomb_is_refused_before_it_inflates(tmp_path):
    """A 2 GiB member (zeros, deflated to about 2 MB): refused after reading its header."""
    path = tmp_path / "bomb.npz"
    n = 2 << 30
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("shapedirs.npy", "w", force_zip64=True) as fh:
            fh.write(npy_header((n // 8,)))
            chunk = b"\0" * (64 << 20)
            for _ in range(n // len(chunk)):
                fh.write(chunk)
    assert path.stat().st_size < 16 << 20
    msg, rss = peak_rss_of_loading(path, tmp_path)
    assert "claims 2048 MiB" in msg
    assert rss < baseline_rss(tmp_path) + 50


def test_npz_member_that_lies_about_its_length_is_truncated_not_read_on(tmp_path):
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("v_template.npy", npy_header((5023, 3)) + b"\0" * 100)
    with pytest.raises(FlameFileError, match="truncated"):
        load_flame(path)


def test_sparse_claiming_gibibytes_is_refused_with_bounded_memory(tmp_path):
    arrays = synthetic_flame(0)
    path = write_flame_pkl(tmp_path / "sparse.pkl", arrays)
    raw = path.read_bytes()
    # the csc matrix's _shape (5, 5023) -> (50000, 50000): 18.6 GiB as dense float64
    i = raw.index(b"_shape")
    j = raw.index(b"K\x05M\x9f\x13", i)  # BININT1 5, BININT2 5023
    bad = raw[:j] + b"J" + struct.pack("<i", 50000) + b"J" + struct.pack("<i", 50000) + raw[j + 5:]
    path.write_bytes(bad)
    msg, rss = peak_rss_of_loading(path, tmp_path)
    assert "sparse matrix of shape (50000, 50000)" in msg and "GiB" in msg
    assert rss < baseline_rss(tmp_path) + 2 * path.stat().st_size / 2**20 + 150


def test_sidecar_eyelids_claiming_terabytes_are_ignored(tmp_path):
    arrays = synthetic_flame(0, n_vertices=200, n_faces=300)
    path = write_flame_pkl(tmp_path / "m.pkl", arrays)
    for side in ("l", "r"):
        (tmp_path / f"{side}_eyelid.npy").write_bytes(npy_header((2**40, 3)) + b"\0" * 24)
    assert load_flame(path, expect_vertices=None).eyelids is None


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "generic_model.pkl"
    os.mkfifo(fifo)
    with pytest.raises(FlameFileError, match="not a regular file"):
        load_flame(fifo)


# -- row 12: a crash while parsing stays in the child ---------------------------------------------
def test_isolated_load_equals_in_process_load(tmp_path):
    path = write_flame_pkl(tmp_path / "m.pkl", synthetic_flame(3, eyelids=True))
    a, b = load_isolated(path), load_flame(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "faces", "parents", "eyelids"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert (a.n_shape, a.n_expr, a.source) == (b.n_shape, b.n_expr, b.source)


def test_isolated_load_reports_refusals_in_one_line(tmp_path):
    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_tuple_key(200_000))
    with pytest.raises(FlameFileError, match=f"more than {MAX_DEPTH} deep") as info:
        load_isolated(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("how", ["segfault", "abort", "hang"])
def test_a_crashing_or_hanging_reader_is_a_clear_error(tmp_path, how):
    """The child is a real interpreter that dies the way a parser bug would make it die."""
    path = write_flame_pkl(tmp_path / "m.pkl", synthetic_flame(0, n_vertices=200, n_faces=300))
    body = {"segfault": "import ctypes; ctypes.string_at(0)",
            "abort": "import os; os.abort()",
            "hang": "import time; time.sleep(60)"}[how]
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c {json.dumps(body)}\n")
    fake.chmod(0o755)
    with pytest.raises(FlameFileError) as info:
        load_isolated(path, expect_vertices=None, python=str(fake), timeout=5)
    text = str(info.value)
    needle = {"segfault": "crashed the FLAME reader (SIGSEGV)", "abort": "crashed the FLAME reader (SIGABRT)",
              "hang": "took over 5 s"}[how]
    assert needle in text and "\n" not in text


def test_child_memory_limit_turns_a_blow_up_into_an_error(tmp_path):
    from inference_core.flame import isolated

    code = ("import sys; from inference_core.flame import isolated as i; i.CHILD_MEMORY_BYTES = 1 << 30; "
            "i._limit_memory()\ntry:\n    bytearray(2 << 30)\nexcept MemoryError:\n    print('refused')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "refused", r.stderr
    assert isolated.CHILD_MEMORY_BYTES >= 4 * MAX_ARRAY_BYTES


def test_bounded_reader_reads_what_numpy_wrote(tmp_path):
    from inference_core.flame.bounds import Budget, read_npy

    for arr in (np.arange(12.0).reshape(3, 4), np.asfortranarray(np.arange(6).reshape(2, 3)),
                np.zeros((0, 3), np.float32), np.array(5, np.int16)):
        buf = io.BytesIO()
        np.save(buf, arr)
        buf.seek(0)
        np.testing.assert_array_equal(read_npy(buf, "x", Budget()), arr)


# -- found by tests/test_fuzz.py --------------------------------------------------------------------
def test_malformed_dtype_state_does_not_reach_numpy(tmp_path):
    """numpy.dtype('i4') + BUILD with a 6-item state segfaulted numpy's C __setstate__."""
    state = (P.MARK + P.BININT1 + b"\x03" + P.SHORT_BINUNICODE + b"\x01<" + P.NONE + P.BININT
             + struct.pack("<i", -1) + P.BININT + struct.pack("<i", -1) + P.BININT1 + b"\x00" + P.TUPLE)
    payload = (P.PROTO + b"\x02" + P.GLOBAL + b"numpy\ndtype\n" + P.SHORT_BINUNICODE + b"\x02i4" + P.NEWFALSE
               + P.NEWTRUE + P.TUPLE3 + P.REDUCE + state + P.BUILD + P.STOP)
    path = tmp_path / "dtype.pkl"
    path.write_bytes(payload)
    code = ("import sys; from inference_core.flame.loader import restricted_loads; "
            "print(restricted_loads(open(sys.argv[1], 'rb').read()).dtype)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "int32", (r.returncode, r.stderr[-500:])


@pytest.mark.parametrize("state, needle", [
    ("(1, (3,), DT, False, b'abc')", "bytes of data"), ("(1, (-1,), DT, False, b'')", "shape"),
    ("(1, (2,), 'V8', False, b'')", "plain numeric"), ("(1, (2,), DT, False, 5)", "bytes of data"),
    ("('x',)", "malformed"),
])
def test_array_state_is_checked_before_numpy_fills_it(state, needle):
    from inference_core.flame.loader import _DtypeStandIn, _safe_reconstruct, _NDARRAY

    arr = _safe_reconstruct(_NDARRAY, (0,), b"b")
    with pytest.raises(FlameFileError, match=needle):
        arr.__setstate__(eval(state, {"DT": _DtypeStandIn("f8")}))  # noqa: S307 - fixed test literals


def test_memo_index_far_beyond_the_stream_is_refused():
    """LONG_BINPUT 1385465609: the C unpickler sized its memo for it (10 GB) and was OOM-killed."""
    data = P.PROTO + b"\x02" + P.NONE + P.LONG_BINPUT + struct.pack("<I", 1385465609) + P.STOP
    with pytest.raises(ValueError, match="memo entry 1385465609"):
        prescan_pickle(data)


def test_npy_header_that_breaks_numpys_parser_is_refused(tmp_path):
    path = tmp_path / "h.npz"
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("v_template.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(FlameFileError, match="not a readable .npy"):
        load_flame(path)


def test_a_path_too_long_is_an_error_not_an_oserror():
    with pytest.raises(FlameFileError, match="cannot read"):
        load_flame("x" * 5000)
