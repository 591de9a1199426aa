"""Throwaway: blend the model's mouth towards the phone read-out's expected teacher pose; lip_metrics on a folder."""
import math, sys, json
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/main")
from inference_core.data.format import Dataset
from inference_core.model.checkpoint import read_card
from inference_core.model.config import config_from_card
from inference_core.model.network import StreamingTalker
from inference_core.training.data import PHONE_INDEX, TrainingData, prepared_mel, IGNORE
from inference_core.training.finetune import init_from
from inference_core.training.lipsync import report, model_weights, load_items
from inference_core.audio.torch_features import TorchLogMel
from inference_core.audio.io import load_file
from inference_core.shared.channels import ARKIT_52, MOUTH_CHANNELS
torch.set_num_threads(2)
model_path, probe_state, folder, out = sys.argv[1:5]
card = read_card(model_path); cfg = config_from_card(card)
model = StreamingTalker(cfg); speakers = list(card.get("styles") or ["generic"])[1:]
init_from(model, model_path, speakers); model.eval()
ro = torch.nn.Linear(cfg.model_dim, len(PHONE_INDEX)); ro.load_state_dict(torch.load(probe_state, weights_only=True)["read_out"])
# per-phone mean teacher pose on the training split
tab = Path("runs/ppg/table.npy")
if tab.exists():
    M = np.load(tab)
else:
    tr = TrainingData([Dataset("data/real_v1/dataset")], cfg, "train", speakers)
    acc = np.zeros((len(PHONE_INDEX), len(ARKIT_52))); cnt = np.zeros(len(PHONE_INDEX))
    for u in tr.utts:
        ph = u.phones.numpy(); mo = u.motion.numpy(); k = ph != IGNORE
        np.add.at(acc, ph[k], mo[k]); np.add.at(cnt, ph[k], 1)
    M = acc / np.maximum(cnt, 1)[:, None]; np.save(tab, M)
mel_fn = TorchLogMel(cfg.sample_rate, cfg.hop, cfg.win_length, cfg.n_fft, cfg.n_mels)
ctx_steps = math.ceil(cfg.context_frames / cfg.chunk_frames); lead_steps = math.ceil(cfg.left_context_mel / cfg.step_mels)
pad_steps = ctx_steps + lead_steps; tail_steps = math.ceil(cfg.lookahead_mel / cfg.step_mels) + 1
first_ok = lead_steps; lead = cfg.left_context_mel + max(0, cfg.feature_norm_frames - 1)
rng = np.random.default_rng(0)
def ppg(audio, T):
    a = torch.from_numpy(np.concatenate([np.zeros(pad_steps * cfg.step_samples, np.float32), audio, np.zeros(tail_steps * cfg.step_samples, np.float32)]))
    with torch.no_grad(): mel = mel_fn(a, a.numel() // cfg.hop)
    steps = pad_steps + math.ceil(T / cfg.chunk_frames)
    m0, m1 = first_ok * cfg.step_mels - lead, steps * cfg.step_mels + cfg.lookahead_mel
    w = mel[max(m0, 0):m1]
    if m0 < 0: w = torch.cat([mel[:1].expand(-m0, -1), w])
    if w.shape[0] < m1 - m0: w = torch.cat([w, w.new_full((m1 - m0 - w.shape[0], w.shape[1]), float(mel[0, 0]))])
    with torch.no_grad():
        P = torch.softmax(ro(model.audio(prepared_mel(w[None], rng, cfg, 0.0)))[0], -1).numpy()
    off = pad_steps * cfg.chunk_frames - first_ok * cfg.chunk_frames
    return P[off: off + T]
base = model_weights(model_path, threads=2)
cache = {}
def base_cached(audio, meta):
    key = id(audio)
    if key not in cache:
        w, t0 = base(audio, meta); cache[key] = (w, t0, ppg(audio, w.shape[0]))
    return cache[key]
idx = {n: i for i, n in enumerate(ARKIT_52)}
mouth = [idx[c] for c in MOUTH_CHANNELS if c in idx]
def blend(chans, alpha):
    def fn(audio, meta):
        w, t0, P = base_cached(audio, meta)
        V = P @ M; w = w.copy()
        w[:, chans] = (1 - alpha) * w[:, chans] + alpha * V[:, chans]
        return w, t0
    return fn
def blend2(chans, alpha, gain=1.0, sec=1.0):
    def fn(audio, meta):
        w, t0, P = base_cached(audio, meta)
        V = P @ M; w = w.copy()
        if gain != 1.0:
            d = math.exp(-1.0 / (30 * sec)); m = V[0].copy(); out = np.empty_like(V)
            for f in range(len(V)):
                m = d * m + (1 - d) * V[f]; out[f] = m + gain * (V[f] - m)
            V = np.clip(out, 0, 1)
        w[:, chans] = np.clip((1 - alpha) * w[:, chans] + alpha * V[:, chans], 0, 1)
        return w, t0
    return fn
lips = [idx[c] for c in ("mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight")]
print([ARKIT_52[i] for i in mouth])
keep = {"mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper", "mouthFunnel", "mouthPucker"}
opn = [idx[c] for c in MOUTH_CHANNELS if c in idx and c not in keep]
noround = [idx[c] for c in MOUTH_CHANNELS if c in idx and c not in ("mouthFunnel", "mouthPucker")]
keep = {"mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper", "mouthFunnel", "mouthPucker"}
opn = [idx[c] for c in MOUTH_CHANNELS if c in idx and c not in keep]
nojaw = [i for i in opn if ARKIT_52[i] != "jawOpen"]
preds = {"model": lambda a, m: base_cached(a, m)[:2]}
preds["nojaw0.5g3"] = blend2(nojaw, 0.5, 3.0)
preds["nojaw1.0g3"] = blend2(nojaw, 1.0, 3.0)
preds["open0.3g3"] = blend2(opn, 0.3, 3.0)
preds["open0.5g4"] = blend2(opn, 0.5, 4.0)
rep = report(folder, preds, pooled_only=True)
Path(out).write_text(json.dumps(rep, indent=1))
for k, v in rep["predictors"].items():
        a = v["all"]; print(k, {f: a.get(f) for f in ("bilabial_closure_rate", "open_vowel_gap_ratio", "gap_openness_corr_speech", "rounding_ratio", "open_vowel_closed_frac")})
