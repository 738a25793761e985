"""Command-line handlers: `kgreason train sft|rsft|grpo`, `kgreason run`, `kgreason bench train`.

cli.py only declares the arguments (via the `add_*_arguments` functions here) and calls these
handlers, which import torch-heavy modules lazily.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

from kgreason.argtypes import (
    BACKEND_CHOICES,
    DTYPE_CHOICES,
    non_negative_float,
    non_negative_int,
    out_dir_path,
    positive_float,
    positive_int,
    unit_interval,
)
from kgreason.io import InputError

DATA_FILES = ("facts.jsonl", "train_easy.jsonl", "train_hard.jsonl", "eval.jsonl", "manifest.json")


# --- shared arguments ----------------------------------------------------------------------------
def add_common_train_arguments(p: argparse.ArgumentParser, lr: float, steps: int) -> None:
    p.add_argument("--run-dir", required=True, type=out_dir_path,
                   help="run folder (created, or resumed when it exists); several phases may share one")
    p.add_argument("--model", default="bundled:smollm2-135m",
                   help="base model reference: bundled:smollm2-135m, tiny:random, a HF folder or a .gguf file")
    p.add_argument("--data", type=Path, required=True,
                   help="folder written by `kgreason tasks generate` (train_easy/train_hard/facts .jsonl); "
                        "its files are copied into the run's data/ folder")
    p.add_argument("--kg", type=Path, help="kg.json the tasks were generated from (default: DATA/kg.json)")
    p.add_argument("--max-steps", type=int, default=steps, help="optimizer steps (<= 0: --epochs passes instead)")
    p.add_argument("--learning-rate", type=positive_float, default=lr, help="peak learning rate (cosine schedule)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per device per step")
    p.add_argument("--grad-accum", type=positive_int, default=1, help="gradient accumulation steps")
    p.add_argument("--lora-r", type=positive_int, default=16, help="LoRA rank (alpha = 2 x rank)")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="training precision (auto: bf16 where the CPU/GPU runs it natively)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--save-steps", type=positive_int, default=50, help="checkpoint every N steps (the resume points)")


def train_options(args: argparse.Namespace, **kw: Any) -> Any:
    from kgreason.train.sft import LoraOptions, TrainOptions

    base = dict(max_steps=args.max_steps, learning_rate=args.learning_rate, batch_size=args.batch_size,
                grad_accum=args.grad_accum, dtype=args.dtype, seed=args.seed, save_steps=args.save_steps,
                lora=LoraOptions(r=args.lora_r, alpha=2 * args.lora_r))
    base.update(kw)
    return TrainOptions(**base)


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_inputs(data: Path, kg: Path | None, need_kg: bool, needed: list[str]) -> None:
    """What `stage_inputs` needs, checked before a run folder exists: a bad --data or --kg then
    leaves nothing behind and fails before any model loads. A graph the phase needs is parsed here."""
    data = Path(data)
    if not data.is_dir():
        raise InputError(f"--data {data}: not a folder; pass the --out folder of `kgreason tasks generate`")
    missing = [name for name in dict.fromkeys(needed) if not (data / name).is_file()]
    if missing:
        raise InputError(f"--data {data}: no {', '.join(missing)} in this folder; pass the --out folder of "
                         "`kgreason tasks generate`")
    if kg is not None and not Path(kg).is_file():
        raise InputError(f"--kg {kg}: file not found")
    if need_kg:
        from kgreason.kg.io import load_kg

        kg_path = Path(kg) if kg is not None else data / "kg.json"
        if not kg_path.is_file():
            raise InputError(f"{kg_path}: file not found; pass --kg with the graph the tasks were generated from")
        load_kg(kg_path)


def _pool_files(distribution: str) -> list[str]:
    from kgreason.train.rsft import POOL_FILES

    return list(POOL_FILES.values()) if distribution in ("mixed", "curriculum") else [POOL_FILES[distribution]]


def _check_init_adapter(value: str) -> None:
    if value not in ("auto", "none") and not (Path(value) / "adapter_config.json").is_file():
        raise InputError(f"--init-adapter {value}: not a PEFT adapter folder (no adapter_config.json)")


def stage_inputs(run: Any, data: Path, kg: Path | None, need_kg: bool) -> Path:
    """Copy the task files (and kg.json) into the run's data/ folder once; refuse different ones later."""
    from kgreason.train.runs import is_main_process, main_process_first

    data = Path(data)
    if not data.is_dir():
        raise InputError(f"{data}: not a folder; pass the --out folder of `kgreason tasks generate`")
    sources = {name: data / name for name in DATA_FILES if (data / name).exists()}
    kg_path = kg or data / "kg.json"
    if kg_path.exists():
        sources["kg.json"] = kg_path
    elif need_kg:
        raise InputError(f"{kg_path}: file not found; pass --kg with the graph the tasks were generated from")
    with main_process_first():
        if is_main_process():
            run.data_dir.mkdir(parents=True, exist_ok=True)
            for name, src in sources.items():
                dst = run.data_dir / name
                if not dst.exists():
                    tmp = dst.with_name(f".{name}.tmp")
                    shutil.copyfile(src, tmp)
                    tmp.replace(dst)
                elif _digest(dst) != _digest(src):
                    raise InputError(f"{src}: differs from the copy this run already used ({dst}); "
                                     "use another --run-dir for other data")
    return run.data_dir


