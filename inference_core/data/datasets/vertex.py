"""VOCASET / BIWI vertex data → the project's dataset format, in a PCA motion space.

Vertex-space models predict K coefficients per frame; the per-vertex offsets from the
speaker's template are ``coefficients @ basis``. The basis is an *uncentred* PCA of the
training offsets (offsets are ~0 at rest, so no mean term is needed and a coefficient
vector of zeros is the neutral face — what a shape key at 0 means in Blender), with each
component scaled by its coefficient standard deviation so coefficients are ~unit scale.

Layouts read (their pickles are untrusted input and go through the FLAME loader's
restricted unpickler; ``.npy`` files are read with ``allow_pickle=False``):

* VOCASET release: ``data_verts.npy`` (N, 5023, 3) at 60 fps, ``raw_audio_fixed.pkl``
  {subject: {sentence: {"audio", "sample_rate"}}}, ``subj_seq_to_idx.pkl``
  {subject: {sentence: {frame: row of data_verts}}}, ``templates.pkl`` {subject: (5023, 3)}.
* Per-sequence layout (BIWI as commonly preprocessed, FaceFormer-style VOCASET):
  ``vertices_npy/<subject>_<sentence>.npy`` (T, V*3), ``wav/<same>.wav``, ``templates.pkl``;
  25 fps for BIWI, 30 for the VOCASET variant.

Command line: ``python -m inference_core.data.datasets.vertex vocaset SRC OUT`` (or ``sequences``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...flame.loader import FlameFileError, restricted_loads
from ..format import DatasetError, DatasetWriter, Utterance, frames_for

SAMPLE_RATE = 16000
FPS = 30


class VertexDataError(DatasetError):
    """The source folder does not have the expected layout or content."""


@dataclass
class Sequence:
    speaker: str
    name: str
    audio: np.ndarray        # float32 mono at ``sample_rate``
    sample_rate: int
    verts: np.ndarray        # (T, V, 3) at ``fps``
    fps: float


def load_pickle(path: Path) -> Any:
    """A dataset pickle through the restricted unpickler (arrays and containers only)."""
    if not path.exists():
        raise VertexDataError(f"missing {path.name} in {path.parent}")
    try:
        return restricted_loads(path.read_bytes())
    except FlameFileError as exc:
        raise VertexDataError(f"{path.name}: {exc}") from None


def _as_array(x: Any, what: str) -> np.ndarray:
    from ...flame.loader import to_array
    try:
        arr = np.asarray(to_array(x, what))
    except FlameFileError as exc:
        raise VertexDataError(str(exc)) from None
    if arr.dtype.hasobject or not np.issubdtype(arr.dtype, np.number):
        raise VertexDataError(f"{what} is not numeric data")
    return arr


def _audio_float(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a.mean(axis=1) if a.shape[1] <= 8 else a.mean(axis=0)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    return a.astype(np.float32)


def resample_audio(audio: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if sr == target:
        return audio.astype(np.float32)
    from math import gcd

    from scipy.signal import resample_poly
    g = gcd(int(sr), int(target))
    return resample_poly(audio, target // g, int(sr) // g).astype(np.float32)


def resample_motion(x: np.ndarray, src_fps: float, n_out: int, dst_fps: float = FPS) -> np.ndarray:
    """Linear interpolation of (T, ...) frames to ``n_out`` frames at ``dst_fps`` (holds the ends)."""
    t_src = np.arange(len(x)) / src_fps
    t_dst = np.arange(n_out) / dst_fps
    flat = x.reshape(len(x), -1)
    idx = np.clip(np.searchsorted(t_src, t_dst, side="right") - 1, 0, len(x) - 1)
    nxt = np.minimum(idx + 1, len(x) - 1)
    span = np.where(nxt > idx, t_src[nxt] - t_src[idx], 1.0)
    w = np.clip((t_dst - t_src[idx]) / span, 0.0, 1.0)[:, None]
    out = flat[idx] * (1 - w) + flat[nxt] * w
    return out.reshape((n_out,) + x.shape[1:]).astype(np.float32)


# -- readers -----------------------------------------------------------------------------
def read_vocaset(root: str | Path, src_fps: float = 60.0) -> tuple[Iterator[Sequence], dict[str, np.ndarray]]:
    """The VOCASET release layout; returns (sequences, templates)."""
    root = Path(root)
    vpath = root / "data_verts.npy"
    if not vpath.exists():
        raise VertexDataError(f"{root} has no data_verts.npy: not a VOCASET folder")
    try:
        verts = np.load(vpath, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise VertexDataError(f"data_verts.npy is not a plain numeric array ({exc})") from None
    if verts.ndim != 3 or verts.shape[2] != 3:
        raise VertexDataError(f"data_verts.npy has shape {verts.shape}, expected (frames, V, 3)")
    audio = load_pickle(root / "raw_audio_fixed.pkl")
    index = load_pickle(root / "subj_seq_to_idx.pkl")
    templates = {str(k): _as_array(v, f"template {k}").reshape(-1, 3).astype(np.float64)
                 for k, v in load_pickle(root / "templates.pkl").items()}
    for name, tpl in templates.items():
        if tpl.shape[0] != verts.shape[1]:
            raise VertexDataError(f"template {name} has {tpl.shape[0]} vertices, data_verts.npy {verts.shape[1]}")

    def gen() -> Iterator[Sequence]:
        for subj in sorted(index):
            for seq in sorted(index[subj]):
                frames = index[subj][seq]
                if subj not in audio or seq not in audio[subj]:
                    continue  # VOCASET has a few sequences without audio
                rows = np.array([frames[k] for k in sorted(frames)], np.int64)
                if rows.min() < 0 or rows.max() >= len(verts):
                    raise VertexDataError(f"{subj}/{seq}: frame index out of range of data_verts.npy")
                a = audio[subj][seq]
                pcm = _as_array(a["audio"], f"{subj}/{seq} audio")
                yield Sequence(str(subj), str(seq), _audio_float(pcm), int(a["sample_rate"]),
                               np.asarray(verts[rows], np.float32), src_fps)

    missing = sorted(set(map(str, index)) - set(templates))
    if missing:
        raise VertexDataError(f"templates.pkl lacks subjects {missing[:3]}")
    return gen(), templates


def read_sequences(root: str | Path, src_fps: float) -> tuple[Iterator[Sequence], dict[str, np.ndarray]]:
    """Per-sequence layout: vertices_npy/*.npy (T, V*3), wav/*.wav, templates.pkl."""
    import soundfile as sf

    root = Path(root)
    vdir, wdir = root / "vertices_npy", root / "wav"
    if not vdir.is_dir() or not wdir.is_dir():
        raise VertexDataError(f"{root} needs vertices_npy/ and wav/ folders (BIWI/FaceFormer layout)")
    templates = {str(k): _as_array(v, f"template {k}").reshape(-1, 3).astype(np.float64)
                 for k, v in load_pickle(root / "templates.pkl").items()}
    files = sorted(vdir.glob("*.npy"))
    if not files:
        raise VertexDataError(f"{vdir} has no .npy files")

    def gen() -> Iterator[Sequence]:
        for f in files:
            speaker = f.stem.rsplit("_", 1)[0]  # "F1_e01" → F1; "FaceTalk_170728_03272_TA_sentence01" → FaceTalk_…_TA
            wav = wdir / (f.stem + ".wav")
            if not wav.exists() or speaker not in templates:
                continue
            v = templates[speaker].shape[0]
            try:
                arr = np.load(f, allow_pickle=False)
            except ValueError as exc:
                raise VertexDataError(f"{f.name} is not a plain numeric array ({exc})") from None
            if arr.size % (v * 3) or arr.ndim not in (2, 3):
                raise VertexDataError(f"{f.name} has shape {arr.shape}; its template has {v} vertices")
            pcm, sr = sf.read(str(wav), dtype="float32", always_2d=True)
            yield Sequence(speaker, f.stem[len(speaker) + 1:] or f.stem, pcm.mean(axis=1), int(sr),
                           arr.reshape(len(arr), v, 3).astype(np.float32), src_fps)

    return gen(), templates


# -- PCA -----------------------------------------------------------------------------------
@dataclass
class PCAResult:
    basis: np.ndarray            # (K, V, 3), component k scaled by its coefficient std
    energy_kept: float           # fraction of the training offsets' energy (uncentred variance)
    singular_std: np.ndarray     # (K,) std of each coefficient before scaling


def fit_pca(offsets: list[np.ndarray], components: int, max_frames: int | None = None,
            seed: int = 0) -> PCAResult:
    """Uncentred PCA of (T, V, 3) offset arrays via the frames' Gram matrix (frames ≪ 3V)."""
    allf = np.concatenate([o.reshape(len(o), -1) for o in offsets]).astype(np.float32)
    n, d = allf.shape
    if max_frames is None:
        max_frames = int(min(4000, max(500, 2.5e8 / (d * 4))))
    rng = np.random.default_rng(seed)
    x = allf if n <= max_frames else allf[np.sort(rng.choice(n, max_frames, replace=False))]
    gram = x.astype(np.float64) @ x.T.astype(np.float64)
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    k = int(min(components, int((evals > evals[0] * 1e-12).sum()) if evals[0] > 0 else 0))
    if k == 0:
        raise VertexDataError("the training motion has no variation (all offsets are zero)")
    sv = np.sqrt(evals[:k])
    dirs = (x.T.astype(np.float64) @ evecs[:, :k]) / sv          # (d, k) orthonormal columns
    total = float((allf.astype(np.float64) ** 2).sum())
    coeffs = allf.astype(np.float64) @ dirs                     # exact projection of all frames
    kept = float((coeffs ** 2).sum() / total) if total > 0 else 1.0
    std = np.sqrt((coeffs ** 2).mean(axis=0))
    std = np.where(std > 0, std, 1.0)
    basis = (dirs * std).T.reshape(k, -1, 3).astype(np.float32)
    return PCAResult(basis, kept, std)


def project(offsets: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (T, K) for offsets (T, V, 3) in a (scaled-orthogonal) basis."""
    b = basis.reshape(len(basis), -1).astype(np.float64)
    gram = b @ b.T
    return np.linalg.solve(gram, b @ offsets.reshape(len(offsets), -1).T.astype(np.float64)).T.astype(np.float32)


def reconstruction_error(offsets: list[np.ndarray], basis: np.ndarray) -> dict[str, float]:
    """Per-vertex reconstruction error (mean, max) in the data's units, and energy kept."""
    num = den = 0.0
    errs: list[float] = []
    mx = 0.0
    for o in offsets:
        c = project(o, basis)
        rec = np.einsum("tk,kvd->tvd", c, basis)
        e = np.linalg.norm(rec - o, axis=-1)
        errs.append(float(e.mean()) * e.size)
        mx = max(mx, float(e.max()) if e.size else 0.0)
        num += float(((rec - o) ** 2).sum())
        den += float((o.astype(np.float64) ** 2).sum())
    count = sum(o.shape[0] * o.shape[1] for o in offsets)
    return {"mean_vertex_error": sum(errs) / max(count, 1), "max_vertex_error": mx,
            "energy_kept": 1.0 - num / den if den > 0 else 1.0}


# -- conversion ----------------------------------------------------------------------------
def _default_val(speakers: list[str], val_fraction: float = 0.2) -> list[str]:
    if len(speakers) < 2:
        return []
    n = max(1, int(round(len(speakers) * val_fraction)))
    return speakers[-n:]


def convert(seqs: Iterator[Sequence], templates: dict[str, np.ndarray], out: str | Path,
            components: int = 50, val_speakers: list[str] | None = None, prefix: str = "vtx",
            source: str = "", sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> dict[str, Any]:
    """Resample, cut to matching length, fit the PCA on training speakers, write the dataset."""
    items: list[tuple[Sequence, np.ndarray, np.ndarray]] = []
    for s in seqs:
        if s.speaker not in templates:
            raise VertexDataError(f"no template for speaker {s.speaker}")
        tpl = templates[s.speaker]
        if s.verts.shape[1:] != tpl.shape:
            raise VertexDataError(f"{s.speaker}/{s.name}: {s.verts.shape[1]} vertices, template {tpl.shape[0]}")
        audio = resample_audio(s.audio, s.sample_rate, sample_rate)
        seconds = min(len(audio) / sample_rate, len(s.verts) / s.fps)
        audio = audio[: int(seconds * sample_rate)]
        peak = float(np.abs(audio).max()) if len(audio) else 0.0
        if peak > 1.0:
            audio = audio / peak
        n = frames_for(len(audio), sample_rate, fps)
        if n < 2:
            continue
        verts = resample_motion(s.verts, s.fps, n, fps)
        items.append((s, audio, (verts - tpl[None]).astype(np.float32)))
    if not items:
        raise VertexDataError("no usable sequences (each needs audio, vertices and a template)")
    speakers = sorted({s.speaker for s, _, _ in items})
    val = set(_default_val(speakers) if val_speakers is None else val_speakers)
    train_off = [o for s, _, o in items if s.speaker not in val]
    if not train_off:
        raise VertexDataError("every speaker is held out for validation; nothing to train on")
    pca = fit_pca(train_off, components)
    k = len(pca.basis)
    channels = [f"{prefix}_pc{i:03d}" for i in range(k)]
    train_err = reconstruction_error(train_off, pca.basis)
    val_off = [o for s, _, o in items if s.speaker in val]
    val_err = reconstruction_error(val_off, pca.basis) if val_off else None
    w = DatasetWriter(out, fps, sample_rate, channels, channel_space="vertex", resume=False,
                      source=source or f"vertex data converted to {k} PCA components")
    template = np.mean([templates[s] for s in speakers if s not in val] or list(templates.values()), axis=0)
    w.set_basis(pca.basis, template)
    for s, audio, off in items:
        split = "val" if s.speaker in val else "train"
        w.add(Utterance(f"{s.speaker}__{s.name}", s.speaker, split, audio, project(off, pca.basis)))
    report = {"components": k, "vertices": int(pca.basis.shape[1]),
              "energy_kept_train": pca.energy_kept, "train": train_err, "val": val_err,
              "speakers_train": [x for x in speakers if x not in val], "speakers_val": sorted(val),
              "utterances": len(items)}
    w.meta["pca"] = report
    w.close()
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m inference_core.data.datasets.vertex",
                                description="convert VOCASET/BIWI vertex data to a StreamingTalker dataset")
    p.add_argument("layout", choices=["vocaset", "sequences", "biwi"])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--components", type=int, default=50)
    p.add_argument("--fps", type=float, default=None, help="source fps (vocaset 60, biwi 25, sequences 30)")
    p.add_argument("--val-speakers", default=None, help="comma-separated held-out speakers")
    p.add_argument("--prefix", default=None, help="channel name prefix (default: the layout)")
    a = p.parse_args(argv)
    try:
        if a.layout == "vocaset":
            seqs, tpl = read_vocaset(a.src, a.fps or 60.0)
        else:
            seqs, tpl = read_sequences(a.src, a.fps or (25.0 if a.layout == "biwi" else 30.0))
        val = a.val_speakers.split(",") if a.val_speakers else None
        report = convert(seqs, tpl, a.out, a.components, val, a.prefix or a.layout.upper(),
                         source=f"{a.layout} layout from {Path(a.src).name}")
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
