"""The two runtimes: ONNX Runtime (numpy only) and torch must compute the same motion.

Features, one step of each network, and a whole streamed file are compared; the
torch-free path is run with torch made unimportable; a damaged, missing or
foreign export is refused and ``auto`` falls back to torch; every tensor of the
torch runtime follows the model's device.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import syllable_audio, write_wav
from inference_core.audio.features import LogMel
from inference_core.audio.torch_features import TorchLogMel
from inference_core.model.onnx_export import export_onnx
from inference_core.runtime.bundle import BackendUnavailable, load_bundle
from inference_core.runtime.onnx_backend import GRAPHS, graph_path, manifest_path
from inference_core.runtime.session import SessionOptions, StreamingSession

ROOT = Path(__file__).resolve().parents[1]

#: Makes ``import torch`` (and anything below it) fail in the child, as in Blender's Python.
BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, random_model) -> Path:
    """A copy of the random test model with its ONNX export beside it."""
    d = tmp_path_factory.mktemp("onnx")
    manifest = export_onnx(random_model, d)
    assert manifest == manifest_path(d / random_model.name)
    return d / random_model.name


def _stream(bundle, audio, sizes, **opts):
    s = StreamingSession(bundle, SessionOptions.resolve(bundle.card, opts))
    out, i, k = [], 0, 0
    while i < audio.size:
        n = sizes[k % len(sizes)]
        out.append(s.push(audio[i:i + n]))
        i, k = i + n, k + 1
    out.append(s.flush())
    return np.concatenate(out)


def test_numpy_log_mel_matches_torch_features():
    audio = syllable_audio(2.0, seed=3)[0].astype(np.float32)
    n = audio.size // 160
    ref = TorchLogMel()(torch.from_numpy(audio), n).numpy()
    got = LogMel()(audio, 0, n)
    assert got.shape == ref.shape == (n, 80)
    assert np.abs(got - ref).max() < 1e-4
    # a stream read frame range by frame range gives the same frames
    parts = [LogMel()(audio[max(0, k * 160 - 400):], k, 7, max(0, k * 160 - 400)) for k in range(0, n - 7, 7)]
    np.testing.assert_allclose(np.concatenate(parts), got[: len(parts) * 7], atol=1e-6)


def test_export_references_the_checkpoint_and_matches_torch(exported):
    import onnx

    manifest = json.loads(manifest_path(exported).read_text())
    assert set(manifest["files"]) == {*GRAPHS, "head_int8"}
    for key in GRAPHS:
        assert manifest["files"][key]["weights_in_checkpoint"] > 0, key
        # structure only: the weights are read from the checkpoint, not copied
        assert graph_path(exported, key).stat().st_size < exported.stat().st_size / 4
    # the int8 head carries its own weights, int8, a quarter of the float head's 8.7 MB
    int8 = onnx.load(str(graph_path(exported, "head_int8")))
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {n.op_type for n in int8.graph.node}
    assert sum(i.data_type == onnx.TensorProto.INT8 for i in int8.graph.initializer) >= 4
    assert 1.5e6 < graph_path(exported, "head_int8").stat().st_size < 3.5e6
    # each network against the torch module (the head: head_mod then head, against model.head)
    diffs = manifest["max_abs_diff_vs_torch"]
    assert set(diffs) == {"audio", "condition", "head", "head_int8", "head_int8_relative"}, diffs
    assert max(diffs[k] for k in ("audio", "condition", "head")) < 1e-4, diffs
    assert 1e-4 < diffs["head_int8_relative"] < 0.05, diffs  # an approximation, and a close one
    r = subprocess.run([sys.executable, "-m", "inference_core", "info", str(exported), "--verify"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    verified = json.loads(r.stdout)["verified"]
    assert verified["onnx"]["max_abs_diff_stream"] < 1e-3
    assert verified["onnx"]["head_precision"] == "int8"


def test_backends_agree_on_one_step(exported):
    onnx_b, torch_b = load_bundle(exported, backend="onnx-fp32"), load_bundle(exported, backend="torch")
    assert (onnx_b.backend.name, torch_b.backend.name) == ("onnx", "torch")
    assert (onnx_b.backend.head_precision, torch_b.backend.head_precision) == ("fp32", "fp32")
    cfg = onnx_b.cfg
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((1, cfg.context_frames + cfg.chunk_frames, cfg.model_dim)).astype(np.float32)
    past = rng.standard_normal((1, cfg.context_frames, cfg.num_channels)).astype(np.float32)
    x = rng.standard_normal((1, cfg.chunk_frames * cfg.num_channels)).astype(np.float32)
    for a, b in ((onnx_b.backend, torch_b.backend),):
        # the audio encoder from the silence floor on, step by step (ONNX: streamed; torch: whole windows)
        floor = LogMel().floor_frame()
        (state_a, silence_a), (state_b, silence_b) = a.audio_stream_start(floor), b.audio_stream_start(floor)
        np.testing.assert_allclose(silence_a, silence_b, atol=1e-4)
        for step in range(8):
            new = rng.standard_normal((cfg.step_mels + (cfg.lookahead_mel if step == 0 else 0), cfg.n_mels))
            feat_a, state_a = a.audio_stream(new.astype(np.float32), state_a)
            feat_b, state_b = b.audio_stream(new.astype(np.float32), state_b)
            assert feat_a.shape == feat_b.shape == (cfg.chunk_frames, cfg.model_dim)
            np.testing.assert_allclose(feat_a, feat_b, atol=1e-4)
        np.testing.assert_allclose(a.style_vector(1), b.style_vector(1), atol=1e-6)
        for keep in (1.0, 0.0):
            c_a = a.condition(audio, past, a.style_vector(1), keep)
            np.testing.assert_allclose(c_a, b.condition(audio, past, b.style_vector(1), keep), atol=1e-4)
        np.testing.assert_allclose(a.head(x, 0.6, c_a), b.head(x, 0.6, c_a), atol=1e-4)
        # the head prepared for a step's DDIM times (ONNX: one head_mod call for all of them), and a
        # time it was not prepared for
        times = [0.995, 0.6633, 0.3317]
        den_a, den_b = a.denoiser(c_a, times), b.denoiser(c_a, times)
        for t in times + [0.5]:
            np.testing.assert_allclose(den_a(x, t), b.head(x, t, c_a), atol=1e-4)
            np.testing.assert_allclose(den_b(x, t), b.head(x, t, c_a), atol=0)
        # a guided step's pair in one batch (with audio, then null audio) is the rows one by one
        pair = (np.concatenate([audio, audio]), np.concatenate([past, past]))
        for be in (a, b):
            rows = [be.condition(audio, past, be.style_vector(1), keep) for keep in (1.0, 0.0)]
            c2 = be.condition(*pair, np.concatenate([be.style_vector(1)] * 2), np.array([1.0, 0.0], np.float32))
            np.testing.assert_allclose(c2, np.concatenate(rows), atol=1e-5)
            assert np.abs(c2[0] - c2[1]).max() > 1e-3  # the rows differ: keep really is per row
            den2 = be.denoiser(c2, times)
            x2 = np.concatenate([x, x * 0.5])
            for t in times + [0.5]:
                np.testing.assert_allclose(den2(x2, t), np.concatenate([be.head(x2[i:i + 1], t, c2[i:i + 1])
                                                                        for i in range(2)]), atol=1e-5)


def test_int8_head_is_close_and_runs_each_row_alone_at_its_own_times(exported):
    """The int8 head: within a few % of the float head, one call per row (a row's result never
    depends on the other rows), and a row the sampler does not read at a time is not computed."""
    int8, fp32 = load_bundle(exported, backend="onnx").backend, load_bundle(exported, backend="onnx-fp32").backend
    assert (int8.head_precision, fp32.head_precision) == ("int8", "fp32")
    assert load_bundle(exported).backend.head_precision == "int8"          # auto on a CPU
    cfg = int8.cfg
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((2, cfg.context_frames + cfg.chunk_frames, cfg.model_dim)).astype(np.float32)
    past = rng.standard_normal((2, cfg.context_frames, cfg.num_channels)).astype(np.float32)
    cond = fp32.condition(audio, past, np.repeat(fp32.style_vector(0), 2, 0), 1.0)
    x = rng.standard_normal((2, cfg.chunk_frames * cfg.num_channels)).astype(np.float32) * [[1.0], [5.0]]
    times = [1.0, 0.75, 0.5, 0.25]
    ref, den = fp32.denoiser(cond, times), int8.denoiser(cond, times)
    scale = np.abs(ref(x, 0.5)).max()
    for t in times:
        err = np.abs(den(x, t) - ref(x, t)).max() / scale
        assert 1e-5 < err < 0.05, (t, err)
        # row 0 alone gives row 0 exactly (row 1's larger values do not coarsen its quantisation)
        np.testing.assert_array_equal(den(x, t)[:1], int8.denoiser(cond[:1], times)(x[:1], t))
    # rows read at some times only: the others are skipped (returned as they came)
    rows = int8.denoiser(cond, times, row_times=[{1.0, 0.5}, set(times)])
    for t in times:
        got = rows(x, t)
        np.testing.assert_array_equal(got[1], den(x, t)[1])
        np.testing.assert_array_equal(got[0], den(x, t)[0] if t in (1.0, 0.5) else x[0])


def test_int8_mouth_is_the_same_whatever_the_upper_face_does(exported):
    """The mouth's row gets its own int8 calls, so the upper face's temperature and steps leave
    the lips exactly as they are (as on the float runtimes)."""
    from inference_core.shared.channels import MOUTH_CHANNELS

    bundle = load_bundle(exported, backend="onnx")
    mouth = np.array([c in MOUTH_CHANNELS for c in bundle.channels])
    audio = syllable_audio(3.0, seed=2)[0].astype(np.float32)
    opts = {"seed": 1, "temperature": 0.5, "steps": 2}
    a = _stream(bundle, audio, [audio.size], temperature_upper=1.0, **opts)
    b = _stream(bundle, audio, [audio.size], temperature_upper=1.5, steps_upper=5, **opts)
    np.testing.assert_array_equal(a[:, mouth], b[:, mouth])
    assert np.abs(a[:, ~mouth] - b[:, ~mouth]).max() > 1e-3


def test_ddim_reads_a_row_only_at_its_own_times():
    """The contract the int8 head's skipping relies on: whatever a denoiser returns for a row at
    a time outside that row's grid is never read."""
    from inference_core.model.diffusion import ddim, ddim_times

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 6)).astype(np.float32) * 0.3
    steps = (2, 5)
    own = [set(ddim_times(s)[:-1]) for s in steps]

    def denoise(x, t):
        return np.tanh(x @ w) * (1 - t) + 0.1 * t

    def skipping(x, t):
        out = denoise(x, t)
        return np.stack([out[i] if t in own[i] else np.full_like(out[i], np.nan) for i in range(len(out))])

    x = rng.standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_array_equal(ddim(skipping, x, steps), ddim(denoise, x, steps))


