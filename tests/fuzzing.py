"""Seeded generators and mutators for the fuzz tests (tests/test_fuzz.py): bridge frames,
model files, FLAME pickles. Plain functions of a numpy Generator, so every case can be
rebuilt from its seed."""

from __future__ import annotations

import json
import pickletools
import struct
from pathlib import Path
from typing import Any

import numpy as np

from inference_core.shared import protocol
from inference_core.shared.options import SessionOptions
from inference_core.shared.protocol import CLIENT_TYPES, Msg

OPTION_NAMES = list(SessionOptions.__dataclass_fields__)
_TEXT = ["", "a", "default", "live", "microphone", "é" * 40, "\u0000", "x" * 3000, "😀", "../../etc/passwd",
         "NaN", "1e30", "-1", "None", "true"]
_NUMBERS = [0, 1, -1, 2, 3, 7, 50, 51, 2**31, 2**63, 2**64, -2**63, 10**30, 0.0, -0.0, 0.5, 1.7, 1e30, 1e308,
            -1e308, 5e-324, float("nan"), float("inf"), float("-inf")]


def random_json(rng: np.random.Generator, depth: int = 0) -> Any:
    kind = int(rng.integers(0, 9 if depth < 3 else 6))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return _NUMBERS[int(rng.integers(0, len(_NUMBERS)))]
    if kind == 3:
        return int(rng.integers(-1000, 1000))
    if kind == 4:
        return _TEXT[int(rng.integers(0, len(_TEXT)))]
    if kind == 5:
        return "".join(chr(int(c)) for c in rng.integers(32, 0x3000, int(rng.integers(0, 30))))
    if kind in (6, 7):
        return [random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 5)))]
    return {str(random_json(rng, depth + 1))[:20]: random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 5)))}


def random_message(rng: np.random.Generator) -> tuple[Any, dict[str, Any], bytes]:
    """(type, fields, payload) of a plausible-to-absurd client message."""
    r = rng.random()
    if r < 0.8:
        types = sorted(CLIENT_TYPES - {Msg.SHUTDOWN}) + [Msg.AUDIO] * 3 + [Msg.START] * 2
        mtype: Any = types[int(rng.integers(0, len(types)))]
    elif r < 0.81:
        mtype = Msg.SHUTDOWN
    elif r < 0.9:
        mtype = random_json(rng)  # not a string, or a string that is no type
    else:
        mtype = [Msg.HELLO, Msg.FRAMES, "", "é" * 500, "on_audio", "__init__", "_dispatch"][int(rng.integers(0, 7))]
    fields: dict[str, Any] = {}
    if rng.random() < 0.7:
        fields["session"] = ["a", "b", "default", "live"][int(rng.integers(0, 4))] if rng.random() < 0.8 \
            else random_json(rng)
    if mtype == Msg.START:
        for name in OPTION_NAMES:
            if rng.random() < 0.3:
                fields[name] = random_json(rng) if rng.random() < 0.5 else int(rng.integers(0, 4))
    if mtype == Msg.LIVE_START:  # never a real device or file: the fuzz must not start capturing
        fields["input"] = random_json(rng) if rng.random() < 0.5 else "/nonexistent/fuzz.wav"
        if fields["input"] == "microphone":
            fields["input"] = "/nonexistent/fuzz.wav"
        if rng.random() < 0.3:
            fields["device"] = random_json(rng)
    for _ in range(int(rng.integers(0, 3))):
        fields[str(random_json(rng))[:30]] = random_json(rng)
    payload = b""
    if mtype == Msg.AUDIO or rng.random() < 0.05:
        n = int(rng.integers(0, 1200))
        pick = rng.random()
        if pick < 0.5:
            samples = rng.standard_normal(n).astype("<f4") * 0.3
        elif pick < 0.7:
            samples = rng.uniform(-3.4e38, 3.4e38, n).astype("<f4")
        elif pick < 0.8:
            samples = np.full(n, [np.nan, np.inf, -np.inf][int(rng.integers(0, 3))], "<f4")
        else:
            samples = np.frombuffer(rng.bytes(4 * n), "<f4")
        payload = samples.tobytes() + (rng.bytes(int(rng.integers(1, 4))) if rng.random() < 0.1 else b"")
    return mtype, fields, payload


