"""The one loader of ``inference_core`` inside the add-on (stdlib + numpy parts only).

The built extension carries its own copy of the core (``<extension>/inference_core``),
so an installed add-on never depends on a checkout; a development checkout and the
tests use the top-level package instead. Only modules that need no torch are
loaded: Blender's Python has none. For type checkers the names below are the
checkout's modules, so their types stay precise instead of decaying to ``Any``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING


def _load_package() -> ModuleType:
    parent = __package__.rpartition(".")[0] if __package__ else ""
    if parent:
        try:
            return importlib.import_module(parent + ".inference_core")
        except ImportError:
            pass
    return importlib.import_module("inference_core")


if TYPE_CHECKING:
    import inference_core
    from inference_core.audio import io as audio_io
    from inference_core.flame import isolated as flame_isolated
    from inference_core.flame import loader as flame_loader
    from inference_core.flame import shapekeys
    from inference_core.runtime import onnx_backend as onnx_files
    from inference_core.runtime import weights
    from inference_core.shared import channels, model_card, naming, options, paths, protocol
    from inference_core.shared import client as bridge_client
else:
    inference_core = _load_package()

    def _sub(name: str) -> ModuleType:
        return importlib.import_module(f"{inference_core.__name__}.{name}")

    protocol = _sub("shared.protocol")
    bridge_client = _sub("shared.client")
    channels = _sub("shared.channels")
    paths = _sub("shared.paths")
    model_card = _sub("shared.model_card")
    options = _sub("shared.options")
    naming = _sub("shared.naming")  # unique line names (the batch's and the bake's)
    weights = _sub("runtime.weights")
    audio_io = _sub("audio.io")  # files without Blender's aud: stdlib wave + numpy resampling
    onnx_files = _sub("runtime.onnx_backend")  # where a model's ONNX files live (numpy-only module)
    flame_loader = _sub("flame.loader")
    flame_isolated = _sub("flame.isolated")  # the loader in a child process (a crash cannot reach Blender)
    shapekeys = _sub("flame.shapekeys")

Msg = protocol.Msg
Err = protocol.Err
Message = protocol.Message
BridgeClient = bridge_client.BridgeClient
BridgeError = bridge_client.BridgeError
BridgeTimeout = bridge_client.BridgeTimeout
SessionOptions = options.SessionOptions
LIMITS = options.LIMITS
normalise_name = channels.normalise_name
ARKIT_52 = channels.ARKIT_52

__all__ = ["ARKIT_52", "audio_io", "BridgeClient", "BridgeError", "BridgeTimeout", "Err", "LIMITS", "Message", "Msg",
           "SessionOptions", "bridge_client", "channels", "flame_isolated", "flame_loader", "inference_core",
           "model_card", "naming", "normalise_name", "onnx_files", "options", "paths", "protocol", "shapekeys",
           "weights"]
