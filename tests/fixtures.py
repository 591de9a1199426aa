"""Small real inputs the tests build on the fly (no mocks: real files, real models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference_core.shared.channels import ARKIT_52
from inference_core.data.format import DatasetWriter, Utterance, frames_for

SR = 16000
FPS = 30


def syllable_audio(seconds: float, seed: int, rate_hz: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Voiced-noise 'syllables' and the matching jaw-opening envelope at 30 fps.

    A learnable toy relation (louder → jaw more open) for training smoke tests.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    phase = rng.uniform(0, 2 * np.pi)
    env = np.clip(np.sin(2 * np.pi * rate_hz * t / 2 + phase), 0, None) ** 2
    f0 = rng.uniform(100, 220)
    voiced = np.sign(np.sin(2 * np.pi * f0 * t)) * 0.3 + rng.standard_normal(n) * 0.05
    audio = (voiced * env * 0.5).astype(np.float32)
    T = frames_for(n, SR, FPS)
    env_f = np.interp((np.arange(T) + 0.5) / FPS, t, env)
    motion = np.zeros((T, len(ARKIT_52)), np.float32)
    motion[:, ARKIT_52.index("jawOpen")] = 0.6 * env_f
    motion[:, ARKIT_52.index("mouthClose")] = 0.3 * (1 - env_f)
    return audio, motion


def make_toy_dataset(root: Path, n_train: int = 6, n_val: int = 2, seconds: float = 4.0) -> Path:
    w = DatasetWriter(root, FPS, SR, list(ARKIT_52), source="toy syllables (tests)")
    for i in range(n_train + n_val):
        audio, motion = syllable_audio(seconds, seed=i)
        split = "train" if i < n_train else "val"
        w.add(Utterance(f"u{i:03d}", f"spk{i % 3 if split == 'train' else 9}", split, audio, motion))
    w.close()
    return root


def write_wav(path: Path, audio: np.ndarray, sr: int = SR, subtype: str | None = None) -> Path:
    import soundfile as sf

    sf.write(str(path), audio, sr, subtype=subtype)
    return path


#: two short English lines full of /p b m/ and rounded and open vowels, in two espeak-ng voices
LIPSYNC_LINES = (("a", "Bob made a map of the bay at noon.", "en-us+m3"),
                 ("b", "Pam bought more apples today.", "en-us+f2"))


def write_lipsync_folder(folder: Path, lines=LIPSYNC_LINES) -> Path:
    """A lip_metrics folder (NAME.wav + NAME.json with espeak-ng's own phone timings) of ``lines``
    ((name, text, voice), ...): real-format recordings for the scoring scripts' tests."""
    import json

    import soundfile as sf

    from inference_core.data.corpus.tts import speak_espeak

    folder.mkdir(parents=True, exist_ok=True)
    for name, text, voice in lines:
        sp = speak_espeak(voice, text, 160, 50, 50)
        sf.write(folder / f"{name}.wav", sp.audio, 16000, subtype="PCM_16")
        (folder / f"{name}.json").write_text(json.dumps({"phones": [list(p) for p in sp.phones], "speaker": voice}))
    return folder


def onnx_and_torch_streams(path: Path, seconds: float = 2.0) -> dict[str, np.ndarray]:
    """A model file's frames for the same toy audio, pushed in odd-sized pieces, from its exported
    ONNX graphs (fp32) and from torch: what a new part of the network must keep equal."""
    from inference_core.model.onnx_export import export_onnx
    from inference_core.runtime.bundle import load_bundle
    from inference_core.runtime.session import SessionOptions, StreamingSession

    export_onnx(path)
    audio = syllable_audio(seconds, seed=4)[0].astype(np.float32)
    out = {}
    for backend in ("onnx-fp32", "torch"):
        bundle = load_bundle(path, backend=backend)
        session = StreamingSession(bundle, SessionOptions.resolve(bundle.card, {"seed": 1, "temperature": 0.5}))
        frames = [session.push(audio[i:i + 2777]) for i in range(0, audio.size, 2777)] + [session.flush()]
        out[backend] = np.concatenate(frames)
    return out


def without_tensors(path: Path, marker: str, out: Path) -> Path:
    """A copy of a model file, card kept, without the tensors whose names contain ``marker``."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_file({k: v for k, v in load_file(str(path)).items() if marker not in k}, str(out), metadata=meta)
    return out
