"""Client side of the stdio bridge (stdlib only; runs inside Blender's Python).

The client starts ``python -m inference_core serve`` as a child process and
talks to it over pipes. A reader thread only moves parsed messages into a
queue; the caller (Blender's main thread, a timer or a modal operator) polls
that queue, so no bpy data is ever touched off the main thread. Every wait is
bounded: a crashed child shows up as an ``_exit`` message, a hung one as a
:class:`BridgeTimeout`.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from . import protocol
from .protocol import Err, Message, Msg

#: Pseudo-message type the reader thread queues when the child's stdout closes.
EXIT = Msg.EXIT


class BridgeError(RuntimeError):
    """The inference process failed; the message is meant for the user."""

    def __init__(self, message: str, code: str = Err.INTERNAL, detail: str = ""):
        super().__init__(message)
        self.code = code
        self.detail = detail


class BridgeTimeout(BridgeError):
    """The inference process did not answer within the allotted time."""

    def __init__(self, message: str):
        super().__init__(message, code=Err.TIMEOUT)


def core_root() -> Path:
    """Folder that contains the ``inference_core`` package (goes on the child's PYTHONPATH)."""
    return Path(__file__).resolve().parents[2]


#: glibc tunable that makes malloc ask for transparent huge pages (glibc >= 2.35; older ones,
#: other C libraries and other systems ignore it).
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"


def server_env(site_dirs: Iterable[str] = (), base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ``inference_core`` and ``site_dirs`` importable, output unbuffered,
    and on Linux malloc's memory in huge pages.

    Why huge pages: a step reads 25 MB of weights (the head's twice); in 4 KB pages that is
    thousands of TLB misses per step. The server's CPU for a 60 s file in Blender (2 threads,
    10 interleaved runs, load 5) went from 2.20 to 1.78 s, outputs unchanged."""
    env = dict(os.environ if base is None else base)
    path = [str(core_root()), *map(str, site_dirs)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if sys.platform.startswith("linux"):
        tunables = env.get("GLIBC_TUNABLES", "")
        if "glibc.malloc.hugetlb" not in tunables:
            env["GLIBC_TUNABLES"] = f"{tunables}:{HUGEPAGE_TUNABLE}" if tunables else HUGEPAGE_TUNABLE
    return env


def server_command(python: str | os.PathLike, model: str | os.PathLike | None = None,
                   device: str = "cpu", threads: int | None = None, backend: str = "auto",
                   extra: Iterable[str] = ()) -> list[str]:
    cmd = [str(python), "-u", "-m", "inference_core", "serve", "--device", device, "--backend", backend]
    if model:
        cmd += ["--model", str(model)]
    if threads:
        cmd += ["--threads", str(threads)]
    cmd += list(extra)
    return cmd


class BridgeClient:
    """One inference child process and the pipes to it."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None):
        self.command = list(command)
        self._env = env
        self._cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.hello: Message | None = None
        self._queue: queue.Queue[Message] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._write_lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._arrived = threading.Event()
        self.last_message_time = 0.0

    # -- life cycle -----------------------------------------------------
    @classmethod
    def launch(cls, python: str | os.PathLike = sys.executable, model: str | None = None,
               device: str = "cpu", threads: int | None = None, backend: str = "auto",
               hello_timeout: float = 60.0, extra: Iterable[str] = (),
               site_dirs: Iterable[str] = ()) -> "BridgeClient":
        """Start a server and wait for its ``hello`` (model loaded) or fail clearly."""
        client = cls(server_command(python, model, device, threads, backend, extra), env=server_env(site_dirs))
        client.start(hello_timeout)
        return client

    def start(self, hello_timeout: float = 60.0) -> Message:
        try:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self._env, cwd=self._cwd, bufsize=0,
            )
        except OSError as exc:
            raise BridgeError(f"Could not start the inference runtime {self.command[0]!r}: {exc}",
                              code=Err.LAUNCH_FAILED) from None
        self._readers = [threading.Thread(target=self._read_stdout, name="stk-bridge-reader", daemon=True),
                         threading.Thread(target=self._read_stderr, name="stk-bridge-stderr", daemon=True)]
        for reader in self._readers:
            reader.start()
        msg = self.wait_for({Msg.HELLO}, timeout=hello_timeout)
        self.hello = msg
        return msg

    def close(self, timeout: float = 5.0) -> int | None:
        """Ask the server to exit; kill it if it does not within ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.send(Msg.SHUTDOWN)
            except BridgeError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # The readers see end-of-file once the process is gone; closing their pipes under them
        # would make them fail mid-read (a grandchild holding the pipe open only delays this).
        deadline = time.monotonic() + 1.0
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> "BridgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def model_card(self) -> dict[str, Any]:
        return dict(self.hello.get("model", {})) if self.hello else {}

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr_tail)[-lines:])

    # -- messages -------------------------------------------------------
    def send(self, msg_type: str, payload: bytes = b"", **fields: Any) -> None:
        proc = self.proc
        if not self.alive or proc is None or proc.stdin is None:
            raise BridgeError(self._death_message(), code=Err.PROCESS_EXITED)
        stdin = proc.stdin
        data = protocol.encode(msg_type, payload, **fields)
        try:
            with self._write_lock:
                stdin.write(data)
                stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise BridgeError(self._death_message(), code=Err.PROCESS_EXITED) from None

    def poll(self, timeout: float | None = 0.0) -> Message | None:
        """Next message, or None if none arrives within ``timeout`` (0 = don't wait)."""
        try:
            if timeout == 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_message(self, timeout: float) -> bool:
        """Block until a message is queued, without taking it (False on timeout).

        Lets a synchronous loop sleep until there is work instead of polling,
        which would take CPU from the inference process on small machines.
        """
        if not self._queue.empty():
            return True
        self._arrived.clear()
        if not self._queue.empty():
            return True
        return self._arrived.wait(timeout)

    def drain(self) -> list[Message]:
        out = []
        while (msg := self.poll(0)) is not None:
            out.append(msg)
        return out

    def wait_for(self, types: set[str], timeout: float) -> Message:
        """Block until a message of one of ``types`` arrives; errors and exits raise.

        Messages of other types that arrive meanwhile are dropped, so use this
        for request/answer pairs, not while frames are streaming.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BridgeTimeout(f"The inference process did not answer within {timeout:.0f} s"
                                    f" (waiting for {', '.join(sorted(types))}).")
            msg = self.poll(min(remaining, 0.5))
            if msg is None:
                continue
            if msg.type in types:
                return msg
            self.raise_for(msg)

    def raise_for(self, msg: Message) -> None:
        """Raise :class:`BridgeError` for ``error`` and exit messages; ignore others."""
        if msg.type == Msg.ERROR:
            raise BridgeError(msg.get("message", "inference error"), msg.get("code", Err.INTERNAL),
                              msg.get("detail", ""))
        if msg.type == EXIT:
            raise BridgeError(self._death_message(), code=Err.PROCESS_EXITED)

    def _death_message(self) -> str:
        code = self.proc.poll() if self.proc else None
        tail = self.stderr_tail(8)
        text = f"The inference process stopped (exit code {code})."
        if tail:
            text += "\n" + tail
        return text

    # -- reader threads -------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        stream = self.proc.stdout
        try:
            while True:
                try:
                    msg = protocol.read_message(stream)
                except protocol.ProtocolError as exc:
                    self._queue.put(Message(Msg.ERROR, {
                        "code": Err.MALFORMED, "fatal": not exc.recoverable,
                        "message": f"Unreadable reply from the inference process: {exc}"}))
                    self._arrived.set()
                    if exc.recoverable:
                        continue
                    break
                if msg is None:
                    break
                if msg.type not in protocol.SERVER_TYPES:  # a newer server's message: not ours to act on
                    self._stderr_tail.append(f"[client] ignored unknown message type {msg.type!r}")
                    continue
                self.last_message_time = time.monotonic()
                self._queue.put(msg)
                self._arrived.set()
        except (OSError, ValueError) as exc:
            self._queue.put(Message(Msg.ERROR, {"code": Err.MALFORMED, "fatal": True,
                                              "message": f"Lost the inference process's output: {exc}"}))
        finally:
            rc: int | None
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = None
            self._queue.put(Message(EXIT, {"returncode": rc}))
            self._arrived.set()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                self._stderr_tail.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):  # the pipe was closed under us (close() timed out joining)
            pass