@pytest.fixture(scope="module")
def guided_model(tmp_path_factory) -> Path:
    """A random model whose head depends on its condition (at initialisation its modulation gates
    are zero, so guidance would change nothing), with its ONNX export."""
    from inference_core.model.checkpoint import save_checkpoint
    from inference_core.runtime.bundle import random_bundle

    b = random_bundle(seed=1, num_styles=1)
    with torch.no_grad():
        for p in b.backend.model.head.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp("guided") / "guided.safetensors"
    save_checkpoint(path, b.backend.model, b.card)
    export_onnx(path)
    return path


def test_guided_pair_in_one_batch_equals_one_call_per_row(guided_model, monkeypatch):
    audio = syllable_audio(2.0, seed=3)[0].astype(np.float32)
    opts = {"seed": 2, "temperature": 1.0, "guidance": 2.0, "steps": 2}
    out = {}
    for backend in ("onnx-fp32", "torch", "onnx"):
        bundle = load_bundle(guided_model, backend=backend)
        batched = _stream(bundle, audio, [audio.size], **opts)
        monkeypatch.setattr(StreamingSession, "paired_guidance", False)
        reference = _stream(bundle, audio, [audio.size], **opts)
        monkeypatch.setattr(StreamingSession, "paired_guidance", True)
        assert batched.shape == (60, 52)
        np.testing.assert_allclose(batched, reference, atol=1e-4)
        assert np.abs(batched - _stream(bundle, audio, [audio.size], **dict(opts, guidance=1.0))).max() > 1e-3
        np.testing.assert_array_equal(batched, _stream(bundle, audio, [160, 777, 3001], **opts))  # streaming == offline
        out[backend] = batched
    assert np.abs(out["onnx-fp32"] - out["torch"]).max() < 1e-3
    assert 1e-6 < np.abs(out["onnx"] - out["torch"]).max() < 0.2  # the int8 head: close, not the same


