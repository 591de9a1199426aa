"""Rules of the architecture, held by tests: the add-on never needs torch, the core never needs bpy,
the add-on's layers import only downwards, the protocol's names live only in protocol.py, and no
source file is over 600 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from addon_helpers import ROOT

ADDON = ROOT / "streamingtalker_addon"
CORE = ROOT / "inference_core"

BLOCK = r"""
import sys
class Block:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in {names!r} or name.split(".")[0] in {names!r}:
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Block)
"""


def _run(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _modules(package: Path, skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        name = ".".join(parts)
        if "__pycache__" not in path.parts and path.name != "__main__.py" and not any(name.startswith(s) for s in skip):
            out.append(name)
    return out


@pytest.mark.blender
def test_addon_imports_and_registers_with_torch_blocked():
    code = BLOCK.format(names=("torch",)) + r"""
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.preferences.addon_enable(module="streamingtalker_addon")
assert "streamingtalker_addon" in bpy.context.preferences.addons
assert bpy.ops.streamingtalker.add_demo_head() == {"FINISHED"}
import importlib
for name in MODULES:
    importlib.import_module(name)
bpy.ops.preferences.addon_disable(module="streamingtalker_addon")
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print("OK")
""".replace("MODULES", repr(_modules(ADDON)))
    res = _run(code)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


def test_core_and_the_addons_bpy_free_layers_import_with_bpy_blocked():
    no_bpy = _modules(CORE) + [m for m in _modules(ADDON) if m.split(".")[1:2] in (["client"], ["logic"], ["state"])
                               or (m.startswith("streamingtalker_addon.demo_head") and not m.endswith(".blender"))]
    code = BLOCK.format(names=("bpy", "bmesh", "mathutils", "aud")) + r"""
import importlib
for name in MODULES:
    importlib.import_module(name)
print("OK", len(MODULES))
""".replace("MODULES", repr(no_bpy))
    res = _run(code)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


# -- the add-on's layers import only downwards ----------------------------------------------------------------
#: package -> the add-on packages it may import (besides itself and the top-level _typing)
ALLOWED = {
    "client": set(),
    "logic": {"client"},
    "state": {"client"},
    "blender": {"client", "logic"},
    "demo_head": {"client", "blender"},
    "jobs": {"client", "logic", "blender", "state"},
    "flame": {"client", "logic", "blender", "ui"},
    "ui": {"client", "logic", "blender", "jobs", "state", "demo_head", "flame"},
    "bake": {"client", "logic", "blender", "jobs", "state", "ui"},  # the headless entry point, at the top
}


def _addon_imports(path: Path) -> set[str]:
    """The add-on packages (first component under the add-on) a module imports."""
    rel = path.relative_to(ADDON).with_suffix("").parts
    pkg = list(rel[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            target = base + (node.module.split(".") if node.module else [])
            names = [target[0]] if target else [a.name for a in node.names]
            out.update(names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.names[0].name if isinstance(node, ast.Import) else node.module or ""
            if mod.startswith("streamingtalker_addon."):
                out.add(mod.split(".")[1])
    return out


def test_addon_layers_import_only_downwards():
    bad = []
    for path in sorted(ADDON.rglob("*.py")):
        rel = path.relative_to(ADDON).parts
        layer = rel[0].removesuffix(".py")
        if layer not in ALLOWED:
            continue  # the top-level __init__ (register) and _typing
        used = _addon_imports(path) - {layer, "_typing"}
        if used - ALLOWED[layer]:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(used - ALLOWED[layer])}")
    # the panel draws state; it never imports the operators
    if "operators" in (ADDON / "ui" / "panel.py").read_text():
        bad.append("ui/panel.py mentions the operators module")
    assert not bad, "\n".join(bad)


# -- protocol names only in protocol.py -----------------------------------------------------------------------
def _protocol_names() -> set[str]:
    from inference_core.shared.protocol import Err, Msg

    return {v for cls in (Msg, Err) for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)}


CALLS = {"send", "wait_for", "write_message", "encode", "error", "Message", "BridgeError", "BridgeTimeout",
         "ProtocolError", "_fail", "raise_for", "Prepare"}


def _literal_uses(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, value) of message-type / error-code strings written as literals where the protocol is spoken."""
    def consts(node: ast.AST) -> list[ast.Constant]:
        return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in names]

    hits: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in CALLS:  # send("start"), wait_for({"hello"}), BridgeError("...", "timeout")
                hits += [c for a in node.args for c in consts(a)]
            hits += [c for kw in node.keywords if kw.arg and kw.arg.endswith("code") for c in consts(kw.value)]
            if func == "get" and len(node.args) == 2 and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "code":  # msg.get("code", "error")
                hits += consts(node.args[1])
        elif isinstance(node, ast.Compare):  # msg.type == "frames", kind in ("error", ...)
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr in ("type", "code") or
                   isinstance(s, ast.Name) and s.id in ("kind", "code", "msg_type") for s in sides):
                hits += [c for s in sides for c in consts(s)]
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, (ast.Name, ast.Attribute)) and (getattr(t, "id", None) or getattr(t, "attr", "")).endswith("code")
                for t in node.targets):  # self.error_code = "bad_input"
            hits += consts(node.value)
    return sorted({(c.lineno, c.value) for c in hits})


def test_no_protocol_string_literals_outside_protocol_py():
    names = _protocol_names()
    files = [p for p in [*CORE.rglob("*.py"), *ADDON.rglob("*.py")]
             if p.name != "protocol.py" and "__pycache__" not in p.parts]
    bad = [f"{p.relative_to(ROOT)}:{line}: {value!r}" for p in files
           for line, value in _literal_uses(ast.parse(p.read_text()), names)]
    assert not bad, "use protocol.Msg / protocol.Err:\n" + "\n".join(bad)
    # the scan does find what it looks for
    sample = 'client.send("start", session=s)\nif msg.type == "frames": pass\nraise BridgeError("x", code="timeout")\n'
    assert [v for _, v in _literal_uses(ast.parse(sample), names)] == ["start", "frames", "timeout"]


def test_no_source_file_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*CORE.rglob("*.py"), *ADDON.rglob("*.py")]
            if "__pycache__" not in p.parts and (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
