"""`kgreason train <phase>`: one command per training phase of kgreason/phases.py (sft, rsft, grpo,
dpo, a plugin's), with what every training command shares (run folder, model, data folder, --config).
`kgreason run` (kgreason/pipeline/commands.py) reuses the option reading.

cli.py makes the commands from the phase table and calls the one handler here, which imports the
phase's torch-heavy module lazily.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from kgreason.argtypes import out_dir_path
from kgreason.config import BUNDLED_MODEL
from kgreason.io import InputError, file_digest

DATA_FILES = ("facts.jsonl", "train_easy.jsonl", "train_hard.jsonl", "eval.jsonl", "manifest.json")


# --- shared arguments ----------------------------------------------------------------------------
CONFIG_HELP = ("YAML file of options (keys as in kgreason/config.py, e.g. `train: {max_steps: 50}`); flags given "
               "on the command line override it")


def add_common_train_arguments(p: argparse.ArgumentParser, cls: type, init_adapter: bool) -> None:
    """What a `train *` command needs besides its options: where, from what model, on what data."""
    from kgreason.options import add_options

    p.add_argument("--run-dir", required=True, type=out_dir_path,
                   help="run folder (created, or resumed when it exists); several phases may share one")
    p.add_argument("--model", default=BUNDLED_MODEL,
                   help="base model reference: bundled:smollm2-135m, tiny:random, a HF folder or a .gguf file")
    p.add_argument("--data", type=Path, required=True,
                   help="folder written by `kgreason tasks generate` (train_easy/train_hard/facts .jsonl); "
                        "its files are copied into the run's data/ folder")
    p.add_argument("--kg", type=Path, help="kg.json the tasks were generated from (default: DATA/kg.json)")
    if init_adapter:
        p.add_argument("--init-adapter", default="auto",
                       help="adapter to start from: a folder, 'auto' (the run's SFT adapter if it has one) or "
                            "'none' (a fresh LoRA)")
    p.add_argument("--config", metavar="FILE.yaml", help=CONFIG_HELP)
    add_options(p, cls, title=f"{cls.__name__} (kgreason/config.py)")


def options_from_args(cls: type, args: argparse.Namespace, base: Any = None, skip: tuple[str, ...] = ()) -> Any:
    """`base` (default: the dataclass defaults) <- --config FILE <- the flags given."""
    from kgreason.options import leaves, resolve

    return resolve(cls, base if base is not None else cls(), getattr(args, "config", None), args,
                   list(leaves(cls)), skip)


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
        from kgreason.kg.kgjson import load_kg

        kg_path = Path(kg) if kg is not None else data / "kg.json"
        if not kg_path.is_file():
            raise InputError(f"{kg_path}: file not found; pass --kg with the graph the tasks were generated from")
        load_kg(kg_path)


def _pool_files(data: Path, distribution: str) -> list[str]:
    from kgreason.tasks.build import data_layout

    files = data_layout(data).files
    return [files["easy"], files["hard"]] if distribution in ("mixed", "curriculum") else [files[distribution]]


def _check_init_adapter(value: str) -> None:
    if value not in ("auto", "none") and not (Path(value) / "adapter_config.json").is_file():
        raise InputError(f"--init-adapter {value}: not a PEFT adapter folder (no adapter_config.json)")


def stage_inputs(run: Any, data: Path, kg: Path | None, need_kg: bool) -> Path:
    """Copy the task files (and kg.json) into the run's data/ folder once; refuse different ones later."""
    from kgreason.runs.folder import is_main_process, main_process_first

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
                elif file_digest(dst) != file_digest(src):
                    raise InputError(f"{src}: differs from the copy this run already used ({dst}); "
                                     "use another --run-dir for other data")
    return run.data_dir


def _open_run(args: argparse.Namespace, phase: str, options: Any, extra: dict | None = None) -> Any:
    from kgreason.config import RunConfig
    from kgreason.options import to_dict
    from kgreason.runs.folder import Run

    section = {"model": args.model, "data": str(Path(args.data).resolve()), "options": to_dict(options),
               **(extra or {})}
    config = RunConfig(model_ref=args.model, reward_preset=getattr(options, "reward_preset", "kgreason"),
                       command=sys.argv, **{phase: section})
    return Run.create_or_resume(args.run_dir, config.to_dict(), sections=[phase])


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


# --- kgreason train <phase> ---------------------------------------------------------------------
# One command per training phase of kgreason/phases.py, made from its record: its options class
# gives the flags, `starts_from` says whether it continues an adapter and scores with the KG.
def add_phase_arguments(p: argparse.ArgumentParser, phase_name: str) -> None:
    from kgreason.phases import get_phase

    phase = get_phase(phase_name)
    add_common_train_arguments(p, phase.options_class(), init_adapter=phase.starts_from is not None)
    p.set_defaults(phase=phase_name)


def _needed_files(data: Path, options: Any) -> list[str]:
    """The task files a phase trains on: SFT's material, or the pool a KG-reward phase samples."""
    from kgreason.tasks.build import data_layout

    if hasattr(options, "material"):
        files = data_layout(data).files
        return [files[m] for m in options.material]
    return _pool_files(data, options.distribution)


def cmd_train_phase(args: argparse.Namespace) -> int:
    from kgreason.phases import get_phase

    phase = get_phase(args.phase)
    options = options_from_args(phase.options_class(), args)
    options.validate()
    continues = phase.starts_from is not None  # continues an adapter, scored against the graph
    check_inputs(args.data, args.kg, continues, _needed_files(args.data, options))
    if continues:
        _check_init_adapter(args.init_adapter)
    extra = {"init_adapter": args.init_adapter} if continues else None
    with _open_run(args, phase.name, options, extra) as run:
        data = stage_inputs(run, args.data, args.kg, need_kg=continues)
        kwargs = {"init_adapter": _init_adapter(args, run)} if continues else {}
        info = phase.run_function()(run, args.model, data, options, **kwargs)
    for row in info.get("rounds", []):
        print(f"round {row['round']} ({row['pool']}): pass rate {row['mean_pass_rate']:.2f}, "
              f"{row['winners']} winners, {row['steps']} steps")
    facts = [f"{info['steps']} steps" if info.get("steps") is not None else "",
             f"loss {info['train_loss']}" if info.get("train_loss") is not None else "",
             f"adapter {run.adapter_dir(phase.name)}"]
    print(f"{phase.name}: " + ", ".join(f for f in facts if f))
    return 0