@pytest.mark.parametrize("upper,steps_upper", [(None, None), (0.3, None), (0.3, 5)])
def test_backends_agree_on_a_whole_file_and_stream_exactly(exported, upper, steps_upper):
    """0.3: the mouth and upper-face chains in one batch; 5: the upper face in more steps."""
    audio = syllable_audio(4.0, seed=9)[0].astype(np.float32)
    opts = {"seed": 4, "temperature": 1.0, "guidance": 1.5, "steps": 3,  # noise and guidance matter here
            "temperature_upper": upper, "steps_upper": steps_upper}
    onnx_b, torch_b = load_bundle(exported, backend="onnx-fp32"), load_bundle(exported, backend="torch")
    a = _stream(onnx_b, audio, [audio.size], **opts)
    b = _stream(torch_b, audio, [audio.size], **opts)
    assert a.shape == b.shape == (120, 52)
    assert np.abs(a - b).max() < 1e-3                       # the same noise, the same networks
    assert np.abs(a - _stream(onnx_b, audio, [audio.size], **dict(opts, seed=5))).max() > 1e-3
    np.testing.assert_array_equal(a, _stream(onnx_b, audio, [160, 777, 3001], **opts))  # streaming == offline
    int8 = load_bundle(exported, backend="onnx")
    c = _stream(int8, audio, [audio.size], **opts)
    np.testing.assert_array_equal(c, _stream(int8, audio, [160, 777, 3001], **opts))
    assert 1e-6 < np.abs(c - b).max() < 0.2


