"""Stage 5 of the real-speech build: the lip_metrics folders and the training dataset.

``metrics/<split>/NAME.wav`` + ``NAME.json`` (the lip_metrics.py format) for the splits asked
for, and ``dataset/`` (the :mod:`inference_core.data.format` layout, ARKit-52 motion from
:func:`inference_core.data.articulation.articulate` on the aligned phones). Resuming writes
only what is missing or changed: a file already there with the same content is never
rewritten (an utterance's files stay byte-identical across rebuilds that add other voices).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import sources as src
from .sources import SR

if TYPE_CHECKING:
    from .build import Kept

FPS = 30


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_outputs(kept: list[Kept], out: Path, seed: int, voice_info: dict[str, dict[str, Any]],
                  source_text: str, metrics_splits: tuple[str, ...], progress: bool) -> None:
    import soundfile as sf
    from tqdm import tqdm

    from ...shared.channels import ARKIT_52
    from ..articulation import articulate, style_for
    from ..format import DatasetWriter, Utterance, frames_for

    def meta_of(k: Kept) -> dict[str, Any]:
        v = k.vd.voice
        info = voice_info[v.key]
        return {"speaker": v.speaker, "language": v.language, "text": k.vd.texts[k.name],
                "alignment": k.aligner, "alignment_confidence": k.confidence,
                "licence": k.vd.licence["licence"], "attribution": k.vd.licence["attribution"],
                "sex": info["sex"], "sex_source": info["sex_source"], "split": k.split,
                "prompt": k.name, "group": k.group, "voice": v.key, "package": k.vd.package.name,
                "package_version": k.vd.package.version, **({"role": f"{v.role} fish"} if v.role else {})}

    metas = {k.uid: meta_of(k) for k in kept}
    docs = {k.uid: {"phones": [[a, b, c] for a, b, c in k.phones], **metas[k.uid]} for k in kept}
    digest = {uid: hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16] for uid, d in docs.items()}
    # forget what an earlier run wrote that is not exactly what would be written now (not kept,
    # another split, other phones or metadata): resuming never leaves a stale file behind
    manifest = out / "dataset" / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        old["utterances"] = [u for u in old.get("utterances", []) if digest.get(u["id"]) == u.get("content_sha1")]
        write_json(manifest, old)
        listed = {u["file"] for u in old["utterances"]}
        for f in sorted((out / "dataset").glob("*.npz")):
            if f.name not in listed:  # a dropped or renamed utterance's motion file
                f.unlink()
    for split in ("train", "tune", "val", "val_seen_text"):
        d = out / "metrics" / split
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            uid = f.stem
            if split not in metrics_splits or uid not in docs or docs[uid]["split"] != split \
                    or json.loads(f.read_text()) != docs[uid]:
                f.unlink()
        for f in sorted(d.iterdir()):
            if not f.with_name(f.name.split(".")[0] + ".json").exists():
                f.unlink()
    writer = DatasetWriter(out / "dataset", FPS, SR, list(ARKIT_52), source=source_text, resume=True)
    n_new = 0
    try:
        for k in tqdm(kept, desc="write", unit="utt", disable=not progress):
            v = k.vd.voice
            meta = metas[k.uid]
            mdir = out / "metrics" / k.split
            wav, js = mdir / f"{k.uid}.wav", mdir / f"{k.uid}.json"
            need_metrics = k.split in metrics_splits and not (wav.exists() and js.exists())
            if writer.has(k.uid) and not need_metrics:
                continue
            pcm = src.decode(k.vd.prompts[k.name])
            if need_metrics:
                mdir.mkdir(parents=True, exist_ok=True)
                tmp = wav.with_name(wav.stem + ".tmp.wav")
                sf.write(str(tmp), pcm, SR, subtype="PCM_16")
                tmp.replace(wav)
                write_json(js, docs[k.uid])
            if not writer.has(k.uid):
                audio = pcm.astype(np.float32) / 32768.0
                rng = np.random.default_rng([seed, zlib.crc32(k.uid.encode())])
                motion = articulate(k.phones, audio, SR, FPS, style_for(v.speaker, seed), rng)
                assert motion.shape[0] == frames_for(len(audio), SR, FPS)
                extra: dict[str, Any] = dict(meta, content_sha1=digest[k.uid])
                extra.update(phonemes=np.array([p[0] for p in k.phones]),
                             phonemes_start=np.array([p[1] for p in k.phones], np.float32),
                             phonemes_end=np.array([p[2] for p in k.phones], np.float32))
                writer.add(Utterance(k.uid, v.speaker, k.split, audio, motion, extra))
                n_new += 1
                if n_new % 50 == 0:
                    writer.close()
    finally:
        order = {k.uid: i for i, k in enumerate(kept)}
        writer.meta["utterances"].sort(key=lambda u: order.get(u["id"], len(order)))
        writer.close()
