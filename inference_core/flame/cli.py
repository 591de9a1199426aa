"""``python -m inference_core flame info MODEL`` and ``... flame convert-data``.

``info`` reads a FLAME model file through the restricted unpickler and
prints what is inside as JSON (a quick way to check a licensed file before
pointing the add-on at it); ``convert-data`` turns VOCASET/BIWI layouts into
a training dataset (see :mod:`inference_core.data.datasets.vertex`).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert-data":
        from ..data.datasets.vertex import main as convert

        return int(convert(argv[1:]) or 0)
    p = argparse.ArgumentParser(prog="python -m inference_core flame")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    i = sub.add_parser("info", help="summarise a FLAME model file (.pkl / .npz), safely")
    i.add_argument("model")
    sub.add_parser("convert-data", help="VOCASET/BIWI layouts -> dataset (args: vocaset|biwi|sequences SRC OUT)")
    args = p.parse_args(argv)
    if args.command != "info":
        p.print_help()
        return 2
    from .loader import FlameFileError, load_flame

    try:
        m = load_flame(args.model)
    except FlameFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({
        "file": args.model, "vertices": m.num_vertices, "faces": int(m.faces.shape[0]),
        "joints": int(m.parents.shape[0]), "shape_components": m.n_shape,
        "expression_components": m.n_expr, "eyelid_blendshapes": m.eyelids is not None,
    }, indent=2))
    return 0
