"""VOCASET / BIWI layouts → dataset format with a PCA motion basis (fabricated fixtures)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from flame_helpers import vertex_sequences, write_sequences, write_vocaset
from inference_core.data.datasets import vertex as vd
from inference_core.data.format import Dataset


@pytest.fixture(scope="module")
def small_seqs():
    return vertex_sequences(n_subjects=3, n_sentences=2, seconds=2.0, fps=60.0, sr=22000, seed=0)


def _reconstruct(ds, utt_id, template):
    basis, _ = ds.basis()
    entry = next(e for e in ds.entries() if e["id"] == utt_id)
    return template[None] + np.einsum("tk,kvd->tvd", ds.load(entry).motion, basis)


def test_vocaset_layout_converts(tmp_path, small_seqs):
    seqs, templates = small_seqs
    src = write_vocaset(tmp_path / "vocaset", seqs, templates)
    report = vd.convert(*vd.read_vocaset(src), tmp_path / "out", components=6, prefix="VOCASET")
    ds = Dataset(tmp_path / "out")
    assert ds.channel_space == "vertex" and ds.fps == 30 and ds.sample_rate == 16000
    assert ds.channels[:2] == ["VOCASET_pc000", "VOCASET_pc001"] and len(ds.channels) == report["components"]
    basis, template = ds.basis()
    assert basis.shape == (report["components"], 60, 3) and template.shape == (60, 3)
    # whole speakers are held out; the basis is fitted on training speakers only
    assert ds.speakers("val") == ["FaceTalk_170702_TA"] and len(ds.speakers("train")) == 2
    print(f"PCA (K={report['components']}): energy kept train {report['train']['energy_kept']:.5f}, "
          f"val {report['val']['energy_kept']:.5f}; mean vertex error train "
          f"{report['train']['mean_vertex_error'] * 1000:.4f} mm, val {report['val']['mean_vertex_error'] * 1000:.4f} mm")
    assert report["train"]["energy_kept"] > 0.999 and report["val"]["energy_kept"] > 0.99
    # every utterance: audio/motion lengths agree at 30 fps; motion reconstructs the 60 fps source
    for entry in ds.entries():
        utt = ds.load(entry)
        assert len(utt.motion) == round(len(utt.audio) / 16000 * 30)
        assert np.abs(utt.audio).max() <= 1.0
    subj, sent, pcm, sr, verts = seqs[0]
    rec = _reconstruct(ds, f"{subj}__{sent}", templates[subj])
    src_at_30 = verts[::2][: len(rec)]  # 60 → 30 fps lands exactly on every other source frame
    assert np.abs(rec - src_at_30).max() < 1e-4
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["pca"]["components"] == 6


def test_biwi_layout_at_25fps(tmp_path):
    seqs, templates = vertex_sequences(n_subjects=2, n_sentences=2, seconds=1.6, fps=25.0, sr=16000,
                                       n_vertices=40, seed=4)
    seqs = [(f"F{i // 2 + 1}", f"e{i % 2 + 1:02d}", *rest) for i, (_, _, *rest) in enumerate(seqs)]
    templates = {f"F{i + 1}": t for i, t in enumerate(templates.values())}
    src = write_sequences(tmp_path / "biwi", seqs, templates)
    report = vd.convert(*vd.read_sequences(src, 25.0), tmp_path / "out", components=4, val_speakers=["F2"],
                        prefix="BIWI")
    ds = Dataset(tmp_path / "out")
    assert ds.speakers("val") == ["F2"] and report["components"] == 4
    # 25 → 30 fps: compare at times where both have a frame (every 0.2 s)
    rec = _reconstruct(ds, "F1__e01", templates["F1"])
    src_v = seqs[0][4]
    np.testing.assert_allclose(rec[::6][: len(src_v[::5])], src_v[::5][: len(rec[::6])], atol=2e-4)


def test_pca_fit_properties():
    rng = np.random.default_rng(0)
    modes = rng.standard_normal((3, 50, 3))
    offs = [np.einsum("tk,kvd->tvd", rng.standard_normal((200, 3)), modes)]
    res = vd.fit_pca(offs, components=10)
    assert len(res.basis) == 3                       # rank-limited: no junk components
    assert res.energy_kept == pytest.approx(1.0, abs=1e-9)
    c = vd.project(offs[0], res.basis)
    assert np.allclose(c.std(axis=0), 1.0, atol=0.2)  # coefficients come out ~unit scale
    res2 = vd.fit_pca(offs, components=1)
    assert 0.2 < res2.energy_kept < 1.0
    err = vd.reconstruction_error(offs, res2.basis)
    assert err["energy_kept"] == pytest.approx(res2.energy_kept, rel=1e-6) and err["mean_vertex_error"] > 0
    with pytest.raises(vd.VertexDataError, match="no variation"):
        vd.fit_pca([np.zeros((5, 4, 3))], 3)


def test_resample_motion_exact_and_held():
    x = np.arange(10, dtype=np.float32)[:, None] * 2.0
    out = vd.resample_motion(x, 60.0, 5, 30.0)
    np.testing.assert_allclose(out[:, 0], [0, 4, 8, 12, 16])
    out = vd.resample_motion(x, 25.0, 20, 30.0)
    assert out[-1, 0] == 18.0 and np.all(np.diff(out[:, 0]) >= 0)


def test_hostile_dataset_pickle_refused(tmp_path, small_seqs):
    seqs, templates = small_seqs
    src = write_vocaset(tmp_path / "v", seqs, templates)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (src / "templates.pkl").write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(vd.VertexDataError, match="templates.pkl: refusing to load"):
        vd.read_vocaset(src)
    assert not marker.exists()


def test_bad_layouts_have_clear_errors(tmp_path, small_seqs):
    with pytest.raises(vd.VertexDataError, match="no data_verts.npy"):
        vd.read_vocaset(tmp_path)
    with pytest.raises(vd.VertexDataError, match="vertices_npy/ and wav/"):
        vd.read_sequences(tmp_path, 25)
    seqs, templates = small_seqs
    src = write_vocaset(tmp_path / "v", seqs, templates)
    with open(src / "templates.pkl", "wb") as fh:
        pickle.dump({k: v[:-1] for k, v in templates.items()}, fh, protocol=2)
    with pytest.raises(vd.VertexDataError, match="59 vertices"):
        vd.read_vocaset(src)
    with open(src / "templates.pkl", "wb") as fh:
        pickle.dump(dict(list(templates.items())[:1]), fh, protocol=2)
    with pytest.raises(vd.VertexDataError, match="lacks subjects"):
        vd.read_vocaset(src)


def test_cli(tmp_path, small_seqs):
    seqs, templates = small_seqs
    src = write_sequences(tmp_path / "ff", seqs, templates)
    r = subprocess.run([sys.executable, "-m", "inference_core.data.datasets.vertex", "sequences", str(src),
                        str(tmp_path / "out"), "--components", "5", "--fps", "60"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["components"] == 5
    assert Dataset(tmp_path / "out").channels[0] == "SEQUENCES_pc000"
    r = subprocess.run([sys.executable, "-m", "inference_core.data.datasets.vertex", "vocaset", str(tmp_path),
                        str(tmp_path / "o2")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no data_verts.npy" in r.stderr
