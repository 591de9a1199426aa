"""StreamingTalker inference core: streaming speech-to-facial-motion.

This top-level module must stay importable without torch: Blender's Python
imports :mod:`inference_core.shared.protocol` and :mod:`inference_core.shared.client`
from here, and those are stdlib-only. Torch-using modules (model, session,
server, training) are imported lazily by the code that needs them.

Layers, each a package (``shared/``, at the bottom, imports no other; the model's
checkpoint and ONNX export read the runtime's file formats, ``runtime.weights`` and
``runtime.onnx_backend``):

* ``shared/`` — stdlib only: the bridge protocol (``Msg``/``Err``), its client, the
  ARKit channel names, the model-card reader, ``SessionOptions`` (the one source of
  generation defaults). Blender's Python imports it.
* ``audio/`` — decoding and causal log-mel (numpy; a torch twin for training).
* ``model/`` — the architecture and objective (``config``), the diffusion schedule,
  sampler and loss in one file (``diffusion``), the network, checkpoints, ONNX export.
* ``runtime/`` — the streaming session, its ONNX and torch backends, the bridge
  server, live capture, whole-file and batch generation, benchmarks.
* ``training/`` — the training loop, evaluation, lip-sync scoring (torch).
* ``data/`` — the dataset format and phonemes; ``corpus/`` (synthetic TTS speech),
  ``realspeech/`` (real speech from Debian packages), ``datasets/`` (VOCASET/BIWI).
* ``flame/`` — FLAME models (restricted unpickler) and FLAME shape keys (numpy).
"""

__version__ = "0.1.0"

#: Version of the stdio bridge protocol (see :mod:`inference_core.shared.protocol`).
PROTOCOL_VERSION = 1
