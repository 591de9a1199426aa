"""Fuzz suite (issue 18, deliverable 2): seeded, bounded in size, run by ``make test``.

* 10,000 random, truncated and bit-flipped bridge frames through the server's real code
  (the BridgeServer on real pipes, one model loaded once), a ping after each; plus a real
  ``serve`` process taking 1,000 of them and the framing-breaking kinds;
* mutated model cards and safetensors headers through the loaders and the CLI;
* mutated FLAME pickles through the loader, in a child process so a crash is a failure
  with its seed, not the end of the test run.

Every case is rebuilt from ``SEED`` + its index; a failure message names the index. For a
longer hunt: ``STK_FUZZ_SEED=7 STK_FUZZ_SCALE=10 pytest tests/test_fuzz.py`` (ten times the cases).
"""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

import fuzzing
from inference_core.runtime.server import BridgeServer
from inference_core.shared import protocol
from inference_core.shared.model_card import CARD_KEY, ModelFileError
from inference_core.shared.protocol import Err, Msg

SEED = int(os.environ.get("STK_FUZZ_SEED", "18"))
SCALE = int(os.environ.get("STK_FUZZ_SCALE", "1"))
N_FRAMES = 10_000 * SCALE
N_FLAME = 1_500 * SCALE
N_MODELS = 400 * SCALE
SERVER_CODES = {v for k, v in vars(Err).items() if k.isupper() and isinstance(v, str)}
#: What a fuzzed message may be answered with; model_error and internal_error would mean that
#: unchecked input reached code that failed.
EXPECTED_CODES = {Err.MALFORMED, Err.UNKNOWN_TYPE, Err.BAD_REQUEST, Err.AUDIO_TOO_LARGE, Err.BAD_AUDIO,
                  Err.NO_SESSION, Err.SESSION_ACTIVE, Err.DEVICE}
PING = protocol.encode(Msg.PING)


class InProcessServer:
    """A BridgeServer on real pipes in a thread of this process (no model load per restart)."""

    def __init__(self, bundle):
        self.bundle = bundle
        self.replies: queue.Queue = queue.Queue()
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        self.to_server = os.fdopen(c2s_w, "wb", buffering=0)
        self._from_server = os.fdopen(s2c_r, "rb")
        self._srv_out = os.fdopen(s2c_w, "wb", buffering=0)
        self._srv_in = os.fdopen(c2s_r, "rb")
        self.srv = BridgeServer(bundle, self._srv_out, self._srv_in)
        self.rc: int | None = None
        self.crash: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()
        hello = self.replies.get(timeout=30)
        assert hello.type == Msg.HELLO

    def _serve(self):
        try:
            self.rc = self.srv.serve()
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            self.crash = exc
        finally:
            self._srv_out.close()
            self.done.set()

    def _read(self):
        while True:
            try:
                msg = protocol.read_message(self._from_server)
            except protocol.ProtocolError as exc:
                self.replies.put(exc)
                return
            if msg is None:
                self.replies.put(None)
                return
            self.replies.put(msg)

    def write(self, data: bytes) -> None:
        try:
            self.to_server.write(data)
        except BrokenPipeError:
            pass

    def until(self, want: str, timeout: float = 20.0) -> list:
        """Replies up to and including one of type ``want`` (or the end of the stream)."""
        got = []
        while True:
            msg = self.replies.get(timeout=timeout)
            got.append(msg)
            if msg is None or isinstance(msg, Exception) or msg.type == want:
                return got

    def close(self) -> None:
        for f in (self.to_server, self._srv_in, self._from_server):
            try:
                f.close()
            except OSError:
                pass


def check_reply(msg, where: str) -> None:
    assert not isinstance(msg, Exception), f"{where}: unreadable reply {msg}"
    assert msg.type in protocol.SERVER_TYPES, f"{where}: reply type {msg.type!r}"
    if msg.type == Msg.ERROR:
        assert msg.get("code") in EXPECTED_CODES, f"{where}: {msg.fields}"
        assert isinstance(msg.get("message"), str) and len(msg.get("message")) <= 1000, where
        assert "\n" not in msg.get("message") or msg.get("code") == Err.MALFORMED, where


