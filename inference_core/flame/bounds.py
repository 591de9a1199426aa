"""Bounds checked on a FLAME file *before* anything in it is unpickled or allocated (numpy + stdlib).

Why: the restricted unpickler stops code, not resource abuse. A pickle can nest a
tuple 200,000 deep (hashing it as a dict key overflows the C stack: a segfault),
refer to one big string a thousand times (a thousand copies), or chain chumpy
objects into a cycle; an ``.npz`` can claim an 8 TiB array in a 100-byte header or
inflate a 2 MB member to gigabytes. So:

* :func:`prescan_pickle` runs the pickle's opcodes through a model of the unpickler's
  stack that keeps only each item's nesting depth and size (pure Python, memory in
  proportion to the stack, nothing built) and refuses deep nesting, too many
  opcodes, re-references adding up to too many bytes, and opcodes the loader never
  admits (persistent ids, extensions, out-of-band buffers);
* :func:`read_npy` reads an ``.npy`` member's header first and refuses sizes past
  :data:`MAX_ARRAY_BYTES` (or the file's remaining :class:`Budget`) before reading
  the data, and then reads exactly that many bytes, so a zip bomb inflates no further.

FLAME's largest array (shapedirs, 5023 x 3 x 400 float64) is 48 MB and the whole model
about 60 MB; the limits leave room for variants, not for gigabytes.
"""

from __future__ import annotations

import math
import pickletools
from typing import IO, Any

import numpy as np

#: Deepest nesting of containers a FLAME pickle may have (real files: under 10).
MAX_DEPTH = 64
#: Most pickle opcodes scanned (real files: a few thousand; bounds the scan's time).
MAX_OPCODES = 5_000_000
#: Largest single array, and all arrays of one file together.
MAX_ARRAY_BYTES = 128 << 20
MAX_TOTAL_BYTES = 512 << 20
#: Members of an ``.npz`` (FLAME's have about ten).
MAX_MEMBERS = 256

_REFUSED = {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"}
_DATA = {"STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
         "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_LEAVES = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "NONE",
           "NEWTRUE", "NEWFALSE", "GLOBAL"}
_EMPTY = {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE", "EMPTY_SET"}
_FROM_MARK = {"TUPLE", "LIST", "DICT", "FROZENSET", "OBJ", "INST"}
_INTO_TOP_FROM_MARK = {"APPENDS", "SETITEMS", "ADDITEMS"}
_POP_N_PUSH = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3,
               "STACK_GLOBAL": 2}
_INTO_TOP = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}


class BoundsError(ValueError):
    """The file is over a bound (the loader turns this into its FlameFileError)."""


class Budget:
    """Bytes of array data one file may still allocate."""

    def __init__(self, total: int = MAX_TOTAL_BYTES):
        self.left = total

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > MAX_ARRAY_BYTES:
            raise BoundsError(f"{what} claims {nbytes / 2**20:.0f} MiB; a FLAME array is at most "
                              f"{MAX_ARRAY_BYTES >> 20} MiB")
        if nbytes > self.left:
            raise BoundsError(f"{what} would take the file's arrays past {MAX_TOTAL_BYTES >> 20} MiB")
        self.left -= nbytes


_MARK = (-1, 0)  # a MARK on the model stack (compared by identity: no pushed item is this object)


