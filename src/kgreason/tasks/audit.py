"""Audit a task file against its graph: well-posedness, letter balance, leakage, oracle, shortcuts.

Works on our files and on the hobby project's (which state no relation chain: for those, any
chain of the item's hop length counts, i.e. every entity reachable in exactly hop_len steps).

`oracle_predictions` and `shortcut_predictions` are reusable: evaluation prints them next to a
model's accuracy as reference rows. The shortcut baselines (a registry, `tasks/baselines.py`)
never follow the stated chain: a dataset where one of them beats chance has a tell a model could
learn instead of reasoning, and `--strict` fails when one exceeds `--max-shortcut`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kgreason.families.base import mean_chance, shortcut_limit
from kgreason.io import iter_jsonl
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, Task
from kgreason.tasks.baselines import (
    BASELINES,
    bootstrap_interval,
)
from kgreason.tasks.defaults import DEFAULT_MAX_SHORTCUT
from kgreason.tasks.generate import mentions, task_from_record
from kgreason.tasks.views import (  # noqa: F401  (re-exported: callers import them from here)
    EntityIndex,
    FactReader,
    answer_key,
    baseline_context,
    item_views,
    oracle_predictions,
    reachable,
    shortcut_hits,
    shortcut_predictions,
    states_chain,
)

Triple = tuple[str, str, str]


def accuracy(tasks: Sequence[Task], preds: Sequence[str | None]) -> float:
    return sum(p == answer_key(t) for t, p in zip(tasks, preds, strict=True)) / len(tasks) if tasks else 0.0


# --- leakage ---------------------------------------------------------------------------------------
@dataclass
class Material:
    """What --against files teach: their tasks' keys and paths, and fact edges."""

    name: str
    questions: set[str] = field(default_factory=set)
    paths: set[tuple] = field(default_factory=set)
    start_chains: set[tuple] = field(default_factory=set)
    edges: set[Triple] = field(default_factory=set)
    tasks: list[Task] = field(default_factory=list)
    items: int = 0
    facts: int = 0


def _question_key(task: Task) -> str:
    return " ".join(task.question.lower().split())


def _path_key(task: Task) -> tuple:
    return tuple(task.path_star.edges) if task.path_star.edges else tuple(task.path_star.entities)


def _start_chain_key(task: Task, index: EntityIndex) -> tuple:
    return (index.start(task) or task.start, tuple(task.relation_chain))


def load_material(path: str | Path, index: EntityIndex) -> Material:
    """Read a training task file or a facts file (or a mix): records with options are tasks,
    records with head/relation/tail (or src/rel/dst) are facts."""
    mat = Material(name=str(path))
    for line, rec in iter_jsonl(path):
        if "options" in rec:
            task = task_from_record(rec, f"{path}:{line}")
            mat.tasks.append(task)
            mat.items += 1
            mat.questions.add(_question_key(task))
            mat.paths.add(_path_key(task))
            mat.start_chains.add(_start_chain_key(task, index))
            mat.edges.update(task.path_star.edges)
        else:
            h, r, t = (rec.get("head", rec.get("src")), rec.get("relation", rec.get("rel")),
                       rec.get("tail", rec.get("dst")))
            if not (h and r and t):
                from kgreason.io import InputError

                raise InputError(f"{path}:{line}: neither a task (no 'options') nor a fact (head/relation/tail)")
            mat.facts += 1
            mat.edges.add((str(h), str(r), str(t)))
    return mat


# --- the audit -------------------------------------------------------------------------------------
def _gold_path_valid(kg: KnowledgeGraph, task: Task, start: str | None) -> bool:
    edges = task.path_star.edges
    if not edges or start is None or edges[0][0] != start:
        return False
    if any(not kg.has_edge(*e) for e in edges):
        return False
    if any(edges[i][2] != edges[i + 1][0] for i in range(len(edges) - 1)):
        return False
    return [r for _, r, _ in edges] == list(task.relation_chain)


def audit_tasks(kg: KnowledgeGraph, tasks: Sequence[Task], against: Iterable[Material] = (),
                examples: int = 5, max_shortcut: float | None = None, seed: int = 0) -> dict:
    """Everything `kgreason tasks audit` reports, as a JSON-ready dict.

    Task files among `against` are the training material: they feed the answer-prior baselines.
    """
    index = EntityIndex(kg)
    against = list(against)
    ill_posed: list[dict] = []
    invalid_paths: list[str] = []
    named: list[str] = []
    unresolved = 0
    no_chain = 0
    for task in tasks:
        start = index.start(task)
        opts = index.options(task)
        unresolved += sum(eid is None for eid in opts.values())
        stated = states_chain(kg, task)
        no_chain += not stated
        reached = reachable(kg, task, start, stated) if start else set()
        hits = sorted(lt for lt, eid in opts.items() if eid is not None and eid in reached)
        if len(hits) != 1:
            ill_posed.append({"id": task.id, "options_reached": hits, "chain_stated": stated})
        if not _gold_path_valid(kg, task, start) or (task.path_star.entities and
                                                      opts.get(answer_key(task)) != index.resolve(task.path_star.entities[-1])):
            invalid_paths.append(task.id)
        if any(mentions(task.question, text) for text in (*task.options.values(), task.answer_label) if text):
            named.append(task.id)
    oracle = oracle_predictions(kg, tasks)
    train = [t for mat in against for t in mat.tasks]
    shortcuts = shortcut_hits(kg, tasks, train if train else None)
    report = {
        "items": len(tasks),
        "by_hop": dict(sorted(Counter(str(t.hop_len) for t in tasks).items())),
        "modes": dict(sorted(Counter(t.mode for t in tasks).items())),
        "chain_not_stated": no_chain,
        "ill_posed": len(ill_posed),
        "ill_posed_examples": ill_posed[:examples],
        "invalid_gold_path": len(invalid_paths),
        "invalid_gold_path_examples": invalid_paths[:examples],
        "option_named_in_question": len(named),
        "unresolved_options": unresolved,
        "letters": {lt: sum(t.answer_star == lt for t in tasks) for lt in LETTERS},
        "overlap": [_overlap(tasks, mat, index) for mat in against if mat.items],
        "untaught_edges": _untaught(tasks, against),
        "oracle_accuracy": accuracy(tasks, oracle),
        "shortcut_accuracy": {name: sum(hits) / len(hits) if hits else 0.0 for name, hits in shortcuts.items()},
        "shortcuts": {name: _shortcut_row(name, hits, seed) for name, hits in shortcuts.items()},
        "max_shortcut": shortcut_limit(tasks, max_shortcut),
        "chance": mean_chance(tasks, len(kg.entities)) if tasks else 1 / len(LETTERS),
    }
    report["problems"] = problems(report)
    return report