@pytest.fixture()
def quiet_server_log():
    logger = logging.getLogger("inference_core.runtime.server")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # 10,000 'error ...' warnings are not worth formatting
    yield
    logger.setLevel(level)


@pytest.mark.timeout(300 * SCALE)
def test_fuzz_bridge_frames(random_bundle_loaded, quiet_server_log):
    rng = np.random.default_rng(SEED)
    server = InProcessServer(random_bundle_loaded)
    kinds: dict[str, int] = {}
    restarts = 0
    try:
        for i in range(N_FRAMES):
            kind, data = fuzzing.fuzz_case(rng)
            kinds[kind] = kinds.get(kind, 0) + 1
            where = f"case {i} ({kind}, seed {SEED})"
            if kind in fuzzing.KEEP_FRAMING:
                server.write(data + PING)
                replies = server.until(Msg.PONG)
                for msg in replies[:-1]:
                    check_reply(msg, where)
                last = replies[-1]
                if last is not None and not isinstance(last, Exception) and last.type == Msg.PONG:
                    continue
                # only a shutdown message ends the stream while framing holds
                assert server.done.wait(10) and server.rc == 0 and server.crash is None, where
                assert any(m is not None and not isinstance(m, Exception) and m.type == Msg.BYE
                           for m in replies), where
            else:
                server.write(data + PING)
                server.to_server.close()  # the end of input: the server must not wait for more
                replies = server.until("_never_", timeout=20)
                assert server.done.wait(20), f"{where}: the server did not finish"
                assert server.crash is None, f"{where}: {server.crash!r}"
                assert server.rc in (0, 2), where
                for msg in replies[:-1]:
                    if msg.type == Msg.ERROR and msg.get("fatal"):
                        assert msg.get("code") in (Err.MALFORMED, Err.AUDIO_TOO_LARGE), where
                    else:
                        check_reply(msg, where)
                if server.rc == 2:
                    assert replies[-2].type == Msg.ERROR and replies[-2].get("fatal") is True, where
            server.close()
            server = InProcessServer(random_bundle_loaded)
            restarts += 1
        server.write(PING)
        assert server.until(Msg.PONG)[-1].type == Msg.PONG
    finally:
        server.close()
    assert sum(kinds.values()) == N_FRAMES and all(kinds.get(k) for k in fuzzing.KEEP_FRAMING + fuzzing.BREAK_FRAMING)
    print(json.dumps({"frames": N_FRAMES, "kinds": kinds, "server_restarts": restarts}))


@pytest.mark.timeout(300)
def test_fuzz_real_server_process(tmp_path):
    """The real ``serve`` process (bundled model, ONNX): 1,000 framing-keeping fuzz frames with a
    ping after each, then each framing-breaking kind on a fresh process: a fatal error, exit 2,
    no traceback."""
    from inference_core.shared.client import BridgeClient

    rng = np.random.default_rng(SEED + 1)
    client = BridgeClient.launch(threads=1)
    sent = 0
    try:
        while sent < 1000:
            kind, data = fuzzing.fuzz_case(rng)
            if kind not in fuzzing.KEEP_FRAMING or b'"shutdown"' in data:
                continue
            client.proc.stdin.write(data + PING)
            client.proc.stdin.flush()
            while True:
                msg = client.poll(20)
                assert msg is not None, f"real server, frame {sent}: no answer"
                if msg.type == Msg.PONG:
                    break
                check_reply(msg, f"real server, frame {sent} ({kind})")
            sent += 1
        assert client.alive
    finally:
        client.close()
    for kind in fuzzing.BREAK_FRAMING:
        while True:
            got, data = fuzzing.fuzz_case(rng)
            if got == kind:
                break
        client = BridgeClient.launch(threads=1)
        try:
            client.proc.stdin.write(data + PING)
            client.proc.stdin.close()
            rc = client.proc.wait(30)
            assert rc in (0, 2), (kind, rc)
            msgs = []  # everything it wrote: the reader thread queues its exit note last (a loaded
            while (m := client.poll(10)) is not None:  # machine may still be reading when wait() returns)
                msgs.append(m)
                if m.type == Msg.EXIT:
                    break
            if rc == 2:
                assert any(m.type == Msg.ERROR and m.get("fatal") for m in msgs), kind
            assert "Traceback" not in client.stderr_tail(200), client.stderr_tail(200)
        finally:
            client.kill()


