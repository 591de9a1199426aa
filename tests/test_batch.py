"""Batch generation through the real CLI: worker processes, the manifest, resuming, output names and
output paths that cannot be written (issue 17; issue 18 rows 7 and 8)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures import syllable_audio, write_wav
from test_core_cli import cli


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "manifest.jsonl"}


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    """A folder like a studio's: nested takes with the same stem, two formats of one take,
    a corrupt file and an empty one."""
    src = tmp_path_factory.mktemp("batch") / "lines"
    for i, rel in enumerate(["a/line.wav", "b/line.wav", "take.wav", "take.flac", "solo.wav"]):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(src / rel, syllable_audio(1.0 + 0.2 * i, i)[0])
    (src / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64)))
    (src / "empty.mp3").write_bytes(b"")
    return src


def test_jobs_two_writes_what_jobs_one_writes_with_one_manifest_line_per_input(lines, tmp_path, random_model):
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        r = cli("generate", lines, "-o", out, "--model", random_model, "--jobs", jobs, "--threads", 1,
                "--format", "npz,json", "--quiet")
        assert r.returncode == 1, r.stderr  # two inputs are bad: the batch goes on, the exit code says so
        assert "Traceback" not in r.stderr and "2 of 7 file(s) failed" in r.stderr
        runs[jobs] = out
    files = output_files(runs[1])
    assert files == output_files(runs[2])  # byte for byte, whatever --jobs is
    # same stems never overwrite each other: the tree is mirrored, the extension tells takes apart
    assert sorted(files) == sorted(f"{k}.{ext}" for k in ("a/line", "b/line", "take_flac", "take_wav", "solo")
                                   for ext in ("npz", "json"))
    weights = {k: np.load(runs[1] / f"{k}.npz")["weights"] for k in ("a/line", "b/line", "take_wav", "take_flac")}
    assert weights["a/line"].shape != weights["b/line"].shape and weights["take_wav"].shape != weights["take_flac"].shape
    rows = manifest(runs[2])
    assert [r["input"] for r in rows] == [str(p) for p in sorted(lines.rglob("*")) if p.is_file()]  # input order
    ok = [r for r in rows if r["status"] == "ok"]
    bad = {Path(r["input"]).name: r for r in rows if r["status"] == "error"}
    assert len(ok) == 5 and set(bad) == {"corrupt.wav", "empty.mp3"}
    for r in ok:
        assert r["frames"] == round(r["audio_seconds"] * 30) and r["compute_seconds"] > 0 and not r["error"]
        assert all(Path(o).is_file() for o in r["outputs"]) and len(r["outputs"]) == 2
    for r in bad.values():
        assert r["error"] and "\n" not in r["error"] and not r["outputs"]


def test_skip_existing_resumes_an_interrupted_batch(lines, tmp_path, random_model):
    out = tmp_path / "out"
    args = ("generate", lines, "-o", out, "--model", random_model, "--threads", 1, "--quiet")
    assert cli(*args).returncode == 1
    kept = out / "solo.npz"
    before = kept.stat().st_mtime_ns
    (out / "a" / "line.npz").unlink()  # as if the run had been killed before this one
    r = cli(*args, "--skip-existing", "--jobs", 2)
    assert r.returncode == 1  # the bad inputs are tried again, and fail again
    rows = {r["key"]: r for r in manifest(out)}
    assert rows["solo"]["skipped"] and rows["solo"]["status"] == "ok" and kept.stat().st_mtime_ns == before
    assert not rows["a/line"]["skipped"] and (out / "a" / "line.npz").is_file()
    assert rows["corrupt"]["status"] == "error" and not rows["corrupt"]["skipped"]


def test_inputs_given_as_files_with_the_same_stem_keep_apart(tmp_path, random_model):
    """Issue 18 row 7: take.wav + take.flac and a/line.wav + b/line.wav named one by one."""
    files = []
    for i, rel in enumerate(["a/line.wav", "b/line.wav", "take.wav", "take.flac"]):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        files.append(write_wav(tmp_path / rel, syllable_audio(1.0 + 0.3 * i, i)[0]))
    out = tmp_path / "out"
    r = cli("generate", *files, files[0], "-o", out, "--model", random_model, "--quiet")
    assert r.returncode == 0, r.stderr
    rows = manifest(out)
    assert [r["key"] for r in rows] == ["line", "line-2", "take_wav", "take_flac"]  # the repeated file: once
    frames = [np.load(out / f"{r['key']}.npz")["weights"].shape[0] for r in rows]
    assert frames == [30, 39, 48, 57]  # each output is its own input's


@pytest.mark.parametrize("case", ["device", "file_as_folder", "folder_as_file", "no_permission"])
def test_an_output_that_cannot_be_written_is_one_clear_line(case, tmp_path, random_model):
    """Issue 18 row 8: /dev/full, a folder, a place nobody may write: one line, no traceback."""
    wav = write_wav(tmp_path / "x.wav", syllable_audio(1.0, 1)[0])
    (tmp_path / "taken.json").mkdir()
    (tmp_path / "plain").write_text("a file")
    out, expect = {
        "device": ("/dev/full", "it is a file"),
        "file_as_folder": (tmp_path / "plain" / "out.npz", "it is a file"),
        "folder_as_file": (tmp_path / "taken.npz", "is a folder"),
        "no_permission": ("/sys/stk_out/lines", "cannot create the output folder"),
    }[case]
    for extra in ([], ["--jobs", "2"]):
        r = cli("generate", wav, wav.parent, "-o", out, "--model", random_model, "--quiet", "--format", "npz,json",
                *extra) if case == "device" else \
            cli("generate", wav, "-o", out, "--model", random_model, "--quiet", "--format", "npz,json", *extra)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], r.stderr


def test_a_read_only_output_folder_is_one_clear_line(tmp_path, random_model):
    """Issue 18 row 8, read-only folder: root ignores permission bits, so a read-only mount is made
    in a private mount namespace (skipped where that is not allowed)."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("cannot make a private read-only mount here")
    wav = write_wav(tmp_path / "x.wav", syllable_audio(1.0, 1)[0])
    ro = tmp_path / "ro"
    ro.mkdir()
    cmd = (f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m inference_core generate {wav} "
           f"-o {ro}/out --model {random_model} --quiet")
    r = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Read-only file system" in lines[0], r.stderr