def prescan_pickle(data: bytes, max_depth: int = MAX_DEPTH) -> int:
    """The pickle's deepest nesting; BoundsError for one nested deeper than ``max_depth``, longer
    than MAX_OPCODES, re-using more than MAX_TOTAL_BYTES through its memo, or using an opcode
    never admitted."""
    stack: list[tuple[int, int]] = []   # (nesting depth, bytes) of each item
    memo: dict[Any, tuple[int, int]] = {}
    referenced = 0
    seen = [0]

    def pop(n: int = 1) -> list[tuple[int, int]]:
        if len(stack) < n or any(item is _MARK for item in stack[-n:]):
            raise BoundsError("the pickle's stack underflows (corrupt)")
        out = stack[-n:]
        del stack[-n:]
        return out

    def pop_mark() -> list[tuple[int, int]]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                out = stack[i + 1:]
                del stack[i:]
                return out
        raise BoundsError("the pickle has no MARK where one is needed (corrupt)")

    def push(depth: int, nbytes: int = 0) -> None:
        seen[0] = max(seen[0], depth)
        if depth > max_depth:
            raise BoundsError(f"the pickle nests containers more than {max_depth} deep "
                              "(FLAME files nest under 10): refused before unpickling")
        stack.append((depth, nbytes))

    def deepest(items: list[tuple[int, int]]) -> int:
        return max((d for d, _ in items), default=0)

    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data)):
            if count >= MAX_OPCODES:
                raise BoundsError(f"the pickle has more than {MAX_OPCODES} opcodes (not a FLAME model)")
            name = op.name
            if name in _REFUSED:
                raise BoundsError(f"the pickle uses {name}, which a FLAME model file never does")
            if name in _DATA:
                push(0, len(arg) if isinstance(arg, (bytes, bytearray, str)) else 0)
            elif name in _LEAVES:
                push(0)
            elif name in _EMPTY:
                push(1)
            elif name == "MARK":
                stack.append(_MARK)
            elif name in _FROM_MARK:
                push(1 + deepest(pop_mark()))
            elif name in _POP_N_PUSH:
                push(1 + deepest(pop(_POP_N_PUSH[name])))
            elif name in _INTO_TOP or name in _INTO_TOP_FROM_MARK:
                items = pop_mark() if name in _INTO_TOP_FROM_MARK else pop(_INTO_TOP[name])
                top = pop()[0]
                push(max(top[0], 1 + deepest(items)), top[1])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                if not stack or stack[-1] is _MARK:
                    raise BoundsError("the pickle memoizes nothing (corrupt)")
                index = len(memo) if name == "MEMOIZE" else arg
                # the C unpickler sizes its memo table by the largest index: PUT 2**32 would
                # allocate 32 GB. Picklers number entries from 0, one per opcode at most.
                if not isinstance(index, int) or not 0 <= index <= count:
                    raise BoundsError(f"the pickle stores memo entry {index} after {count} opcodes (corrupt)")
                memo[index] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise BoundsError("the pickle refers to a memo entry it never stored (corrupt)")
                depth, nbytes = memo[arg]
                referenced += nbytes
                if referenced > MAX_TOTAL_BYTES:
                    raise BoundsError(f"the pickle re-uses its data past {MAX_TOTAL_BYTES >> 20} MiB")
                push(depth, nbytes)
            elif name == "POP":
                pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                push(*pop()[0])
                stack.append(stack[-1])
            elif name not in ("PROTO", "FRAME", "STOP"):
                raise BoundsError(f"the pickle uses {name}, which a FLAME model file never does")
    except BoundsError:
        raise
    except (ValueError, KeyError, IndexError, UnicodeError) as exc:  # genops on a damaged stream
        raise BoundsError(f"the pickle is truncated or corrupt ({str(exc)[:120]})") from None
    return seen[0]


def read_npy(fh: IO[bytes], what: str, budget: Budget) -> np.ndarray | bytes:
    """One ``.npy`` stream: a numeric array read within the budget, or — for an object array —
    the raw bytes of its pickle (for the restricted unpickler), also bounded."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError, ...
        raise BoundsError(f"{what} is not a readable .npy array ({type(exc).__name__}: {str(exc)[:120]})") from None
    if dtype.hasobject:
        raw = fh.read(MAX_ARRAY_BYTES + 1)
        budget.take(len(raw), what)
        return raw
    nbytes = math.prod(shape) * dtype.itemsize
    budget.take(nbytes, f"{what} ({'x'.join(map(str, shape))} {dtype})")
    raw = fh.read(nbytes)
    if len(raw) != nbytes:
        raise BoundsError(f"{what} is truncated ({len(raw)} of {nbytes} bytes)")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()