# -- model files -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A random checkpoint of a small architecture (100 kB: 400 mutants are written cheaply)."""
    from inference_core.model.checkpoint import save_checkpoint
    from inference_core.runtime.bundle import random_bundle

    b = random_bundle(seed=0, layers=1, head_blocks=1, head_dim=32, model_dim=32, audio_dim=32, heads=2,
                      style_dim=8, context_frames=10, num_styles=2)
    return save_checkpoint(tmp_path_factory.mktemp("small") / "small.safetensors", b.backend.model, b.card)


def test_fuzz_model_files(tmp_path, small_model, onnx_model_dir):
    """Mutated cards, tensor tables and header bytes: every loader answers a model or a
    ModelFileError; ``info`` prints JSON or one ``error:`` line. The model is built only for
    mutants that pass the checks (every 8th torch one, and every ONNX one, all the way)."""
    from inference_core.cli import main as cli_main
    from inference_core.model.layout import checked_config, read_layout
    from inference_core.runtime.bundle import BackendUnavailable, load_bundle

    rng = np.random.default_rng(SEED + 2)
    sources = {"torch": small_model.read_bytes(), "onnx": onnx_model_dir.read_bytes()}
    outcomes: dict[str, int] = {}
    for i in range(N_MODELS):
        backend = "onnx" if i % 10 == 9 else "torch"
        kind, data = fuzzing.mutate_checkpoint(rng, sources[backend], CARD_KEY)
        where = f"model mutant {i} ({kind}, {backend})"
        # an ONNX mutant is written beside a copy of the bundled graphs, so that runtime is tried
        path = fuzzing.write(onnx_model_dir.parent / "onnx" / onnx_model_dir.name if backend == "onnx"
                             else tmp_path / "m.safetensors", data)
        try:
            card, header, data_bytes = read_layout(path)
            checked_config(path.name, card, header, data_bytes)
            verdict = "passes checks"
        except ModelFileError:
            verdict = "refused"
        except Exception as exc:  # noqa: BLE001 - this is what the fuzz looks for
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        if verdict == "passes checks" and (i % 8 == 0 or backend == "onnx"):
            try:
                load_bundle(str(path), backend=backend)
                verdict = "loads"
            except (ModelFileError, BackendUnavailable):
                verdict = "refused when loading"
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        outcomes[verdict] = outcomes.get(verdict, 0) + 1
        err, out = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(out):
            rc = cli_main(["info", str(path)])
        lines = err.getvalue().strip().splitlines()
        assert (rc == 0 and not lines) or (rc == 1 and len(lines) == 1 and lines[0].startswith("error: ")), \
            f"{where}: rc {rc}, stderr {err.getvalue()[:500]!r}"
    assert outcomes.get("refused", 0) > N_MODELS // 4 and sum(outcomes.values()) == N_MODELS
    print(json.dumps(outcomes))


def test_fuzz_model_files_through_real_processes(tmp_path, onnx_model_dir):
    """Mutants of the bundled model (ONNX: no torch to import) through the real CLI and the
    real server: one error line, or output; a fatal error, or a hello and a pong."""
    from fixtures import syllable_audio, write_wav
    from inference_core.shared.client import BridgeClient, BridgeError

    rng = np.random.default_rng(SEED + 3)
    wav = write_wav(tmp_path / "a.wav", syllable_audio(1.0, seed=0)[0])
    raw = onnx_model_dir.read_bytes()
    path = onnx_model_dir.parent / "onnx" / onnx_model_dir.name
    for i in range(4):
        kind, data = fuzzing.mutate_checkpoint(rng, raw, CARD_KEY)
        fuzzing.write(path, data)
        r = subprocess.run([sys.executable, "-m", "inference_core", "generate", str(wav), "-o",
                            str(tmp_path / f"o{i}.npz"), "--model", str(path), "--quiet"],
                           capture_output=True, text=True, timeout=180)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 0 or (r.returncode == 1 and len(lines) == 1), (i, kind, r.stderr[-800:])
        try:
            client = BridgeClient.launch(model=str(path), threads=1)
        except BridgeError as exc:
            assert exc.code == Err.MODEL and "\n" not in str(exc), (i, kind, str(exc))
            continue
        client.send(Msg.PING)
        assert client.wait_for({Msg.PONG}, 20)
        client.close()


