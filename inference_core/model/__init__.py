"""The StreamingTalker network (torch), its diffusion process and checkpoints.

``config`` and ``diffusion`` import no torch at module level: the torch-free
runtime uses the architecture and the sampler without it. ``network``,
``checkpoint`` and ``onnx_export`` need torch.
"""
