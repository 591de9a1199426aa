"""FLAME-topology support: safe model loading, forward pass, shape-key construction.

numpy + stdlib only (no torch, no scipy, no chumpy), so the Blender add-on
imports these modules directly from its bundled copy of the core.
"""

from .loader import FLAME_VERTICES, FlameFileError, FlameModel, load_flame

__all__ = ["FLAME_VERTICES", "FlameFileError", "FlameModel", "load_flame"]
