"""Command line: ``python -m inference_core <command> ...``.

Commands are dispatched lazily so ``--help`` and light commands do not pay
for importing torch, and each subsystem (corpus, train, eval, flame) owns its
own argument parsing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

# command -> (module, function, one-line help)
EXTERNAL = {
    "corpus": ("inference_core.data.corpus.build", "main", "generate the synthetic TTS training corpus"),
    "train": ("inference_core.training.train", "main", "train a model on a dataset folder"),
    "eval": ("inference_core.training.evaluate", "main", "evaluate a model on held-out data (JSON)"),
    "flame": ("inference_core.flame.cli", "main", "FLAME model tools"),
    "export-onnx": ("inference_core.model.onnx_export", "main",
                    "write a checkpoint's per-step networks as ONNX (the torch-free runtime)"),
    "realspeech": ("inference_core.data.realspeech.build", "main",
                   "build the phone-aligned real-speech set from Debian's voice prompts"),
}

def _backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "onnx", "onnx-fp32", "torch"], default="auto",
                   help="network runtime: onnx (ONNX Runtime, no torch needed; the int8 head on a CPU), "
                        "onnx-fp32 (the same with the float head), torch, or auto "
                        "(onnx when onnxruntime and the model's ONNX files are there; default)")


def _session_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation settings")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=None, help="DDIM steps (default: model card)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    g.add_argument("--style", default=None, help="style index or name from the model card")
    g.add_argument("--intensity", type=float, default=None)
    g.add_argument("--articulation", type=float, default=None,
                   help="how much of the mouth's range lost to averaging is given back with the model "
                        "card's fitted gains: 0 = none, 1 = the fitted gains (default), up to 2")
    g.add_argument("--phonetic", type=float, default=None,
                   help="how far the mouth opens as the phones heard ask, with the model card's phonetic "
                        "gain: 0 = off (default), 1 = as fitted, up to 2")
    g.add_argument("--smoothing", type=float, default=None)
    g.add_argument("--temperature", type=float, default=None, help="initial noise scale on the mouth (0..2)")
    g.add_argument("--temperature-upper", type=float, default=None,
                   help="initial noise scale on the upper face: eyes, brows (default: the model card's)")
    g.add_argument("--steps-upper", type=int, default=None,
                   help="DDIM steps of the upper face (more: fuller blinks, slower; default: the model card's)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inference_core",
                                description="StreamingTalker: streaming speech-to-facial-animation")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("generate", help="audio file(s) or folder(s) -> per-frame channel weights")
    g.add_argument("inputs", nargs="+", help="audio files or folders of audio files")
    g.add_argument("-o", "--out", required=True,
                   help="output file (one input) or folder (several inputs / a folder)")
    g.add_argument("--format", default="npz", help="comma-separated: npz,json,csv (default npz)")
    g.add_argument("--model", default=None, help="checkpoint (default: the bundled model)")
    g.add_argument("--threads", type=int, default=None,
                   help="threads per worker (default: the free cores shared between the workers, at most "
                        "what the networks can use: 1)")
    g.add_argument("--jobs", type=int, default=0,
                   help="worker processes, each loading the model once (default 0: one per free core, "
                        "at most one per input)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the batch as Ray actors: on the cluster at ADDRESS, or a new local Ray instance "
                        "(needs `pip install .[cluster]`); --jobs then counts actors (0: fill the cluster)")
    g.add_argument("--skip-existing", action="store_true",
                   help="leave out inputs whose outputs all exist (resume an interrupted batch)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    _backend_arg(g)
    _session_args(g)

    s = sub.add_parser("serve", help="run the stdio bridge server (used by the Blender add-on)")
    s.add_argument("--model", default=None)
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--threads", type=int, default=None)
    _backend_arg(s)

    b = sub.add_parser("bench", help="speed benchmark; prints one JSON object")
    b.add_argument("--json", action="store_true", help="print JSON only (default prints JSON too)")
    b.add_argument("--model", default=None, help="checkpoint (default: bundled, else random init)")
    b.add_argument("--short-seconds", type=float, default=10.0)
    b.add_argument("--long-seconds", type=float, default=1800.0)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--threads", type=int, default=None)
    b.add_argument("--steps", type=int, default=None)
    b.add_argument("--guidance", type=float, default=None)
    b.add_argument("--temperature-upper", type=float, default=None,
                   help="upper-face temperature (default: the card's; equal to the mouth's: one chain)")
    b.add_argument("--steps-upper", type=int, default=None, help="upper-face DDIM steps (default: the card's)")
    b.add_argument("--phonetic", type=float, default=None, help="the card's phonetic gain's strength (default: off)")
    b.add_argument("--backend", default="both", choices=["both", "onnx", "onnx-fp32", "torch"],
                   help="which runtime(s) to measure (default: both, in one run)")

    i = sub.add_parser("info", help="show a checkpoint's model card")
    i.add_argument("model", nargs="?", default=None)
    i.add_argument("--verify", action="store_true", help="also load and check all weights")

    m = sub.add_parser("init-model", help="write a randomly initialised checkpoint (tests, benchmarks)")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--num-styles", type=int, default=1)

    f = sub.add_parser("finalize-model", help="set a trained checkpoint's defaults and quality, for shipping")
    f.add_argument("model")
    f.add_argument("--out", required=True)
    f.add_argument("--defaults", default=None, help='JSON, e.g. {"guidance": 2.0, "temperature": 0.3}')
    f.add_argument("--eval", default=None, help="eval JSON (python -m inference_core eval --out)")
    f.add_argument("--tuning", default=None,
                   help="tuning JSON (scripts/tune_defaults.py --out): how the defaults were chosen")
    f.add_argument("--steps-upper-choice", default=None,
                   help="JSON of scripts/choose_upper_steps.py: how the upper face's steps were chosen")
    f.add_argument("--style-choice", default=None,
                   help="JSON of scripts/choose_style.py: how the default style was chosen")
    f.add_argument("--articulation", default=None,
                   help="JSON of scripts/fit_articulation.py: the mouth's articulation gains")
    f.add_argument("--phonetic-gain", default=None,
                   help="JSON of scripts/fit_phonetic_gain.py: the phonetic gain it chose (its read-out goes into the file)")
    f.add_argument("--credit-data", nargs="+", default=None, metavar="DATASET",
                   help="credit the training voices of these datasets in the card (a model trained before "
                        "cards carried its voices' credits; training writes them itself)")
    f.add_argument("--name", default=None)

    for name, (_, _, text) in EXTERNAL.items():
        sub.add_parser(name, help=text, add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    from .runtime.threads import passive_waiting

    passive_waiting()  # before anything imports torch (see runtime/threads.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in EXTERNAL:
        module, func, _ = EXTERNAL[argv[0]]
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        from .runtime.server import main as serve_main

        return serve_main(args.model, args.device, args.threads, args.backend)
    if args.command == "generate":
        return cmd_generate(args)
    if args.command == "bench":
        from .runtime.bench import main as bench_main

        return bench_main(args)
    if args.command == "info":
        return cmd_info(args)
    if args.command == "init-model":
        return cmd_init_model(args)
    if args.command == "finalize-model":
        return cmd_finalize_model(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_info(args: argparse.Namespace) -> int:
    from .model.checkpoint import ModelFileError, read_card
    from .shared.paths import DEFAULT_MODEL

    path = Path(args.model or DEFAULT_MODEL)
    try:
        card = read_card(path)
        if args.verify:
            from .runtime.verify import verify_model

            card["verified"] = verify_model(path)
    except (ModelFileError, ValueError) as exc:
        return _fail(str(exc))
    card["file"] = str(path)
    card["file_bytes"] = path.stat().st_size
    print(json.dumps(card, indent=2))
    return 0


def cmd_init_model(args: argparse.Namespace) -> int:
    from .model.checkpoint import save_checkpoint
    from .runtime.bundle import random_bundle

    bundle = random_bundle(args.seed, num_styles=args.num_styles)
    save_checkpoint(args.out, bundle.backend.model, bundle.card)  # type: ignore[attr-defined]
    print(args.out)
    return 0


def cmd_finalize_model(args: argparse.Namespace) -> int:
    """Re-save a checkpoint with tuned default settings and its measured quality in the card."""
    from .model.checkpoint import ModelFileError, load_checkpoint, save_checkpoint
    from .shared.model_card import ARTICULATION_KEY, check_card, flat_training
    from .shared.options import SessionError, SessionOptions, style_index

    try:
        model, card, tensors = load_checkpoint(args.model)
    except ModelFileError as exc:
        return _fail(str(exc))
    extra = {k: v.numpy() for k, v in tensors.items()}  # a basis, a phonetic gain's read-out: kept
    if args.defaults:
        card["defaults"] = dict(card.get("defaults") or {}, **json.loads(args.defaults))
        try:
            opts = SessionOptions.from_dict(card["defaults"])
            style_index(opts.style, list(card.get("styles") or ["generic"]), model.cfg.num_styles)
        except SessionError as exc:
            return _fail(f"invalid defaults: {exc}")
    if args.eval:
        card["quality"] = json.loads(Path(args.eval).read_text())
    if args.tuning:
        tuning = json.loads(Path(args.tuning).read_text())
        card["defaults_tuning"] = {k: tuning.get(k) for k in ("data", "split", "utterances", "selection", "best")}
    if args.steps_upper_choice:
        choice = json.loads(Path(args.steps_upper_choice).read_text())
        card.setdefault("defaults_tuning", {})["steps_upper"] = {
            k: choice.get(k) for k in ("rule", "budget_rtf", "counts", "chosen", "blinks_dev")}
    if args.style_choice:
        choice = json.loads(Path(args.style_choice).read_text())
        card.setdefault("defaults_tuning", {})["style"] = {
            "rule": choice.get("rule"), "chosen": choice.get("chosen"), "tts_lve_mm": choice.get("tts_lve_mm"),
            "scan": {k: (choice.get("scan") or {}).get(k) for k in ("data", "every", "eligible_ranked")},
            "confirm": (choice.get("confirm") or {}).get("figures")}
    if args.articulation:
        fit = json.loads(Path(args.articulation).read_text())
        card[ARTICULATION_KEY] = {k: fit.get(k) for k in ("gains", "mean_seconds", "rule", "data", "utterances",
                                                          "speakers", "settings")}
    if args.phonetic_gain:
        from .shared.model_card import PHONETIC_KEY
        from .training.phonetic import phonetic_tensors, read_out_tensors

        fit = json.loads(Path(args.phonetic_gain).read_text())
        if not fit.get("chosen"):
            return _fail(f"{args.phonetic_gain}: its rule chose no phonetic gain")
        try:
            weight, bias = read_out_tensors(fit["read_out"])
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            return _fail(f"--phonetic-gain: cannot read the phone read-out {fit.get('read_out')}: {exc}")
        if weight.shape != (len(fit["chosen"]["classes"]), model.cfg.model_dim):
            return _fail(f"--phonetic-gain: the read-out's shape {tuple(weight.shape)} does not fit "
                         f"{len(fit['chosen']['classes'])} classes of {model.cfg.model_dim} features")
        card[PHONETIC_KEY] = {**{k: v for k, v in fit["chosen"].items() if k != "figures"},
                              "tune_figures": fit["chosen"].get("figures"), "tune_base": fit.get("base"),
                              "held_out": fit.get("held_out"),
                              "rule": fit.get("rule"), "data": fit.get("data"),
                              "read_out": Path(str(fit["read_out"])).name}
        extra.update(phonetic_tensors(weight, bias))
    if args.credit_data:
        from .data.format import Dataset, DatasetError
        from .training.card import voice_credits

        try:
            sources = [Dataset(d) for d in args.credit_data]
        except (DatasetError, OSError) as exc:
            return _fail(f"--credit-data: {exc}")
        training = card.setdefault("training", {})
        training["voice_credits"] = voice_credits(sources, training.get("voice_credits"))
    if args.name:
        card["name"] = args.name
    if card.get("training"):
        card["training"] = flat_training(card["training"])
    try:  # what every reader of the file will check, before it is written
        check_card(card, Path(args.out).name)
    except ModelFileError as exc:
        return _fail(str(exc))
    save_checkpoint(args.out, model, card, extra)
    print(args.out)
    from .runtime.onnx_backend import manifest_path

    if manifest_path(args.out).is_file():  # its graphs read the weights by byte offset, and the card moved them
        from .model.onnx_export import export_onnx

        print(export_onnx(args.out))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """One input to one output file (``-o line.npz``), or a batch into a folder with a manifest."""
    from .runtime.batch import WorkerConfig, collect_items, default_jobs, run_batch
    from .runtime.generate import OutputError
    from .runtime.threads import resolve_threads
    from .shared.model_card import read_card_header
    from .shared.options import SessionError, SessionOptions
    from .shared.paths import DEFAULT_MODEL

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = set(formats) - {"npz", "json", "csv"}
    if bad or not formats:
        return _fail(f"unknown output format(s) {sorted(bad)}; use npz, json, csv")
    items = collect_items(args.inputs)
    if not items:
        return _fail("no audio files found in the given inputs")
    if args.jobs < 0:
        return _fail("--jobs must be 0 (one per free core) or more")
    model = Path(args.model or DEFAULT_MODEL)
    try:  # a missing or bad model (a FIFO, a folder) or setting fails once, here, not once per file
        SessionOptions.resolve(read_card_header(model), SessionOptions.given(args))
    except (SessionError, ValueError, OSError) as exc:
        return _fail(str(exc))
    out = Path(args.out)
    single = len(items) == 1 and not Path(args.inputs[0]).is_dir() and out.suffix != "" and not out.is_dir() \
        and args.ray is None
    jobs = args.jobs or (0 if single or args.ray is not None else min(default_jobs(), len(items)))
    threads = resolve_threads(args.threads, 1 if single else max(1, jobs))
    cfg = WorkerConfig(args.model, args.backend, threads, SessionOptions.given(args), tuple(formats),
                       str(out.parent if single else out))
    if single:
        return _generate_one(items[0], out, cfg, args.quiet)
    from .runtime.batch_ray import RayUnavailable

    try:
        records = run_batch(items, cfg, jobs, args.ray or None, args.ray is not None, args.skip_existing,
                            args.quiet)
    except (OutputError, RayUnavailable) as exc:
        return _fail(str(exc))
    failures = sum(r.status != "ok" for r in records)
    for r in records:
        for o in r.outputs:
            print(o)
    if failures:
        print(f"{failures} of {len(records)} file(s) failed (see {out / 'manifest.jsonl'})", file=sys.stderr)
    return 1 if failures else 0


def _generate_one(item: Any, out: Path, cfg: Any, quiet: bool) -> int:
    """``-o FILE``: the old single-file form (no manifest), same writer as the batch."""
    from .audio.io import AudioError
    from .runtime.batch import Worker
    from .runtime.bundle import BackendUnavailable
    from .runtime.generate import OutputError, check_target, generate_file, output_paths, write_outputs
    from .shared.model_card import ModelFileError
    from .shared.options import SessionError

    stem = out.with_suffix("")
    try:
        for p in output_paths(stem, list(cfg.formats)):
            check_target(p)
        worker = Worker(cfg)
        result = generate_file(worker.bundle, item.source, worker.options, progress=not quiet)
        written = write_outputs(result, stem, list(cfg.formats))
    except (ModelFileError, BackendUnavailable, OutputError) as exc:
        return _fail(str(exc))
    except (AudioError, SessionError) as exc:
        return _fail(f"{item.source}: {exc}")
    for w in written:
        print(w)
    for warning in result.warnings:
        print(f"warning: {item.source.name}: {warning}", file=sys.stderr)
    return 0