def _open_run(args: argparse.Namespace, phase: str, options: Any, extra: dict | None = None) -> Any:
    from kgreason.train.runs import Run, dump_options

    section = {"model": args.model, "data": str(Path(args.data).resolve()), "options": dump_options(options),
               **(extra or {})}
    return Run.create_or_resume(args.run_dir, {"model_ref": args.model, phase: section,
                                               "command": sys.argv}, sections=[phase])


def _init_adapter(args: argparse.Namespace, run: Any) -> Path | None:
    """--init-adapter DIR, or the run's own SFT adapter when it has one ("auto")."""
    if args.init_adapter == "none":
        return None
    if args.init_adapter == "auto":
        sft = run.adapter_dir("sft")
        return sft if run.is_done("sft") and (sft / "adapter_config.json").exists() else None
    path = Path(args.init_adapter)
    if not (path / "adapter_config.json").exists():
        raise InputError(f"{path}: not a PEFT adapter folder (no adapter_config.json)")
    return path


# --- kgreason train sft --------------------------------------------------------------------------
def add_sft_arguments(p: argparse.ArgumentParser) -> None:
    add_common_train_arguments(p, lr=2e-4, steps=300)
    p.add_argument("--material", default="facts,easy",
                   help="comma list of training material: facts (one statement per KG edge), easy (1-3 hop "
                        "questions), hard (the 4-5 hop training pool, never the eval file)")
    p.add_argument("--trace-style", default="full", choices=["full", "short", "mix"],
                   help="reference traces: the full chain, the key hops only, or a mix of both")
    p.add_argument("--short-share", type=unit_interval, default=0.5,
                   help="with --trace-style mix: share of short traces")
    p.add_argument("--max-examples", type=non_negative_int, default=0, help="per material, a seeded subset (0: all)")
    p.add_argument("--epochs", type=positive_float, default=1.0, help="passes over the data when --max-steps <= 0")


def cmd_train_sft(args: argparse.Namespace) -> int:
    from kgreason.train.sft import SFTOptions, run_sft

    options = SFTOptions(material=[m.strip() for m in args.material.split(",") if m.strip()],
                         trace_style=args.trace_style, short_share=args.short_share,
                         max_examples=args.max_examples, train=train_options(args, epochs=args.epochs))
    options.validate()
    from kgreason.train.sft import MATERIAL_FILES

    check_inputs(args.data, args.kg, False, [MATERIAL_FILES[m] for m in options.material])
    with _open_run(args, "sft", options) as run:
        data = stage_inputs(run, args.data, args.kg, need_kg=False)
        info = run_sft(run, args.model, data, options)
    print(f"sft: {info.get('steps')} steps, loss {info.get('train_loss')}, adapter {run.adapter_dir('sft')}")
    return 0


# --- kgreason train rsft -------------------------------------------------------------------------
def add_rsft_arguments(p: argparse.ArgumentParser) -> None:
    add_common_train_arguments(p, lr=1e-4, steps=0)
    p.add_argument("--epochs", type=positive_float, default=2.0,
                   help="passes over each round's winners (when --max-steps <= 0)")
    p.add_argument("--init-adapter", default="auto",
                   help="adapter to start from: a folder, 'auto' (the run's SFT adapter if it has one) or 'none'")
    p.add_argument("--rounds", type=positive_int, default=2, help="expert-iteration rounds R")
    p.add_argument("-k", type=positive_int, default=8, help="samples per question")
    p.add_argument("--temperature", type=non_negative_float, default=0.7, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=positive_int, default=160, help="cap per sample")
    p.add_argument("--keep", type=positive_int, default=1, help="winners kept per question (best N by reward)")
    p.add_argument("--distribution", default="easy", choices=["easy", "hard", "mixed", "curriculum"],
                   help="training questions: easy (1-3 hops), hard (the 4-5 hop training pool, never the eval "
                        "file), mixed (half each), curriculum (easy rounds, then hard rounds)")
    p.add_argument("--easy-rounds", type=non_negative_int, default=0,
                   help="curriculum: easy rounds first (0: half, rounded up)")
    p.add_argument("--questions", type=non_negative_int, default=200, help="questions per round (0: the whole pool)")
    p.add_argument("--frontier", action="store_true",
                   help="learning-frontier selection: keep only questions whose pass rate over k is strictly between 0 and 1")
    p.add_argument("--faithful-only", action="store_true", help="winners must also have a faithful trace")
    p.add_argument("--preset", default="kgreason", choices=["kgreason", "seed", "paper"], help="reward preset")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="sampling backend")


