"""Training on several processes or machines: ``torchrun ... -m inference_core train ...``.

DistributedDataParallel: every process holds the whole model, computes the loss on its
share of the global batch (``--batch`` stays the global batch), and DDP averages the
gradients, so each step is the step one process would take on the whole batch. What
makes a run reproducible whatever the world size:

* every rank draws the same global batch (same seed, same generator) and keeps its own
  rows, so the data seen does not depend on how many processes there are;
* the reported loss is the mean over the ranks, the loss of the whole batch;
* rank 0 alone writes checkpoints, the training state and the progress bar.

Backends: gloo on CPU, nccl on GPU (one process per GPU, ``cuda:LOCAL_RANK``). Without
torchrun's environment (``WORLD_SIZE`` unset or 1) nothing here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str, timeout_s: float = 600.0) -> tuple[World, str]:
    """Join the process group torchrun describes; (this process's place, its device)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if device.startswith("cuda"):
        device, backend = f"cuda:{local}", "nccl"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return World(rank, size, local), device


def shard(world: World, *batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's rows of each tensor of a global batch (the batch must divide evenly)."""
    if not world.enabled:
        return batch
    n = batch[0].shape[0]
    if n % world.size:
        raise ValueError(f"--batch {n} does not divide between {world.size} processes")
    per = n // world.size
    return tuple(t[world.rank * per:(world.rank + 1) * per] for t in batch)


class _LossModule(torch.nn.Module):
    """The model (and the phone probe) with the loss as ``forward``: DDP synchronises the
    gradients of what its wrapped module's forward used, and the training loss calls the
    model's parts (encoder, predictor, head) directly rather than one forward."""

    def __init__(self, model: torch.nn.Module, probe: torch.nn.Module | None, loss_fn: Callable[..., Any]):
        super().__init__()
        self.model = model
        self.probe = probe
        self._loss_fn = loss_fn

    def forward(self, *args: Any) -> Any:
        return self._loss_fn(self.model, *args, self.probe)


def loss_function(world: World, model: torch.nn.Module, probe: torch.nn.Module | None,
                  loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    """``loss_fn(model, *args, probe)`` as a callable of ``*args``, under DDP when distributed."""
    module = _LossModule(model, probe, loss_fn)
    if not world.enabled:
        return module
    on_gpu = next(model.parameters()).is_cuda
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[world.local_rank] if on_gpu else None,
        find_unused_parameters=True)  # some options leave parts unused (no probe, regression head)


def mean_parts(world: World, parts: dict[str, float]) -> dict[str, float]:
    """The loss parts averaged over the ranks: the figures of the whole global batch (a part
    only some ranks have, such as the phone loss of batches with phone timings, over those)."""
    if not world.enabled:
        return parts
    gathered: list[dict[str, float]] = [{} for _ in range(world.size)]
    dist.all_gather_object(gathered, parts)
    keys = sorted({k for g in gathered for k in g})
    return {k: sum(g[k] for g in gathered if k in g) / sum(k in g for g in gathered) for k in keys}


def cleanup(world: World) -> None:
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()
