"""Throwaway: a per-frame linear (ridge) map from the model's audio features to the teacher's mouth, fitted on the
real training split; scored on a lip_metrics folder with the model's upper face."""
import math, sys, json
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/main/scripts")
from inference_core.data.format import Dataset
from inference_core.model.checkpoint import load_checkpoint
from inference_core.training.data import TrainingData, prepared_mel
from inference_core.training.lipsync import report, model_weights
from inference_core.shared.channels import ARKIT_52, MOUTH_CHANNELS
torch.set_num_threads(1)
model_path, folder, out = sys.argv[1:4]
lam = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
model, card, _ = load_checkpoint(model_path); cfg = model.cfg
speakers = list(card.get("styles") or ["generic"])[1:]
lead_steps = math.ceil(cfg.left_context_mel / cfg.step_mels)
history = cfg.left_context_mel + max(0, cfg.feature_norm_frames - 1)
rng = np.random.default_rng(0)
def feats_of(u):
    s0, s1 = lead_steps, u.steps
    m0, m1 = s0 * cfg.step_mels - history, s1 * cfg.step_mels + cfg.lookahead_mel
    mel = u.mel[max(m0, 0):m1].float()
    if m0 < 0: mel = torch.cat([u.mel[:1].float().expand(-m0, -1), mel])
    if mel.shape[0] < m1 - m0: mel = torch.cat([mel, mel.new_full((m1 - m0 - mel.shape[0], mel.shape[1]), float(u.mel[0, 0]))])
    with torch.no_grad(): f = model.audio(prepared_mel(mel[None], rng, cfg, 0.0))[0].numpy()
    return f, u.motion[s0 * cfg.chunk_frames: s1 * cfg.chunk_frames].numpy()
cachef = Path(f"runs/ppg/ridge_{Path(model_path).stem}.npz")
if cachef.exists():
    d = np.load(cachef); X, Y = d["X"], d["Y"]
else:
    tr = TrainingData([Dataset("data/real_v1/dataset")], cfg, "train", speakers)
    Xs, Ys = [], []
    for u in tr.utts:
        f, m = feats_of(u); n = min(len(f), len(m)); Xs.append(f[:n]); Ys.append(m[:n])
    X, Y = np.concatenate(Xs), np.concatenate(Ys); np.savez(cachef, X=X, Y=Y)
print("frames", X.shape)
idx = {n: i for i, n in enumerate(ARKIT_52)}
mouth = [idx[c] for c in MOUTH_CHANNELS if c in idx]
Xb = np.concatenate([X, np.ones((len(X), 1))], 1).astype(np.float64)
A = Xb.T @ Xb + lam * len(X) / 1000 * np.eye(Xb.shape[1]); W = np.linalg.solve(A, Xb.T @ Y[:, mouth].astype(np.float64))
import readout_openness as ro
feat_fn = ro.model_features(model_path)
base = model_weights(model_path, threads=1)
cache = {}
def get(audio, meta):
    k = id(audio)
    if k not in cache:
        w, t0 = base(audio, meta); f = feat_fn(audio, w.shape[0])
        cache[k] = (w, t0, np.concatenate([f, np.ones((len(f), 1))], 1) @ W)
    return cache[k]
def blend(alpha):
    def fn(audio, meta):
        w, t0, R = get(audio, meta); w = w.copy()
        w[:, mouth] = np.clip((1 - alpha) * w[:, mouth] + alpha * R, 0, 1)
        return w, t0
    return fn
preds = {"model": lambda a, m: get(a, m)[:2], "ridge": blend(1.0), "ridge0.5": blend(0.5)}
rep = report(folder, preds, pooled_only=True)
Path(out).write_text(json.dumps(rep, indent=1))
for k, v in rep["predictors"].items():
    a = v["all"]; print(k, {f: a.get(f) for f in ("bilabial_closure_rate", "open_vowel_gap_ratio", "gap_openness_corr_speech", "rounding_ratio", "open_vowel_closed_frac")})
