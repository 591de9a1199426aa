"""Batch generation: many inputs, worker processes or Ray, one manifest line per input.

Why it is built this way:

* Each worker loads the model once and then takes file after file; a file is the unit
  of work (its session is independent of every other file's), so the outputs are the
  same whichever worker, process or machine made them (:mod:`.generate` writes the
  same bytes for the same result).
* A bad file never stops the batch: its error becomes its manifest line and the rest
  go on; the exit code says whether any item failed.
* ``OUT/manifest.jsonl`` gets a line as each item ends (a killed run keeps what it
  finished) and is rewritten in input order at the end. ``--skip-existing`` trusts
  an output only when all its files exist, which atomic writes make safe.
* Output names come from :mod:`..shared.naming`: two inputs never share one.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable

from ..audio.io import AudioError
from ..shared.model_card import ModelFileError
from ..shared.naming import base_key, unique_keys
from ..shared.options import SessionError
from .generate import GenerationResult, OutputError, make_folder, output_paths, write_atomic, write_outputs

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"}
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class BatchItem:
    index: int
    source: Path
    key: str  # output stem relative to the output folder ("a/line")


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs to load the model and write outputs (plain, picklable values)."""
    model: str | None
    backend: str
    threads: int
    overrides: dict[str, Any]
    formats: tuple[str, ...]
    out: str


@dataclass
class ItemRecord:
    """One manifest line."""
    input: str
    key: str
    status: str = "ok"  # ok | error
    outputs: list[str] = field(default_factory=list)
    frames: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def collect_items(inputs: Iterable[str]) -> list[BatchItem]:
    """The files of ``inputs`` (files, or folders searched for audio), each once, uniquely named."""
    found: list[tuple[Path, Path | None]] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item)
        files = [(f, p) for f in sorted(p.rglob("*")) if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file()] \
            if p.is_dir() else [(p, None)]
        for f, root in files:
            real = f.resolve()
            if real not in seen:  # the same file named twice is made once
                seen.add(real)
                found.append((f, root))
    keys = unique_keys((f, base_key(f, root)) for f, root in found)
    return [BatchItem(i, f, k) for i, ((f, _), k) in enumerate(zip(found, keys))]


def outputs_of(item: BatchItem, cfg: WorkerConfig) -> list[Path]:
    return output_paths(Path(cfg.out) / item.key, list(cfg.formats))


def record_result(item: BatchItem, result: GenerationResult, compute: float, cfg: WorkerConfig) -> ItemRecord:
    """Write the outputs of one finished item and describe them (OutputError → an error record)."""
    rec = ItemRecord(str(item.source), item.key, audio_seconds=round(result.audio_seconds, 3),
                     compute_seconds=round(compute, 3), frames=int(len(result.weights)),
                     warnings=list(result.warnings))
    try:
        rec.outputs = [str(p) for p in write_outputs(result, Path(cfg.out) / item.key, list(cfg.formats))]
    except OutputError as exc:
        rec.status, rec.error = "error", str(exc)
    return rec


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none): manifest lines are one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_record(item: BatchItem, exc: BaseException, compute: float = 0.0) -> ItemRecord:
    text = one_line(exc)
    known = isinstance(exc, (AudioError, SessionError, OutputError, ModelFileError))
    return ItemRecord(str(item.source), item.key, status="error", compute_seconds=round(compute, 3),
                      error=text if known else f"{type(exc).__name__}: {text}")


# -- one worker -------------------------------------------------------------------------------------------
class Worker:
    """A loaded model and resolved options: turns items into records (in any process)."""

    def __init__(self, cfg: WorkerConfig):
        from ..shared.options import SessionOptions
        from .bundle import load_bundle

        self.cfg = cfg
        self.bundle = load_bundle(cfg.model, backend=cfg.backend, threads=cfg.threads)
        self.options = SessionOptions.resolve(self.bundle.card, cfg.overrides)

    def generate(self, item: BatchItem, path: Path | None = None) -> tuple[GenerationResult, float]:
        """(result, compute seconds) of one input; ``path`` is a local copy of it, if any."""
        from .generate import generate_file

        t = time.perf_counter()
        result = generate_file(self.bundle, path or item.source, self.options, source=str(item.source))
        return result, time.perf_counter() - t

    def run(self, item: BatchItem) -> ItemRecord:
        t = time.perf_counter()
        try:
            result, compute = self.generate(item)
        except Exception as exc:  # one bad file never stops the batch: it becomes its own error line
            return error_record(item, exc, time.perf_counter() - t)
        return record_result(item, result, compute, self.cfg)


_WORKER: Worker | None = None
_WORKER_ERROR = ""


