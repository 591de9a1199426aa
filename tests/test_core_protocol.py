import io
import struct

import pytest

from inference_core.shared import protocol


def roundtrip(data: bytes):
    return protocol.read_message(io.BytesIO(data))


def test_roundtrip_header_and_payload():
    payload = protocol.floats_to_bytes([0.5, -1.0, 2.25])
    msg = roundtrip(protocol.encode("audio", payload, session="s1", n=3))
    assert msg.type == "audio" and msg.fields == {"session": "s1", "n": 3}
    assert list(protocol.bytes_to_floats(msg.payload)) == [0.5, -1.0, 2.25]


def test_several_messages_then_clean_eof():
    stream = io.BytesIO(protocol.encode("ping") + protocol.encode("end", session="x"))
    assert protocol.read_message(stream).type == "ping"
    assert protocol.read_message(stream).get("session") == "x"
    assert protocol.read_message(stream) is None


def test_bad_magic_is_fatal():
    with pytest.raises(protocol.ProtocolError) as e:
        roundtrip(b"HTTP" + b"\0" * 8)
    assert not e.value.recoverable


def test_truncated_message():
    data = protocol.encode("audio", b"\0" * 40)
    with pytest.raises(protocol.ProtocolError, match="ended inside"):
        roundtrip(data[:-3])


def test_oversized_lengths_rejected_before_reading():
    data = struct.pack("<4sII", protocol.MAGIC, 10, protocol.MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(protocol.ProtocolError) as e:
        roundtrip(data)
    assert e.value.code == protocol.Err.AUDIO_TOO_LARGE


def test_bad_json_header_is_recoverable_and_stream_continues():
    raw = b"{not json"
    bad = struct.pack("<4sII", protocol.MAGIC, len(raw), 0) + raw
    stream = io.BytesIO(bad + protocol.encode("ping"))
    with pytest.raises(protocol.ProtocolError) as e:
        protocol.read_message(stream)
    assert e.value.recoverable
    assert protocol.read_message(stream).type == "ping"


def test_header_without_type():
    raw = b'{"a": 1}'
    with pytest.raises(protocol.ProtocolError, match="type"):
        roundtrip(struct.pack("<4sII", protocol.MAGIC, len(raw), 0) + raw)


def test_non_finite_header_values_refused():
    with pytest.raises(ValueError):
        protocol.encode("start", guidance=float("nan"))


def test_float_payload_must_be_whole_floats():
    with pytest.raises(protocol.ProtocolError):
        protocol.bytes_to_floats(b"abc")


def test_protocol_module_is_stdlib_only():
    import ast
    from pathlib import Path

    import inference_core

    root = Path(inference_core.__file__).parent
    files = sorted((root / "shared").glob("*.py")) + [root / "__init__.py"]
    assert len(files) >= 6
    for path in files:
        name = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for m in mods:
                    assert m.split(".")[0] not in {"torch", "numpy", "bpy", "scipy"}, (name, m)
