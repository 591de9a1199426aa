import json
import subprocess
import sys

from flame_helpers import synthetic_flame, write_flame_pkl


def cli(*args):
    return subprocess.run([sys.executable, "-m", "inference_core", "flame", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_flame_info_reads_a_chumpy_pickle_safely(tmp_path):
    path = write_flame_pkl(tmp_path / "generic_model.pkl", synthetic_flame())
    r = cli("info", path)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vertices"] == 5023 and info["joints"] == 5 and info["expression_components"] > 0


def test_flame_info_refuses_garbage(tmp_path):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not a pickle at all")
    r = cli("info", bad)
    assert r.returncode == 1 and "error:" in r.stderr


def test_convert_data_help_reaches_the_converter():
    r = cli("convert-data", "--help")
    assert r.returncode == 0 and "vocaset" in r.stdout
