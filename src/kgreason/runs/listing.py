"""`kgreason runs list`: every run folder under the runs folders, newest first, with its phases and
headline figures; the arms of an experiment are grouped under their experiment.

Torch-free and read-only: it only reads config.json, summary.json and eval/<phase>/metrics.json
through `kgreason.runs.folder.Run`, so listing hundreds of runs takes well under a second and never
disturbs a job that is writing into one of them.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgreason.io import InputError, read_json
from kgreason.runs.folder import CONFIG, SUMMARY, Run
from kgreason.stats import share_record

DEFAULT_ROOTS = ("runs", "experiments")  # where `kgreason run` and `kgreason experiment` write
RUN_MARKERS = (SUMMARY, "metrics.jsonl", "episodes.jsonl")  # config.json alone may be a folder just created
EXPERIMENT_MARKERS = ("experiment.json", "results.json")
MAX_DEPTH = 4  # runs/<group>/<experiment>/runs/<arm>: deep enough for every layout kgreason writes


@dataclass
class EvalFigures:
    """One evaluated phase: accuracy and faithful share, each {mean, low, high, n} (bounds may be None)."""

    phase: str
    accuracy: dict[str, Any]
    faithful: dict[str, Any] | None


@dataclass
class RunRow:
    name: str  # relative to the runs folder it was found in, with that folder's name in front
    path: str
    created: str | None  # ISO time from config.json (None when unreadable)
    updated: str | None  # the last phase change (summary.json), else created
    model: str | None
    done: list[str] = field(default_factory=list)  # phases marked done, in the order they finished
    pending: list[str] = field(default_factory=list)  # phases started but not done (running or interrupted)
    evals: list[EvalFigures] = field(default_factory=list)
    error: str = ""  # why the folder could not be read ("" when it could)


@dataclass
class ExperimentRow:
    name: str
    path: str
    kind: str  # "distribution", ...
    created: str | None
    arms: list[RunRow] = field(default_factory=list)


def _interval(value: Any, ci: Any = None, n: Any = None) -> dict[str, Any] | None:
    """{mean, low, high, n} from a metrics.json interval dict or a summary's number and [low, high]."""
    if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)):
        return {"mean": value["mean"], "low": value.get("low"), "high": value.get("high"), "n": value.get("n")}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = (ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None))
        return {"mean": float(value), "low": low, "high": high, "n": n}
    return None


def _share(iv: dict[str, Any] | None) -> dict[str, Any] | None:
    """A share's interval as shown (kgreason.stats.share_record: bootstrap intervals of old runs,
    collapsed at 0/n and n/n, read as Wilson; the files themselves are left as they are)."""
    return share_record(iv)


def _eval_figures(run: Run, phase: str, info: dict[str, Any]) -> EvalFigures | None:
    """An eval phase's figures: its metrics.json when present (intervals for both accuracy and
    faithfulness), else what summary.json kept (experiment arms keep no accuracy interval there)."""
    label = phase.removesuffix("_eval")
    folder = run.root / info["eval_dir"] if isinstance(info.get("eval_dir"), str) else run.eval_dir(label)
    metrics: dict[str, Any] = {}
    if (folder / "metrics.json").is_file():
        try:
            loaded = read_json(folder / "metrics.json")
            metrics = loaded if isinstance(loaded, dict) else {}
        except InputError:
            metrics = {}
    accuracy = _share(_interval(metrics.get("accuracy"))
                      or _interval(info.get("accuracy"), info.get("accuracy_ci"), info.get("n")))
    if accuracy is None:
        return None
    trace = metrics.get("trace") if isinstance(metrics.get("trace"), dict) else {}
    faithful = _share(_interval(trace.get("faithful_share")) or _interval(info.get("faithful"), None, info.get("n")))
    return EvalFigures(label, accuracy, faithful)