def frame(mtype: Any, fields: dict[str, Any], payload: bytes = b"") -> bytes:
    """A frame as a client could write it: UTF-8 JSON (NaN literals allowed), no size check."""
    header = dict(fields)
    header["type"] = mtype
    raw = json.dumps(header, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    return protocol._PREFIX.pack(protocol.MAGIC, len(raw), len(payload)) + raw + payload


def flip_bits(rng: np.random.Generator, data: bytes, lo: int, hi: int, n: int) -> bytes:
    """``data`` with ``n`` random bits flipped in bytes [lo, hi)."""
    out = bytearray(data)
    if hi > lo:
        for pos in rng.integers(lo, hi, n):
            out[int(pos)] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


#: How a frame is damaged; the first ones keep the stream's framing (the server must answer
#: the next ping), the rest break it (the server must report a fatal error and exit 2).
KEEP_FRAMING = ("clean", "header bits", "payload bits", "header garbage")
BREAK_FRAMING = ("prefix bits", "truncated", "random bytes")


def fuzz_case(rng: np.random.Generator) -> tuple[str, bytes]:
    """(kind of damage, bytes to write) for one fuzz case."""
    data = frame(*random_message(rng))
    _, hlen, plen = protocol._PREFIX.unpack(data[:protocol.PREFIX_SIZE])
    h0, p0 = protocol.PREFIX_SIZE, protocol.PREFIX_SIZE + hlen
    r = rng.random()
    if hlen > protocol.MAX_HEADER_BYTES:
        return "random bytes", data  # too large a header: the reader refuses the length (fatal)
    if r < 0.35:
        return "clean", data
    if r < 0.6:
        return "header bits", flip_bits(rng, data, h0, p0, int(rng.integers(1, 9)))
    if r < 0.7 and plen:
        return "payload bits", flip_bits(rng, data, p0, len(data), int(rng.integers(1, 9)))
    if r < 0.8:
        return "header garbage", data[:h0] + rng.bytes(hlen) + data[p0:]
    if r < 0.87:
        return "prefix bits", flip_bits(rng, data, 0, h0, int(rng.integers(1, 4)))
    if r < 0.94:
        return "truncated", data[: int(rng.integers(1, len(data)))]
    return "random bytes", rng.bytes(int(rng.integers(1, 64)))


# -- model files -----------------------------------------------------------------------------------
def split_checkpoint(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """(safetensors header as JSON, tensor data) of a checkpoint's bytes."""
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join_checkpoint(header: Any, data: bytes) -> bytes:
    text = json.dumps(header, allow_nan=True).encode()
    return struct.pack("<Q", len(text)) + text + data


def mutate_json(rng: np.random.Generator, value: Any, ops: int) -> Any:
    """``value`` (a parsed JSON document) with ``ops`` random edits anywhere in its tree."""
    for _ in range(ops):
        value = _edit(rng, value, 0)
    return value


def _edit(rng: np.random.Generator, node: Any, depth: int) -> Any:
    if isinstance(node, dict) and node and rng.random() < 0.75:
        key = sorted(node)[int(rng.integers(0, len(node)))]
        r = rng.random()
        if r < 0.15:
            node.pop(key)
        else:
            node[key] = _edit(rng, node[key], depth + 1)
        return node
    if isinstance(node, list) and node and rng.random() < 0.7:
        i = int(rng.integers(0, len(node)))
        r = rng.random()
        if r < 0.15:
            node.pop(i)
        elif r < 0.25:
            node.append(node[i])
        else:
            node[i] = _edit(rng, node[i], depth + 1)
        return node
    r = rng.random()
    if r < 0.4:
        return random_json(rng, 2)
    if r < 0.6 and isinstance(node, (int, float)) and not isinstance(node, bool):
        return [0, -1, node * 2, node + 1, 2**20, 2**40, -node, float(node) + 0.5][int(rng.integers(0, 8))]
    if r < 0.8:
        return str(node)
    return [node] if rng.random() < 0.5 else {"x": node}


def mutate_checkpoint(rng: np.random.Generator, raw: bytes, card_key: str) -> tuple[str, bytes]:
    """(kind, bytes) of a damaged checkpoint: its card edited, its tensor table edited, or
    bits of its header flipped."""
    header, data = split_checkpoint(raw)
    r = rng.random()
    if r < 0.45:
        card = json.loads(header["__metadata__"][card_key])
        card = mutate_json(rng, card, int(rng.integers(1, 4)))
        header["__metadata__"][card_key] = json.dumps(card, allow_nan=True)
        return "card", join_checkpoint(header, data)
    if r < 0.75:
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        tensors = mutate_json(rng, tensors, int(rng.integers(1, 3)))
        tensors = tensors if isinstance(tensors, dict) else {"x": tensors}
        return "tensor table", join_checkpoint(dict(tensors, __metadata__=header["__metadata__"]), data)
    if r < 0.9:
        (n,) = struct.unpack("<Q", raw[:8])
        return "header bits", flip_bits(rng, raw, 0, 8 + n, int(rng.integers(1, 9)))
    return "truncated", raw[: int(rng.integers(0, len(raw)))]


# -- FLAME pickles ----------------------------------------------------------------------------------
def opcode_positions(raw: bytes) -> list[int]:
    """Offsets of a pickle's opcodes (the structure, not the array bytes inside strings)."""
    return [pos for _, _, pos in pickletools.genops(raw) if pos is not None]


def mutate_pickle(rng: np.random.Generator, raw: bytes, positions: list[int]) -> tuple[str, bytes]:
    """(kind, bytes): opcodes overwritten, bits flipped near opcodes or anywhere, bytes
    inserted/deleted, a slice duplicated, or the stream truncated."""
    r = rng.random()
    out = bytearray(raw)
    if r < 0.3:
        for _ in range(int(rng.integers(1, 4))):
            pos = positions[int(rng.integers(0, len(positions)))]
            out[pos] = int(rng.choice(list(b"()0.12aebcdghijklmnopqrstu}]IJKLMNPQRSTUVXq\x80\x81\x85\x86\x87\x88"
                                           b"\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98")))
        return "opcodes", bytes(out)
    if r < 0.55:
        for _ in range(int(rng.integers(1, 9))):
            pos = positions[int(rng.integers(0, len(positions)))] + int(rng.integers(0, 6))
            if pos < len(out):
                out[pos] ^= 1 << int(rng.integers(0, 8))
        return "bits near opcodes", bytes(out)
    if r < 0.65:
        return "bits anywhere", flip_bits(rng, raw, 0, len(raw), int(rng.integers(1, 17)))
    if r < 0.8:
        pos = positions[int(rng.integers(0, len(positions)))]
        if rng.random() < 0.5:
            return "bytes inserted", raw[:pos] + rng.bytes(int(rng.integers(1, 9))) + raw[pos:]
        return "bytes deleted", raw[:pos] + raw[pos + int(rng.integers(1, 9)):]
    if r < 0.9:
        a = int(rng.integers(0, len(raw)))
        b = min(len(raw), a + int(rng.integers(1, 200)))
        return "slice duplicated", raw[:b] + raw[a:b] * int(rng.integers(1, 50)) + raw[b:]
    return "truncated", raw[: int(rng.integers(0, len(raw)))]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
