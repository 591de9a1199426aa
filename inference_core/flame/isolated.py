"""Read an untrusted FLAME file in a child process, so no crash can take the caller down.

Why: the loader runs inside Blender when the add-on imports a FLAME head or binds a
FLAME mesh. The pre-scan (:mod:`.bounds`) and the restricted unpickler refuse every
hostile file we know of, but a pickle is still parsed by C code, and a crash there —
a stack overflow, a bug in numpy — would take Blender and the user's unsaved work
with it. So the add-on parses the file in a child Python (``python -m
inference_core.flame.isolated FILE OUT``) under a memory limit and a timeout; the
child writes plain arrays (an ``.npz`` with no pickles) that the caller reads back
with the bounded reader and validates again. A crash, a hang or an out-of-memory in
the child is a :class:`FlameFileError` with a clear message; the caller goes on.

numpy + stdlib only (Blender's Python runs both sides).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .loader import FLAME_VERTICES, FlameFileError, FlameModel, from_arrays, load_flame, read_npz

#: Address space the child may use (a FLAME model needs about 0.5 GB to read).
CHILD_MEMORY_BYTES = 4 << 30
#: Longest a child may take (a real file reads in a few seconds).
TIMEOUT_S = 300.0
_MODULE = "inference_core.flame.isolated"


def load_isolated(path: str | Path, expect_vertices: int | None = FLAME_VERTICES,
                  python: str | None = None, timeout: float = TIMEOUT_S) -> FlameModel:
    """:func:`~.loader.load_flame` in a child process (``python``: default this interpreter)."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="stk-flame-") as tmp:
        out = Path(tmp) / "arrays.npz"
        cmd = [python or sys.executable, "-m", _MODULE, str(path), str(out), json.dumps(expect_vertices)]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds inference_core
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise FlameFileError(f"reading {path.name} took over {timeout:.0f} s and was stopped") from None
        except OSError as exc:
            raise FlameFileError(f"could not start a process to read {path.name}: {exc}") from None
        lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
        if r.returncode < 0:
            name = signal.Signals(-r.returncode).name if -r.returncode in signal.valid_signals() else r.returncode
            raise FlameFileError(f"{path.name} crashed the FLAME reader ({name}): the file is damaged or "
                                 "hostile; nothing was imported")
        if r.returncode != 0 or not out.is_file():
            raise FlameFileError(lines[-1].removeprefix("error: ") if lines else
                                 f"the FLAME reader failed on {path.name} (exit code {r.returncode})")
        data = read_npz(out.read_bytes(), path.name)
    model = from_arrays(data, expect_vertices, name=path.name)
    model.source = str(path)
    return model


def _arrays(model: FlameModel) -> dict[str, np.ndarray]:
    """The model as the plain arrays :func:`~.loader.from_arrays` reads back."""
    j = len(model.parents)
    out = {"v_template": model.v_template, "shapedirs": model.shapedirs, "posedirs": model.posedirs,
           "J_regressor": model.J_regressor, "weights": model.weights, "f": model.faces,
           "kintree_table": np.stack([model.parents, np.arange(j)]).astype(np.int64)}
    if model.eyelids is not None:
        out["l_eyelid"], out["r_eyelid"] = model.eyelids[0], model.eyelids[1]
    return out


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the timeout still holds
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
    except (ValueError, OSError):  # a lower hard limit already, or not supported (macOS)
        pass


def main(argv: list[str] | None = None) -> int:
    """The child: FILE OUT EXPECT_VERTICES(JSON) → OUT.npz, or one ``error:`` line and exit 1."""
    src, out, expect = (argv if argv is not None else sys.argv[1:])[:3]
    _limit_memory()
    try:
        expected: Any = json.loads(expect)
        np.savez(out, **_arrays(load_flame(src, expected)))
    except FlameFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"error: {Path(src).name} needs more memory than a FLAME model "
              f"({CHILD_MEMORY_BYTES >> 30} GiB): refused", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
