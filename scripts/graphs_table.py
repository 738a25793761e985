#!/usr/bin/env python3
"""Issue 28's table: the main job on several graphs, side by side, read from their run folders.

    python scripts/graphs_table.py runs/hobby-quick runs/wn18rr-quick runs/fb15k237-quick

One row per run: the graph's size, the strongest registered shortcut baseline on its held-out items
and the strongest walk that reads one stated relation only (scripts/partial_chain_mc.py; over the
prompt's facts in open book),
SFT and the final phase's accuracy with 95% intervals, the final faithful share, the final phase
against SFT paired by item, the share of 4-5 hop traces that claim as many hops as asked, the bar
(final lower bound >= the registered shortcut + 15 points, and beside it >= the walk + 15 points;
>= 40% faithful; paired lower bound > 0),
the wall time of all phases and the CPU each phase recorded. Every figure comes from the folders'
summary.json, config.json and eval/<phase>/ files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kgreason.evaluate.compare import load_eval, paired_difference
from kgreason.io import read_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from partial_chain_mc import walk_rates  # noqa: E402  (a script beside this one)

from kgreason.tasks.baselines import PARTIAL_WALKS  # noqa: E402


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def row(run: Path) -> list[str]:
    if not (run / "summary.json").is_file():
        return [run.name, "not run"] + [""] * 10
    summary = read_json(run / "summary.json")
    phases = summary.get("phases", {})
    config = read_json(run / "config.json")
    final = next((p for p in ("grpo", "dpo", "rsft") if f"{p}_eval" in phases), None)
    if final is None or "sft_eval" not in phases:
        return [run.name, "not finished"] + [""] * 10
    sft, last = load_eval(run / "eval" / "sft", "sft"), load_eval(run / "eval" / final, final)
    refs = last.metrics.get("references", {})
    shortcuts = {k.split(": ", 1)[1]: v["accuracy"]["mean"] for k, v in refs.items() if k.startswith("shortcut: ")}
    best = max(shortcuts, key=shortcuts.get) if shortcuts else None
    acc = phases[f"{final}_eval"]
    low = acc["accuracy_ci"][0]
    faithful = acc["faithful"]
    diff = paired_difference(sft, last, "correct")
    lengths = last.metrics.get("trace_length_by_hop", {})
    exact = [f"{h}: {pct(v['exact']['mean'])}" for h, v in sorted(lengths.items())]
    # the partial-chain walks judge free-form items only in the registry; read them here for every
    # family, over the prompt's facts in open book (what the model sees), over the graph otherwise.
    # Only those that read one stated relation count against the bar: a walk that follows two or
    # three of four or five relations does most of the composing itself (docs/tasks.md).
    one_relation = {n for n, (_, first, last) in PARTIAL_WALKS.items() if first + last == 1}
    walks = {name: prompt if prompt is not None else graph
             for name, (graph, prompt) in walk_rates(run / "data").items() if name in one_relation}
    walk = max(walks, key=walks.get)
    registered = shortcuts.get(best, 0.0) if best else 0.0
    # issue 28's bar is over the registered shortcuts; the walk, registered for free form only, is held
    # to the same 15 points beside it (it reads one stated relation: docs/tasks.md)
    bar = (low >= registered + 0.15, low >= walks[walk] + 0.15, faithful >= 0.40, diff.low > 0)
    kg = phases.get("data", {}).get("kg", {})
    wall = sum(float(p.get("wall_s") or 0) for p in phases.values())
    cpus = sorted({p["cpu"] for p in phases.values() if p.get("cpu")}) or ["not recorded"]
    graph = (config.get("pipeline") or {}).get("data", {}).get("kg") or run.name
    return [
        f"`{graph}` ({run.name})", f"{kg.get('entities', '?')} / {kg.get('edges', '?')}",
        f"{best} {pct(shortcuts[best])}" if best else "-", f"{walk} {pct(walks[walk])}",
        f"{pct(phases['sft_eval']['accuracy'])} [{pct(phases['sft_eval']['accuracy_ci'][0])}, "
        f"{pct(phases['sft_eval']['accuracy_ci'][1])}]",
        f"{final} {pct(acc['accuracy'])} [{pct(low)}, {pct(acc['accuracy_ci'][1])}]", pct(faithful),
        f"{100 * diff.diff:+.1f} [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]", ", ".join(exact),
        " / ".join("yes" if b else "no" for b in bar), f"{wall / 60:.0f} min", "; ".join(cpus),
    ]


def main(runs: list[str]) -> None:
    head = ["graph", "entities / edges", "strongest registered shortcut", "strongest one-relation walk",
            "SFT [95% CI]", "final [95% CI]", "faithful", "final - SFT (paired)", "traces with the hops asked",
            "bar: +15 over the registered shortcut / +15 over the walk / 40% faithful / paired > 0", "wall time", "CPU"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for run in runs:
        print("| " + " | ".join(row(Path(run))) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