def read_run_row(path: Path, name: str) -> RunRow:
    """One run folder's row; an unreadable config or summary gives a row with `error`, not an exception."""
    try:
        run = Run.load(path)
        config = run.config
        summary = run.summary
    except InputError as exc:
        return RunRow(name, str(path), None, None, None, error=str(exc))
    config = config if isinstance(config, dict) else {}
    phases = summary.get("phases") if isinstance(summary, dict) else None
    phases = phases if isinstance(phases, dict) else {}
    row = RunRow(name, str(path), _text(config.get("created")), None, _text(config.get("model_ref")))
    row.updated = _text(summary.get("updated")) or row.created
    for phase, info in phases.items():
        if not isinstance(info, dict):
            continue
        (row.done if info.get("done") else row.pending).append(phase)
        if info.get("done") and info.get("kind") == "eval":
            figures = _eval_figures(run, phase, info)
            if figures is not None:
                row.evals.append(figures)
    return row


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_run(path: Path) -> bool:
    return (path / CONFIG).is_file() and any((path / m).exists() for m in RUN_MARKERS)


def _is_experiment(path: Path) -> bool:
    return any((path / m).is_file() for m in EXPERIMENT_MARKERS)


def _walk(folder: Path, prefix: str, depth: int, found: list[tuple[str, Path, bool]]) -> None:
    """(name, path, is_experiment) of every run and experiment under `folder`; runs do not nest,
    experiments hold runs, so the walk stops at a run and goes on inside an experiment."""
    try:
        entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_dir():
                continue
        except OSError:
            continue
        path, name = Path(entry.path), f"{prefix}{entry.name}"
        if _is_experiment(path):
            found.append((name, path, True))
            continue  # its arms are read by read_experiment_row
        if _is_run(path):
            found.append((name, path, False))
            continue
        if depth + 1 < MAX_DEPTH:
            _walk(path, f"{name}/", depth + 1, found)


def read_experiment_row(path: Path, name: str) -> ExperimentRow:
    meta: dict[str, Any] = {}
    for marker in EXPERIMENT_MARKERS:
        if (path / marker).is_file():
            try:
                loaded = read_json(path / marker)
            except InputError:
                continue
            if isinstance(loaded, dict):
                meta = loaded
                break
    arms: list[tuple[str, Path, bool]] = []
    _walk(path, f"{name}/", 0, arms)
    rows = [read_run_row(p, n) for n, p, is_exp in arms if not is_exp]
    rows.sort(key=lambda r: r.name)  # arms read best in arm-then-seed order
    created = min((r.created for r in rows if r.created), default=None)
    return ExperimentRow(name, str(path), _text(meta.get("experiment")) or "experiment", created, rows)


def list_runs(roots: list[Path]) -> tuple[list[RunRow], list[ExperimentRow]]:
    """Runs and experiments under `roots`, each list newest first (by config.json's created time)."""
    runs: list[RunRow] = []
    experiments: list[ExperimentRow] = []
    for root in roots:
        found: list[tuple[str, Path, bool]] = []
        if _is_run(root):
            found.append((root.name, root, False))
        elif _is_experiment(root):
            found.append((root.name, root, True))
        else:
            _walk(root, f"{root.name}/", 0, found)
        for name, path, is_experiment in found:
            if is_experiment:
                experiments.append(read_experiment_row(path, name))
            else:
                runs.append(read_run_row(path, name))
    runs.sort(key=lambda r: r.created or "", reverse=True)
    experiments.sort(key=lambda e: e.created or "", reverse=True)
    return runs, experiments


# --- printing ----------------------------------------------------------------------------------
def _pct(iv: dict[str, Any] | None) -> str:
    if iv is None:
        return "–"
    low, high = iv.get("low"), iv.get("high")
    bounds = f" [{100 * low:.1f}, {100 * high:.1f}]" if isinstance(low, (int, float)) and isinstance(high, (int, float)) else ""
    return f"{100 * iv['mean']:.1f}%{bounds}"