def cmd_train_rsft(args: argparse.Namespace) -> int:
    from kgreason.train.rsft import RSFTOptions, run_rsft

    options = RSFTOptions(rounds=args.rounds, k=args.k, temperature=args.temperature,
                          max_new_tokens=args.max_new_tokens, keep=args.keep, distribution=args.distribution,
                          easy_rounds=args.easy_rounds, questions=args.questions, frontier=args.frontier,
                          faithful_only=args.faithful_only, preset=args.preset, backend=args.backend, seed=args.seed,
                          train=train_options(args, epochs=args.epochs))
    options.validate()
    check_inputs(args.data, args.kg, True, _pool_files(options.distribution))
    _check_init_adapter(args.init_adapter)
    with _open_run(args, "rsft", options, {"init_adapter": args.init_adapter}) as run:
        data = stage_inputs(run, args.data, args.kg, need_kg=True)
        init = _init_adapter(args, run)
        info = run_rsft(run, args.model, data, options, init_adapter=init)
    for row in info.get("rounds", []):
        print(f"round {row['round']} ({row['pool']}): pass rate {row['mean_pass_rate']:.2f}, "
              f"{row['winners']} winners, {row['steps']} steps")
    print(f"rsft: adapter {run.adapter_dir('rsft')}")
    return 0


# --- kgreason train grpo -------------------------------------------------------------------------
def add_grpo_arguments(p: argparse.ArgumentParser) -> None:
    add_common_train_arguments(p, lr=2e-5, steps=100)
    p.add_argument("--init-adapter", default="auto",
                   help="adapter to continue: a folder, 'auto' (the run's SFT adapter if it has one) or 'none' "
                        "(a fresh LoRA)")
    p.add_argument("--num-generations", type=positive_int, default=4,
                   help="group size: completions per prompt (at least 2)")
    p.add_argument("--beta", type=non_negative_float, default=0.04,
                   help="KL coefficient against the base model (0: no KL term)")
    p.add_argument("--temperature", type=non_negative_float, default=0.7, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=positive_int, default=160, help="max completion length")
    p.add_argument("--distribution", default="easy", choices=["easy", "hard", "mixed"], help="training questions")
    p.add_argument("--questions", type=non_negative_int, default=200,
                   help="prompts in the training set (0: the whole pool)")
    p.add_argument("--preset", default="kgreason", choices=["kgreason", "seed", "paper"], help="reward preset")
    p.add_argument("--use-vllm", default="auto", choices=["auto", "yes", "no"],
                   help="generate with vLLM (colocated) when it is installed and a GPU is present")


def cmd_train_grpo(args: argparse.Namespace) -> int:
    from kgreason.train.grpo import GRPOOptions, run_grpo
    from kgreason.train.sft import LoraOptions

    options = GRPOOptions(distribution=args.distribution, questions=args.questions,
                          num_generations=args.num_generations, beta=args.beta, max_steps=args.max_steps,
                          learning_rate=args.learning_rate, batch_size=args.batch_size, grad_accum=args.grad_accum,
                          temperature=args.temperature, max_completion_length=args.max_new_tokens,
                          preset=args.preset, use_vllm=args.use_vllm, dtype=args.dtype, seed=args.seed,
                          save_steps=args.save_steps, lora=LoraOptions(r=args.lora_r, alpha=2 * args.lora_r))
    options.validate()
    check_inputs(args.data, args.kg, True, _pool_files(options.distribution))
    _check_init_adapter(args.init_adapter)
    with _open_run(args, "grpo", options, {"init_adapter": args.init_adapter}) as run:
        data = stage_inputs(run, args.data, args.kg, need_kg=True)
        init = _init_adapter(args, run)
        info = run_grpo(run, args.model, data, options, init_adapter=init)
    print(f"grpo: {info.get('steps')} steps, adapter {run.adapter_dir('grpo')}")
    return 0


