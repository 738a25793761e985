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

from kgreason.families import get_family
from kgreason.families.base import mean_chance, shortcut_limit
from kgreason.io import iter_jsonl
from kgreason.kg.graph import KnowledgeGraph
from kgreason.records import LETTERS, Task
from kgreason.tasks.baselines import (
    BASELINES,
    BaselineContext,
    ItemView,
    bootstrap_interval,
    expected_hits,
    predictions,
    tie_break,
)
from kgreason.tasks.defaults import DEFAULT_MAX_SHORTCUT
from kgreason.tasks.generate import mentions, task_from_record

Triple = tuple[str, str, str]


# --- resolving what an item names ------------------------------------------------------------------
class EntityIndex:
    """Option text / path entries -> entity id, by id, label or alias (case-insensitive)."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self.kg = kg
        self._tails: dict[str | None, list[str]] | None = None
        self._by_name: dict[str, list[str]] = {}
        for eid, ent in kg.entities.items():
            for name in ent.names():
                ids = self._by_name.setdefault(name.lower(), [])
                if eid not in ids:
                    ids.append(eid)

    def resolve(self, text: str) -> str | None:
        if text in self.kg.entities:
            return text
        ids = self._by_name.get(text.strip().lower(), [])
        return ids[0] if len(ids) == 1 else None

    def options(self, task: Task) -> dict[str, str | None]:
        """Key -> entity id of what a rule may pick: the options by letter, or, for a family that
        offers none (free form), every entity that is a tail of the last stated relation, keyed by
        its id (an answer must be one; a rule that knows the graph's types knows that much)."""
        if not get_family(task.family).offers_options:
            return {e: e for e in self.tails_of(task.relation_chain[-1] if task.relation_chain else None)}
        out: dict[str, str | None] = {}
        for letter, text in task.options.items():
            eid = task.option_ids.get(letter)
            out[letter] = eid if eid in self.kg.entities else self.resolve(text)
        return out

    def tails_of(self, relation: str | None) -> list[str]:
        """Entities with an incoming edge of `relation` (of any relation for None), sorted."""
        if self._tails is None:
            tails: dict[str | None, set[str]] = {None: set()}
            for e in self.kg.edges:
                tails.setdefault(e.relation, set()).add(e.tail)
                tails[None].add(e.tail)
            self._tails = {r: sorted(ts) for r, ts in tails.items()}
        return self._tails.get(relation, [])

    def start(self, task: Task) -> str | None:
        if task.start:
            return self.resolve(task.start)
        return self.resolve(task.path_star.entities[0]) if task.path_star.entities else None


def states_chain(kg: KnowledgeGraph, task: Task) -> bool:
    """Whether the question spells out the relation chain (every phrase, in order)."""
    if not task.relation_chain or any(r not in kg.relations for r in task.relation_chain):
        return False
    text = task.question.lower()
    pos = 0
    for rel in task.relation_chain:
        found = text.find(kg.phrase(rel).lower(), pos)
        if found < 0:
            return False
        pos = found + 1
    return True


def reachable(kg: KnowledgeGraph, task: Task, start: str, stated: bool) -> set[str]:
    """What the question's wording admits: the stated chain, or (no chain) any hop_len-step walk."""
    if stated:
        return kg.follow(start, task.relation_chain)
    frontier = {start}
    for _ in range(task.hop_len):
        frontier = {t for node in frontier for t in kg.successors(node)}
    return frontier


# --- oracle and shortcuts --------------------------------------------------------------------------
def _tie_break(task: Task, name: str, letters: Sequence[str]) -> str:
    """The baselines' deterministic pseudo-random pick among tied letters (ties score chance, not 'always A')."""
    letters = sorted(letters)
    return letters[tie_break(task.id, name, range(len(letters)))]


def oracle_predictions(kg: KnowledgeGraph, tasks: Sequence[Task]) -> list[str | None]:
    """The letter of the option the KG reaches from the start by the item's chain (None if none)."""
    index = EntityIndex(kg)
    preds: list[str | None] = []
    for task in tasks:
        start = index.start(task)
        if start is None:
            preds.append(None)
            continue
        reached = reachable(kg, task, start, states_chain(kg, task))
        hits = [lt for lt, eid in sorted(index.options(task).items()) if eid is not None and eid in reached]
        preds.append(hits[0] if len(hits) == 1 else (_tie_break(task, "oracle", hits) if hits else None))
    return preds


class FactReader:
    """Open-mode context sentences ("<head label> <relation phrase> <tail label>.") back to triples."""

    def __init__(self, kg: KnowledgeGraph, index: EntityIndex) -> None:
        self.kg = kg
        self.index = index
        phrases = {kg.phrase(r): r for r in kg.relations}
        self.phrases = sorted(phrases.items(), key=lambda kv: -len(kv[0]))

    def read(self, fact: str) -> Triple | None:
        text = fact.strip().removeprefix("- ").rstrip(".").strip()
        for phrase, rel in self.phrases:
            at = text.find(f" {phrase} ")
            while at >= 0:
                head = self.index.resolve(text[:at])
                tail = self.index.resolve(text[at + len(phrase) + 2:])
                if head and tail:
                    return (head, rel, tail)
                at = text.find(f" {phrase} ", at + 1)
        return None


def item_views(kg: KnowledgeGraph, tasks: Sequence[Task], index: EntityIndex | None = None) -> list[ItemView]:
    """What the shortcut baselines see of each task (context sentences read back to triples)."""
    index = index or EntityIndex(kg)
    reader = FactReader(kg, index)
    views = []
    for task in tasks:
        opts = index.options(task)
        letters = tuple(sorted(opts))
        context = tuple(t for t in (reader.read(f) for f in task.context_facts) if t is not None)
        chain = tuple(task.relation_chain) if states_chain(kg, task) else ()
        views.append(ItemView(id=task.id, start=index.start(task), chain=chain, letters=letters,
                              options=tuple(opts[lt] for lt in letters),
                              labels=tuple(task.options.get(lt) or (kg.label(opts[lt]) if opts[lt] else "") for lt in letters),
                              question=task.question,
                              hop_len=task.hop_len, context=context,
                              offers_options=get_family(task.family).offers_options))
    return views


def baseline_context(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None,
                     index: EntityIndex) -> BaselineContext:
    ctx = BaselineContext(kg, letter_counts=Counter(answer_key(t) for t in tasks))
    if train_tasks is not None:
        ctx.train_answers = Counter(t.answer_id or index.options(t).get(t.answer_star) for t in train_tasks)
        # Only offered options count as "offered" (free-form items offer none).
        ctx.train_options = Counter(x for t in train_tasks if get_family(t.family).offers_options
                                    for x in index.options(t).values() if x)
    return ctx


def answer_key(task: Task) -> str:
    """The key a rule's prediction is compared with (TaskFamily.answer_key): a letter, or an entity id."""
    return get_family(task.family).answer_key(task)


def shortcut_hits(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None = None,
                  names: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Every registered baseline's expected hit per task (ties split evenly: see `expected_hits`)."""
    index = EntityIndex(kg)
    ctx = baseline_context(kg, tasks, train_tasks, index)
    return expected_hits(item_views(kg, tasks, index), [answer_key(t) for t in tasks], ctx, names)


def shortcut_predictions(kg: KnowledgeGraph, tasks: Sequence[Task], train_tasks: Sequence[Task] | None = None,
                         names: Iterable[str] | None = None) -> dict[str, list[str | None]]:
    """Every registered shortcut baseline's letters for `tasks` (see `tasks/baselines.py`).

    `train_tasks` (the training files) enable the answer-prior baselines; a baseline that applies
    to none of the items is left out. Ties are broken pseudo-randomly per item.
    """
    index = EntityIndex(kg)
    ctx = baseline_context(kg, tasks, train_tasks, index)
    return predictions(item_views(kg, tasks, index), ctx, names)


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
