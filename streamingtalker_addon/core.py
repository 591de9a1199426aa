"""Access to the stdlib-only parts of ``inference_core`` from inside Blender.

The built extension carries its own copy of the core (``<extension>/inference_core``)
so an installed add-on never depends on a checkout; a development checkout and
the tests use the top-level package instead. Only the stdlib-only modules are
imported here: Blender's Python has no torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _load() -> ModuleType:
    if __package__:
        try:
            return importlib.import_module(__package__ + ".inference_core")
        except ImportError:
            pass
    return importlib.import_module("inference_core")


inference_core = _load()
protocol: ModuleType = importlib.import_module(inference_core.__name__ + ".shared.protocol")
bridge_client: ModuleType = importlib.import_module(inference_core.__name__ + ".shared.client")
channels: ModuleType = importlib.import_module(inference_core.__name__ + ".shared.channels")
paths: ModuleType = importlib.import_module(inference_core.__name__ + ".shared.paths")
model_card: ModuleType = importlib.import_module(inference_core.__name__ + ".shared.model_card")

BridgeClient = bridge_client.BridgeClient
BridgeError = bridge_client.BridgeError
BridgeTimeout = bridge_client.BridgeTimeout
normalise_name = channels.normalise_name
ARKIT_52 = channels.ARKIT_52