def test_torch_free_path_generates_with_torch_blocked(exported, tmp_path):
    wav = write_wav(tmp_path / "line.wav", syllable_audio(2.0, seed=1)[0], 16000)
    code = BLOCK_TORCH + f"""
import numpy as np
from inference_core.cli import main
rc = main(["generate", {str(wav)!r}, "-o", {str(tmp_path / 'out.npz')!r}, "--model", {str(exported)!r},
           "--backend", "onnx", "--quiet"])
assert rc == 0, rc
assert "torch" not in sys.modules and not any(m.startswith("torch.") for m in sys.modules)
print(np.load({str(tmp_path / 'out.npz')!r})["weights"].shape)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "(60, 52)" in r.stdout


def test_auto_falls_back_to_torch_and_refuses_a_bad_export(exported, tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    for f in exported.parent.glob(exported.stem + ".*"):
        shutil.copy(f, d / f.name)
    model = d / exported.name
    assert load_bundle(model).backend.name == "onnx"          # auto prefers ONNX when it can run
    int8 = graph_path(model, "head_int8")
    original = int8.read_bytes()
    int8.write_bytes(original[:-40] + b"\0" * 40)            # a listed graph, damaged: the export is refused
    for backend in ("onnx", "onnx-fp32"):
        with pytest.raises(BackendUnavailable, match="checksum"):
            load_bundle(model, backend=backend)
    int8.write_bytes(original)
    head = graph_path(model, "head")
    head.write_bytes(head.read_bytes()[:-40] + b"\0" * 40)  # damaged graph
    with pytest.raises(BackendUnavailable, match="checksum"):
        load_bundle(model, backend="onnx")
    assert load_bundle(model).backend.name == "torch"
    manifest_path(model).unlink()                            # no export at all
    with pytest.raises(BackendUnavailable, match="export-onnx"):
        load_bundle(model, backend="onnx")
    assert load_bundle(model).backend.name == "torch"


def test_export_of_other_weights_is_refused(exported, tmp_path, random_model):
    from inference_core.model.checkpoint import load_checkpoint, save_checkpoint

    d = tmp_path / "m"
    d.mkdir()
    for f in exported.parent.glob(exported.stem + ".*"):
        shutil.copy(f, d / f.name)
    model, card, _ = load_checkpoint(random_model)
    with torch.no_grad():
        model.head.out.bias.add_(0.01)                       # retrained weights, old graphs kept
    save_checkpoint(d / exported.name, model, card)
    with pytest.raises(BackendUnavailable, match="other weights"):
        load_bundle(d / exported.name, backend="onnx")


def test_export_of_an_older_graph_set_is_refused(exported, tmp_path):
    """Graphs written by an older export-onnx (another set of graphs) ask to be exported again."""
    d = tmp_path / "m"
    d.mkdir()
    for f in exported.parent.glob(exported.stem + ".*"):
        shutil.copy(f, d / f.name)
    manifest = json.loads(manifest_path(d / exported.name).read_text())
    del manifest["version"]                                  # a version-1 manifest had none
    manifest_path(d / exported.name).write_text(json.dumps(manifest))
    with pytest.raises(BackendUnavailable, match="export them again"):
        load_bundle(d / exported.name, backend="onnx")
    assert load_bundle(d / exported.name).backend.name == "torch"


def test_an_export_without_the_int8_head_runs_the_float_one(exported, tmp_path):
    """Exports made before the int8 head (their manifests do not list it) still load."""
    d = tmp_path / "m"
    d.mkdir()
    for f in exported.parent.glob(exported.stem + ".*"):
        if f != graph_path(exported, "head_int8"):
            shutil.copy(f, d / f.name)
    manifest = json.loads(manifest_path(d / exported.name).read_text())
    del manifest["files"]["head_int8"]
    manifest_path(d / exported.name).write_text(json.dumps(manifest))
    bundle = load_bundle(d / exported.name, backend="onnx")
    assert (bundle.backend.name, bundle.backend.head_precision) == ("onnx", "fp32")


def test_no_backend_at_all_says_what_to_install(random_model):
    code = BLOCK_TORCH + f"""
