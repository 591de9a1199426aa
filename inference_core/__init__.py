"""StreamingTalker inference core: streaming speech-to-facial-motion.

This top-level module must stay importable without torch: Blender's Python
imports :mod:`inference_core.shared.protocol` and :mod:`inference_core.shared.client`
from here, and those are stdlib-only. Torch-using modules (model, session,
server, training) are imported lazily by the code that needs them.
"""

__version__ = "0.1.0"

#: Version of the stdio bridge protocol (see :mod:`inference_core.shared.protocol`).
PROTOCOL_VERSION = 1