def _shortcut_row(name: str, hits: Sequence[float], seed: int) -> dict:
    lo, hi = bootstrap_interval(hits, seed=seed)
    return {"accuracy": sum(hits) / len(hits) if hits else 0.0, "ci95": [lo, hi],
            "description": BASELINES[name].description if name in BASELINES else ""}


def _overlap(tasks: Sequence[Task], mat: Material, index: EntityIndex) -> dict:
    q = [t.id for t in tasks if _question_key(t) in mat.questions]
    p = [t.id for t in tasks if _path_key(t) in mat.paths]
    sc = [t.id for t in tasks if _start_chain_key(t, index) in mat.start_chains]
    return {"against": mat.name, "against_items": mat.items, "question": len(q), "gold_path": len(p),
            "start_chain": len(sc), "examples": sorted(set(q + p + sc))[:5]}


def _untaught(tasks: Sequence[Task], against: Sequence[Material]) -> dict | None:
    """Closed-mode path edges that no --against file teaches (None when no --against given)."""
    if not against:
        return None
    taught = set().union(*(m.edges for m in against))
    edges = {e for t in tasks if t.mode == "closed" for e in t.path_star.edges}
    missing = sorted(edges - taught)
    return {"edges": len(edges), "untaught": len(missing), "examples": [list(e) for e in missing[:5]]}


_KEY_NAMES = {"question": "question text", "gold_path": "gold path", "start_chain": "start+chain"}


def problems(report: dict) -> list[str]:
    """What makes `--strict` fail: anything ill posed or leaked, a shortcut above the limit, no items."""
    out = []
    if not report["items"]:
        out.append("the file holds no items")
    for key, what in (("ill_posed", "ill-posed items"), ("invalid_gold_path", "items whose gold path is not a KG path"),
                      ("option_named_in_question", "items whose question names an option")):
        if report[key]:
            out.append(f"{report[key]} {what}")
    for ov in report["overlap"]:
        for key in ("question", "gold_path", "start_chain"):
            if ov[key]:
                out.append(f"{ov[key]} items share their {_KEY_NAMES[key]} with {ov['against']}")
    un = report["untaught_edges"]
    if un and un["untaught"]:
        out.append(f"{un['untaught']} closed-book path edges are never taught by the --against files")
    limit = report.get("max_shortcut", DEFAULT_MAX_SHORTCUT)
    over = [f"{name} {100 * acc:.1f}%" for name, acc in report["shortcut_accuracy"].items() if acc > limit]
    if over:
        out.append(f"shortcut baselines above {100 * limit:.0f}%: " + ", ".join(over))
    return out


def format_report(path: str, report: dict) -> str:
    """The human-readable audit."""
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    lines = [f"audit of {path}: {report['items']} items",
             "  hop lengths: " + ", ".join(f"{h}: {n}" for h, n in report["by_hop"].items()),
             f"  chain not stated in question: {report['chain_not_stated']} (any chain of the hop length counts)",
             f"  ill-posed (options reached by the chain != 1): {report['ill_posed']}"]
    for ex in report["ill_posed_examples"]:
        lines.append(f"    e.g. {ex['id']}: options reached {ex['options_reached'] or 'none'}")
    lines += [f"  gold path not a KG path to the keyed answer: {report['invalid_gold_path']}",
              f"  question names an option: {report['option_named_in_question']}",
              f"  options not found in the graph: {report['unresolved_options']}",
              "  letters: " + "  ".join(f"{k} {v}" for k, v in report["letters"].items())]
    for ov in report["overlap"]:
        lines.append(f"  overlap with {ov['against']} ({ov['against_items']} items): question {ov['question']}, "
                     f"gold path {ov['gold_path']}, start+chain {ov['start_chain']}")
    un = report["untaught_edges"]
    lines.append("  closed-book edges never taught: " +
                 (f"{un['untaught']} of {un['edges']}" if un else "n/a (pass facts/train files with --against)"))
    lines.append(f"  KG-oracle accuracy: {pct(report['oracle_accuracy'])}")
    lines.append(f"  shortcut baselines (chance {pct(report['chance'])}, limit {pct(report['max_shortcut'])}), "
                 "expected accuracy with ties split evenly [95% interval]:")
    for name, row in sorted(report["shortcuts"].items(), key=lambda kv: -kv[1]["accuracy"]):
        lo, hi = row["ci95"]
        flag = "  OVER" if row["accuracy"] > report["max_shortcut"] else ""
        lines.append(f"    {name:<34} {pct(row['accuracy']):>6} [{pct(lo)}, {pct(hi)}]{flag}")
    lines.append("  problems: " + ("; ".join(report["problems"]) if report["problems"] else "none"))
    return "\n".join(lines)