from inference_core.runtime.bundle import BackendUnavailable, load_bundle
try:
    load_bundle({str(random_model)!r})
except BackendUnavailable as exc:
    print("MSG", exc)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MSG" in r.stdout and "export-onnx" in r.stdout and "install torch" in r.stdout


def test_torch_runtime_keeps_every_tensor_on_the_model_device(random_model):
    """A CUDA model must never meet a CPU tensor: run each network call and a training loss
    with the model on torch's meta device, where mixing devices raises."""
    from inference_core.model.checkpoint import load_checkpoint
    from inference_core.runtime.torch_backend import TorchBackend
    from inference_core.training.train import LossOptions, rollout, training_loss

    model, _, _ = load_checkpoint(random_model)
    model = model.to("meta")
    backend = TorchBackend(model)
    backend.to_numpy = lambda t: t  # type: ignore[method-assign]  # meta tensors hold no values
    cfg = model.cfg
    mel = np.zeros((1, cfg.step_mels + cfg.receptive_field_mel - 1, cfg.n_mels), np.float32)
    feat = backend.audio(mel)
    assert feat.device.type == "meta"
    audio = np.zeros((1, cfg.context_frames + cfg.chunk_frames, cfg.model_dim), np.float32)
    past = np.zeros((1, cfg.context_frames, cfg.num_channels), np.float32)
    cond = backend.condition(audio, past, backend.style_vector(0), 0.0)
    assert cond.device.type == "meta"
    x0 = backend.head(np.zeros((1, cfg.chunk_frames * cfg.num_channels), np.float32), 0.5, np.zeros(cond.shape, np.float32))
    assert x0.device.type == "meta"

    steps = 10 + 3
    mel_b = torch.zeros(2, steps * cfg.step_mels + cfg.receptive_field_mel - 1, cfg.n_mels, device="meta")
    motion = torch.zeros(2, steps * cfg.chunk_frames, cfg.num_channels, device="meta")
    style = torch.zeros(2, dtype=torch.long, device="meta")
    opt = LossOptions(context_gain=0.3, context_swap=0.5, sampler_times=[0.995, 0.4975],
                      first_step_weight=1.0, sampler_loss_weight=1.0)
    loss, _ = training_loss(model.train(), mel_b, motion, style, 10, "diffusion",
                            torch.zeros(cfg.num_channels, device="meta"), opt)
    assert loss.device.type == "meta"
    # self-generated context (whether a row rolls out is data, so rollout is called directly)
    long = 10 + 4 + 3
    with torch.no_grad():
        a = model.audio(torch.zeros(2, long * cfg.step_mels + cfg.receptive_field_mel - 1, cfg.n_mels, device="meta"))
        x = model.normalise(torch.zeros(2, long * cfg.chunk_frames, cfg.num_channels, device="meta"))
    assert rollout(model, a, x, style, 10, 4, LossOptions()).device.type == "meta"


def test_graphs_whose_weights_moved_are_refused_and_finalize_model_exports_them_again(exported, tmp_path):
    """The graphs read the weights by byte offset: a card that changes size (the same weights,
    the same checksums) must not leave them reading the wrong bytes. finalize-model re-exports."""
    from inference_core.model.checkpoint import load_checkpoint, save_checkpoint

    d = tmp_path / "m"
    d.mkdir()
    for f in exported.parent.glob(exported.stem + ".*"):
        shutil.copy(f, d / f.name)
    model_path = d / exported.name
    model, card, extra = load_checkpoint(model_path)
    save_checkpoint(model_path, model, dict(card, name="a longer name " * 8), {k: v.numpy() for k, v in extra.items()})
    with pytest.raises(BackendUnavailable, match="moved .*export them again"):
        load_bundle(model_path, backend="onnx")
    assert load_bundle(model_path).backend.name == "torch"
    r = subprocess.run([sys.executable, "-m", "inference_core", "finalize-model", str(model_path), "--out",
                        str(model_path), "--name", "shipped"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert str(manifest_path(model_path)) in r.stdout
    onnx, ref = load_bundle(model_path, backend="onnx-fp32"), load_bundle(model_path, backend="torch")
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    np.testing.assert_allclose(_stream(onnx, audio, [16000], seed=1), _stream(ref, audio, [16000], seed=1), atol=1e-4)