@pytest.fixture(scope="module")
def onnx_model_dir(tmp_path_factory):
    """The bundled model's ONNX graphs + manifest in a folder; its checkpoint path there."""
    import shutil

    from inference_core.shared.paths import DEFAULT_MODEL

    d = tmp_path_factory.mktemp("onnx")
    (d / "onnx").mkdir()
    for f in DEFAULT_MODEL.parent.glob(DEFAULT_MODEL.stem + ".*"):
        shutil.copy(f, d / f.name)
        shutil.copy(f, d / "onnx" / f.name)
    return d / DEFAULT_MODEL.name


# -- FLAME pickles ------------------------------------------------------------------------------------
def test_fuzz_flame_pickles(tmp_path):
    """1,500 mutated FLAME files (chumpy-style Python 2 pickles, plain pickles, .npz) through
    load_flame in a child process; the child reports any exception that is not a
    FlameFileError, and a crash is the child's exit status."""
    r = subprocess.run([sys.executable, __file__, str(tmp_path), str(SEED + 4), str(N_FLAME)],
                       capture_output=True, text=True, timeout=600 * SCALE, cwd=Path(__file__).parent)
    assert r.returncode == 0, f"the FLAME fuzz worker died (exit {r.returncode}): {r.stderr[-2000:]}"
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["failures"] == [], report["failures"][:5]
    assert report["cases"] == N_FLAME and report["refused"] > N_FLAME // 4 and report["cli_one_line"] == report["cli_checked"]
    print(json.dumps(report))


def _flame_worker(folder: Path, seed: int, n: int) -> dict:
    """The child of test_fuzz_flame_pickles (run as ``python tests/test_fuzz.py DIR SEED N``)."""
    from flame_helpers import synthetic_flame, write_flame_pkl, write_plain_pkl
    from inference_core.flame.cli import main as flame_cli
    from inference_core.flame.loader import FlameFileError, load_flame

    arrays = synthetic_flame(seed, n_vertices=60, n_faces=80, n_shape=10, n_expr=10)
    bases = {
        "py2 chumpy": write_flame_pkl(folder / "a.pkl", arrays).read_bytes(),
        "protocol 4": write_plain_pkl(folder / "b.pkl", arrays, 4).read_bytes(),
    }
    np.savez(folder / "c.npz", **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    bases["npz"] = (folder / "c.npz").read_bytes()
    positions = {k: fuzzing.opcode_positions(v) for k, v in bases.items() if k != "npz"}
    rng = np.random.default_rng(seed)
    report = {"cases": 0, "loaded": 0, "refused": 0, "failures": [], "cli_checked": 0, "cli_one_line": 0}
    names = sorted(bases)
    for i in range(n):
        base = names[i % len(names)]
        if base == "npz":
            kind, data = "npz bits", fuzzing.flip_bits(rng, bases[base], 0, len(bases[base]), int(rng.integers(1, 9)))
        else:
            kind, data = fuzzing.mutate_pickle(rng, bases[base], positions[base])
        path = fuzzing.write(folder / ("m.npz" if base == "npz" else "m.pkl"), data)
        print(f"case {i} {base} {kind}", file=sys.stderr, flush=True)  # the last line names a crash
        report["cases"] += 1
        try:
            load_flame(path, expect_vertices=None)
            report["loaded"] += 1
        except FlameFileError:
            report["refused"] += 1
        except BaseException as exc:  # noqa: BLE001 - what the fuzz looks for
            report["failures"].append(f"case {i} ({base}, {kind}): {type(exc).__name__}: {str(exc)[:200]}")
        if i % 20 == 0:
            err, out = io.StringIO(), io.StringIO()
            with redirect_stderr(err), redirect_stdout(out):
                rc = flame_cli(["info", str(path)])
            report["cli_checked"] += 1
            lines = err.getvalue().strip().splitlines()
            report["cli_one_line"] += int(rc == 0 or (rc == 1 and len(lines) == 1 and lines[0].startswith("error:")))
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    _folder, _seed, _n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(_flame_worker(_folder, _seed, _n)))
