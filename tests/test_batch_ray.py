"""``generate --ray``: a local Ray instance runs the batch as actors and writes what ``--jobs`` writes,
byte for byte; an unreachable cluster or a missing Ray is one clear line (issue 17)."""

import socket
import subprocess
import sys

import pytest

from fixtures import syllable_audio, write_wav
from test_batch import manifest, output_files
from test_core_cli import cli

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_writes_byte_identical_outputs_to_jobs(tmp_path, random_model):
    src = tmp_path / "lines"
    for i, rel in enumerate(["a/line.wav", "b/line.wav", "take.wav", "take.flac"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(src / rel, syllable_audio(1.0 + 0.2 * i, i)[0])
    (src / "broken.wav").write_bytes(b"not audio at all")
    common = ("--model", random_model, "--threads", 1, "--format", "npz,json,csv", "--quiet")
    local = cli("generate", src, "-o", tmp_path / "jobs", "--jobs", 2, *common)
    ray = cli("generate", src, "-o", tmp_path / "ray", "--ray", "--jobs", 2, *common)
    assert local.returncode == ray.returncode == 1, ray.stderr[-2000:]
    assert output_files(tmp_path / "ray") == output_files(tmp_path / "jobs")
    assert len(output_files(tmp_path / "ray")) == 12
    rows = {r["key"]: r for r in manifest(tmp_path / "ray")}
    assert rows["broken"]["status"] == "error" and rows["broken"]["error"] and "\n" not in rows["broken"]["error"]
    assert [r["status"] for k, r in rows.items() if k != "broken"] == ["ok"] * 4


def test_an_unreachable_ray_address_is_one_clear_line(tmp_path, random_model):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wav = write_wav(tmp_path / "x.wav", syllable_audio(1.0, 1)[0])
    r = cli("generate", wav, "-o", tmp_path / "out", "--model", random_model, "--ray", f"127.0.0.1:{port}",
            timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in lines[0]


def test_without_ray_installed_the_error_says_how_to_get_it(tmp_path, random_model):
    wav = write_wav(tmp_path / "x.wav", syllable_audio(1.0, 1)[0])
    code = ("import sys\nclass Block:\n    @staticmethod\n    def find_spec(name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'ray': raise ImportError('blocked')\n"
            "sys.meta_path.insert(0, Block)\nfrom inference_core.cli import main\n"
            f"sys.exit(main(['generate', {str(wav)!r}, '-o', {str(tmp_path / 'out')!r}, '--model', "
            f"{str(random_model)!r}, '--ray', '--quiet']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip() == "error: Ray is not installed: pip install '.[cluster]' (or pip install ray)"
