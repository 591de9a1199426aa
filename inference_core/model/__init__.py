"""The StreamingTalker network, its diffusion sampler and checkpoints (torch)."""

from .config import ModelConfig
from .network import StreamingTalker

__all__ = ["ModelConfig", "StreamingTalker"]