def _init_process(cfg: WorkerConfig) -> None:
    global _WORKER, _WORKER_ERROR
    try:
        _WORKER = Worker(cfg)
    except Exception as exc:  # reported on every item this process is given
        _WORKER_ERROR = one_line(exc)


def _run_in_process(item: BatchItem) -> ItemRecord:
    if _WORKER is None:
        return ItemRecord(str(item.source), item.key, status="error",
                          error=f"the worker could not load the model: {_WORKER_ERROR}")
    return _WORKER.run(item)


# -- the batch --------------------------------------------------------------------------------------------
class Progress:
    """A bar over files that also counts audio seconds (tqdm; silent without it or when quiet)."""

    def __init__(self, total: int, quiet: bool):
        self.bar: Any = None
        self.audio = 0.0
        if not quiet:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="file", desc="generate", dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                pass

    def update(self, rec: ItemRecord) -> None:
        self.audio += rec.audio_seconds
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.audio:.1f} s audio")
            self.bar.update(1)

    def write(self, text: str) -> None:
        """A message line that does not break the bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Manifest:
    """``OUT/manifest.jsonl``: a line as each item ends, rewritten in input order at the end."""

    def __init__(self, out: Path):
        self.path = out / MANIFEST
        self.records: dict[int, ItemRecord] = {}
        make_folder(out)
        try:
            self._fh = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def add(self, index: int, rec: ItemRecord) -> None:
        self.records[index] = rec
        try:
            self._fh.write(rec.line() + "\n")
            self._fh.flush()
        except OSError:
            pass  # the final rewrite says so

    def close(self) -> None:
        self._fh.close()
        text = "".join(self.records[i].line() + "\n" for i in sorted(self.records))
        write_atomic(self.path, text.encode("utf-8"))


def skipped_record(item: BatchItem, cfg: WorkerConfig) -> ItemRecord | None:
    """The record of an item whose outputs all exist already (``--skip-existing``), else None."""
    paths = outputs_of(item, cfg)
    if not all(p.is_file() for p in paths):
        return None
    return ItemRecord(str(item.source), item.key, outputs=[str(p) for p in paths], skipped=True)


OnRecord = Callable[[BatchItem, ItemRecord], None]


def run_local(items: list[BatchItem], cfg: WorkerConfig, jobs: int, on_record: OnRecord) -> None:
    """Items through ``jobs`` worker processes (1: in this process, no pool)."""
    if jobs <= 1:
        _init_process(cfg)
        for item in items:
            on_record(item, _run_in_process(item))
        return
    # spawn: a forked copy of a process that has started thread pools (OpenMP, ONNX Runtime) can hang
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=_init_process, initargs=(cfg,)) as pool:
        pending: dict[Future[ItemRecord], BatchItem] = {pool.submit(_run_in_process, it): it for it in items}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                try:
                    on_record(item, fut.result())
                except BrokenProcessPool:
                    on_record(item, ItemRecord(
                        str(item.source), item.key, status="error",
                        error="a worker process died before this file was done; rerun with --skip-existing"))


def run_batch(items: list[BatchItem], cfg: WorkerConfig, jobs: int = 1, ray_address: str | None = None,
              use_ray: bool = False, skip_existing: bool = False, quiet: bool = False) -> list[ItemRecord]:
    """Run the batch into ``cfg.out``; returns the records in input order.

    Raises OutputError when the output folder cannot be written and RayUnavailable
    (:mod:`.batch_ray`) when Ray cannot be used, both before any work."""
    ray_session = None
    if use_ray:  # Ray's errors (not installed, unreachable) come before any output is touched
        from .batch_ray import RaySession

        ray_session = RaySession(ray_address)
    try:
        manifest = Manifest(Path(cfg.out))
    except OutputError:
        if ray_session is not None:
            ray_session.close()
        raise
    progress = Progress(len(items), quiet)
    todo = []
    for item in items:
        rec = skipped_record(item, cfg) if skip_existing else None
        if rec is None:
            todo.append(item)
        else:
            manifest.add(item.index, rec)
            progress.update(rec)

    def on_record(item: BatchItem, rec: ItemRecord) -> None:
        manifest.add(item.index, rec)
        progress.update(rec)
        if rec.status != "ok":
            progress.write(f"error: {item.source}: {rec.error}")
        for w in rec.warnings:
            progress.write(f"warning: {item.source.name}: {w}")

    try:
        if ray_session is not None:
            if todo:
                ray_session.run(todo, cfg, jobs, on_record)
        elif todo:
            run_local(todo, cfg, jobs, on_record)
    finally:
        if ray_session is not None:
            ray_session.close()
        progress.close()
        manifest.close()
    return [manifest.records[i] for i in sorted(manifest.records)]


def default_jobs() -> int:
    """``--jobs 0``: one worker per free core."""
    from .threads import free_cores

    return free_cores()