# --- kgreason run --------------------------------------------------------------------------------
def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="quick", choices=["quick", "full", "smoke"],
                   help="quick: under 20 minutes on a 2-core CPU; full: for a GPU; smoke: every stage on "
                        "tiny:random in about a minute")
    p.add_argument("--run-dir", type=out_dir_path,
                   help="run folder (default: runs/<preset>, or runs/<preset>-<hash> when options are overridden)")
    p.add_argument("--model", help="base model reference (unset: the preset's, bundled:smollm2-135m)")
    p.add_argument("--kg", help="your own graph: kg.json, TSV/CSV triples (kgreason kg import formats) or "
                                "builtin:NAME (unset: the built-in DevOps KG)")
    p.add_argument("--mode", choices=["open", "closed"],
                   help="open: the facts a question needs are in its prompt; closed: the model must know them "
                        "(unset: the preset's, open for quick)")
    p.add_argument("--seed", type=int, help="dataset and training seed (unset: the preset's, 0)")
    p.add_argument("--eval-items", type=non_negative_int,
                   help="held-out items evaluated per phase (0: all; unset: the preset's)")
    p.add_argument("--sft-steps", type=positive_int, help="SFT optimizer steps")
    p.add_argument("--rsft-rounds", type=positive_int, help="RSFT rounds")
    p.add_argument("--rsft-questions", type=non_negative_int, help="RSFT questions per round (0: the whole pool)")
    p.add_argument("-k", type=positive_int, help="RSFT samples per question")
    p.add_argument("--distribution", choices=["easy", "hard", "mixed", "curriculum"], help="RSFT training questions")
    p.add_argument("--frontier", action="store_true", help="RSFT learning-frontier selection")


def pipeline_config_from_args(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from kgreason.train.pipeline import preset_config

    cfg = preset_config(args.preset)
    if args.model:
        cfg.model = args.model
    if args.kg:
        cfg.data = replace(cfg.data, kg=args.kg)
    if args.mode:
        cfg.data = replace(cfg.data, mode=args.mode)
    if args.seed is not None:
        cfg.data = replace(cfg.data, seed=args.seed)
        cfg.sft.train.seed = cfg.rsft.train.seed = cfg.rsft.seed = cfg.eval.seed = args.seed
    if args.eval_items is not None:
        cfg.eval.max_items = args.eval_items
    if args.sft_steps is not None:
        cfg.sft.train.max_steps = args.sft_steps
    if args.rsft_rounds is not None:
        cfg.rsft.rounds = args.rsft_rounds
    if args.rsft_questions is not None:
        cfg.rsft.questions = args.rsft_questions
    if args.k is not None:
        cfg.rsft.k = args.k
    if args.distribution:
        cfg.rsft.distribution = args.distribution
    if args.frontier:
        cfg.rsft.frontier = True
    cfg.rsft.validate()
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    from kgreason.train.pipeline import run_pipeline

    run_pipeline(pipeline_config_from_args(args), args.run_dir, argv=sys.argv)
    return 0


# --- kgreason bench train ------------------------------------------------------------------------
def add_bench_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="bundled:smollm2-135m", help="model reference")
    p.add_argument("--steps", type=positive_int, default=4, help="timed optimizer steps per row (after 1 warm-up step)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="examples per step (the SFT default)")
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="training precision (auto: the one training picks here)")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    p.add_argument("--modes", default="closed,open",
                   help="comma list of task modes to time: closed (closed-book) and/or open (open-book)")
    p.add_argument("--paths", default="reference,fast",
                   help="comma list of training paths: reference (TRL's stock path) and/or fast")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def cmd_bench_train(args: argparse.Namespace) -> int:
    import json

    from kgreason.train.bench import MODES, PATHS, bench_train

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    paths = tuple(m.strip() for m in args.paths.split(",") if m.strip())
    if not modes or set(modes) - set(MODES):
        raise InputError(f"--modes: expected a comma list of {', '.join(MODES)}, got {args.modes!r}")
    if not paths or set(paths) - set(PATHS):
        raise InputError(f"--paths: expected a comma list of {', '.join(PATHS)}, got {args.paths!r}")
    result = bench_train(args.model, steps=args.steps, batch_size=args.batch_size, dtype=args.dtype, seed=args.seed,
                         modes=modes, paths=paths, quiet=args.json)
    if args.json:
        print(json.dumps(result))
    return 0
