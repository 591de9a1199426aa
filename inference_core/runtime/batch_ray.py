"""Batch generation on Ray (``generate --ray [ADDRESS]``): the same items, as Ray actors.

Why it is built this way: each actor loads the model once and takes file after file,
like a ``--jobs`` worker. Inputs travel to the actors as bytes, a model given with
``--model`` travels once through the object store, and results come back as arrays:
a node needs this package (``pip install .[cluster]``) and nothing else, no shared
folder. The driver writes every output with the writer ``--jobs`` uses, so the
files are byte-identical. Ray is optional: it is imported only here, only for ``--ray``.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from pathlib import Path
from typing import Any

from .batch import BatchItem, ItemRecord, OnRecord, Worker, WorkerConfig, error_record, one_line, record_result

CONNECT_TIMEOUT_S = 5.0


class RayUnavailable(RuntimeError):
    """Ray cannot be used (not installed, cluster unreachable); the message is for the user."""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for ``auto`` and the like."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """RayUnavailable within ``timeout`` when nothing listens at ``address`` (ray.init would
    retry for minutes)."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {reason}") from None


def model_files(model: str | None) -> dict[str, bytes]:
    """A ``--model`` checkpoint and its ONNX export, to ship to the nodes (bundled model: nothing)."""
    if not model:
        return {}
    path = Path(model)
    files = [path, *sorted(path.parent.glob(f"{path.stem}.*.onnx")), path.with_name(path.stem + ".onnx.json")]
    return {f.name: f.read_bytes() for f in files if f.is_file()}


class RayWorker:
    """What one actor runs: a :class:`~.batch.Worker` on a node, fed bytes."""

    def __init__(self, cfg: WorkerConfig, files: dict[str, bytes]):
        self._tmp = tempfile.TemporaryDirectory(prefix="stk-ray-")
        if files and cfg.model:
            for name, data in files.items():
                (Path(self._tmp.name) / name).write_bytes(data)
            cfg = WorkerConfig(str(Path(self._tmp.name) / Path(cfg.model).name), cfg.backend, cfg.threads,
                               cfg.overrides, cfg.formats, cfg.out)
        self.error = ""
        self.worker: Worker | None = None
        try:
            self.worker = Worker(cfg)
        except Exception as exc:  # reported on every item this actor is given
            self.error = f"the worker could not load the model: {one_line(exc)}"

    def generate(self, item: BatchItem, data: bytes | None, read_error: str) -> tuple[int, Any, float, str]:
        """(item index, GenerationResult or None, compute seconds, error text)."""
        if self.worker is None:
            return item.index, None, 0.0, self.error
        if data is None:
            return item.index, None, 0.0, read_error
        local = Path(self._tmp.name) / f"input{item.source.suffix}"
        local.write_bytes(data)
        try:
            result, compute = self.worker.generate(item, local)
        except Exception as exc:  # one bad file never stops the batch
            return item.index, None, 0.0, error_record(item, exc).error
        finally:
            local.unlink(missing_ok=True)
        return item.index, result, compute, ""


def _read(item: BatchItem) -> tuple[bytes | None, str]:
    try:
        return item.source.read_bytes(), ""
    except OSError as exc:
        return None, f"cannot read {item.source}: {exc.strerror or exc}"


#: items queued on each actor: the next one is already there when it finishes one (no round-trip idle)
PER_ACTOR = 2


def _schedule(ray: Any, actors: list[Any], queue: list[BatchItem], cfg: WorkerConfig, on_record: OnRecord) -> None:
    """:data:`PER_ACTOR` items in flight per actor; an actor that dies fails the items it held, and no more
    is sent to it."""
    idle = [a for _ in range(PER_ACTOR) for a in actors]
    inflight: dict[Any, tuple[Any, BatchItem]] = {}
    while queue or inflight:
        while queue and idle:
            actor, item = idle.pop(), queue.pop()
            inflight[actor.generate.remote(item, *_read(item))] = (actor, item)
        if not inflight:  # every actor died: what is left fails
            for item in reversed(queue):
                on_record(item, ItemRecord(str(item.source), item.key, status="error",
                                           error="no Ray worker is left to run this file"))
            return
        ready, _ = ray.wait(list(inflight), num_returns=1)
        actor, item = inflight.pop(ready[0])
        try:
            _, result, compute, error = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            on_record(item, ItemRecord(str(item.source), item.key, status="error",
                                       error=f"the Ray worker failed: {one_line(exc)}"))
            if isinstance(exc, ray.exceptions.RayActorError):
                idle = [a for a in idle if a is not actor]
            else:
                idle.append(actor)
            continue
        idle.append(actor)
        on_record(item, record_result(item, result, compute, cfg) if result is not None else
                  ItemRecord(str(item.source), item.key, status="error", error=error))


class RaySession:
    """Ray, imported and joined (or started locally) before any work; :meth:`close` leaves it as found."""

    def __init__(self, address: str | None):
        try:
            import ray
        except ImportError:
            raise RayUnavailable("Ray is not installed: pip install '.[cluster]' (or pip install ray)") from None
        if address:
            check_reachable(address)
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailable(f"cannot start or join Ray at {address or 'a new local instance'}: "
                                     f"{one_line(exc)}") from None

    def run(self, items: list[BatchItem], cfg: WorkerConfig, workers: int, on_record: OnRecord) -> None:
        """Run ``items`` on ``workers`` actors (0: one per ``cfg.threads`` cluster CPUs)."""
        ray = self.ray
        cpus = float(ray.cluster_resources().get("CPU", 1))
        n = workers if workers > 0 else max(1, int(cpus // max(1, cfg.threads)))
        n = max(1, min(n, len(items)))
        files = ray.put(model_files(cfg.model))
        # never ask for more CPUs than the cluster has: an actor that cannot be placed would hold its item for ever
        actor_class = ray.remote(num_cpus=min(float(cfg.threads), cpus / n))(RayWorker)
        actors = [actor_class.remote(cfg, files) for _ in range(n)]  # type: ignore[attr-defined]
        _schedule(ray, actors, list(reversed(items)), cfg, on_record)

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