def _date(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "?"


def _phases(row: RunRow) -> str:
    text = f"done {' '.join(row.done)}" if row.done else "none done"
    return f"{text}; not finished: {' '.join(row.pending)}" if row.pending else text


def format_row(row: RunRow, indent: str = "", name: str | None = None) -> list[str]:
    """The run's line, then one line per evaluated phase: accuracy [95% CI], faithful share [95% CI]."""
    name = name or row.name
    if row.error:
        return [f"{indent}{name}  unreadable: {row.error}"]
    lines = [f"{indent}{name}  {_date(row.created)}  {row.model or '?'}  phases {_phases(row)}"]
    width = max((len(e.phase) for e in row.evals), default=0)
    for e in row.evals:
        n = e.accuracy.get("n")
        lines.append(f"{indent}    {e.phase:<{width}}  accuracy {_pct(e.accuracy)}  faithful {_pct(e.faithful)}"
                     + (f"  n={n}" if isinstance(n, int) else ""))
    if not row.evals:
        lines.append(f"{indent}    no evaluation finished yet")
    return lines


def format_listing(runs: list[RunRow], experiments: list[ExperimentRow], roots: list[Path]) -> str:
    where = ", ".join(f"{r}/" for r in roots)
    if not runs and not experiments:
        return f"no runs under {where} (make one with `kgreason run`)\n"
    lines = [f"{len(runs)} run(s) and {len(experiments)} experiment(s) under {where}, newest first; "
             "accuracy and faithful share with 95% Wilson score intervals"]
    # Runs and experiments interleaved by date, newest first, so the latest work is on top.
    entries: list[RunRow | ExperimentRow] = sorted([*runs, *experiments], key=lambda e: e.created or "", reverse=True)
    for entry in entries:
        if isinstance(entry, RunRow):
            lines += ["", *format_row(entry)]
            continue
        lines += ["", f"{entry.name}  {_date(entry.created)}  {entry.kind} experiment, {len(entry.arms)} arm-seed run(s)"]
        for arm in entry.arms:
            lines += format_row(arm, indent="  ", name=arm.name.removeprefix(f"{entry.name}/"))
    return "\n".join(lines) + "\n"


def to_json(runs: list[RunRow], experiments: list[ExperimentRow]) -> dict[str, Any]:
    return {"runs": [asdict(r) for r in runs], "experiments": [asdict(e) for e in experiments]}


def run_table(path: Path) -> dict[str, Any]:
    """The phase table `kgreason run` prints, as data (`kgreason run --json`): per evaluated phase
    accuracy and faithful share with their intervals, accuracy by hop, format failures, mean reward."""
    run = Run.load(path)
    summary = run.summary
    phases = summary.get("phases") if isinstance(summary.get("phases"), dict) else {}
    rows = []
    for phase, info in phases.items():
        if not (isinstance(info, dict) and info.get("done") and info.get("kind") == "eval"):
            continue
        figures = _eval_figures(run, phase, info)
        if figures is None:
            continue
        rows.append({"phase": figures.phase, "accuracy": figures.accuracy, "faithful": figures.faithful,
                     "by_hop": info.get("by_hop"), "format_failure": info.get("format_failure"),
                     "mean_reward": info.get("mean_reward"), "n": info.get("n")})
    done = [p for p, i in phases.items() if isinstance(i, dict) and i.get("done")]
    return {"run": run.name, "run_dir": str(run.root), "report": str(run.root / "report.md"),
            "phases_done": done, "table": rows}


# --- command -----------------------------------------------------------------------------------
def add_list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", action="append", metavar="DIR",
                   help="a runs folder, an experiment folder or one run folder (repeatable; default: runs/ and "
                        "experiments/, those that exist)")
    p.add_argument("--json", action="store_true", help="print one JSON object {runs, experiments} instead of the table")


def cmd_runs_list(args: argparse.Namespace) -> int:
    if args.runs:
        roots = [Path(r) for r in args.runs]
        for root in roots:
            if not root.is_dir():
                raise InputError(f"--runs {root}: not a folder")
    else:
        roots = [Path(r) for r in DEFAULT_ROOTS if Path(r).is_dir()]
    runs, experiments = list_runs(roots)
    if args.json:
        print(json.dumps(to_json(runs, experiments), ensure_ascii=False))
    else:
        print(format_listing(runs, experiments, roots or [Path(DEFAULT_ROOTS[0])]), end="")
    return 0
