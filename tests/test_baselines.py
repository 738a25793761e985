"""The shortcut-baseline registry (tasks/baselines.py): every built-in rule on a hand-made item where
it must pick one specific option, and baselines registered from outside the package."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from conftest_tasks import tiny_kg
from kgreason import cli
from kgreason import registry as registry_module
from kgreason.io import InputError
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.kg.kgjson import save_kg
from kgreason.records import LETTERS, PathStar, Task
from kgreason.tasks import baselines
from kgreason.tasks.baselines import (
    BASELINES,
    BaselineContext,
    ItemView,
    best_indices,
    get_baseline,
    predict,
)
from kgreason.tasks.generate import SplitSpec, TaskConfig, generate, save_tasks, write_dataset

Triple = tuple[str, str, str]


def graph(triples: list[Triple], types: dict[str, str] | None = None) -> KnowledgeGraph:
    """A graph from (head, relation, tail) triples; labels are the ids, phrases the relation ids."""
    ids = list(dict.fromkeys(x for h, _, t in triples for x in (h, t)))
    rels = list(dict.fromkeys(r for _, r, _ in triples))
    return KnowledgeGraph.from_parts([Entity(x, x, (types or {}).get(x)) for x in ids],
                                     [Relation(r, r) for r in rels], [Edge(*e) for e in triples], name="hand")


def view(options: tuple[str, ...], *, start: str | None = "s", chain: tuple[str, ...] = (), hop_len: int | None = None,
         question: str = "", context: tuple[Triple, ...] = (), labels: tuple[str, ...] | None = None,
         offers_options: bool = True) -> ItemView:
    return ItemView(id="hand-0", start=start, chain=chain, letters=tuple(LETTERS[: len(options)]), options=options,
                    labels=labels or options, question=question, hop_len=hop_len or len(chain), context=context,
                    offers_options=offers_options)


@dataclass
class Case:
    name: str  # the baseline
    kg: KnowledgeGraph
    item: ItemView
    expected: str  # the only letter the rule may pick
    ctx: dict = field(default_factory=dict)  # BaselineContext fields
    id: str = ""


ANY = graph([("w", "r", "x"), ("x", "r", "y"), ("y", "r", "z"), ("q", "r", "s")])
TYPED = graph(
    [("s", "caused_by", "c1"), ("s", "caused_by", "c2"), ("c1", "fixed_by", "f1"), ("c2", "fixed_by", "f2"),
     ("c1", "fixed_by", "f3"), ("f1", "uses", "t1"), ("f2", "uses", "t2"), ("f3", "uses", "t3")],
    {"s": "symptom", "c1": "cause", "c2": "cause", "f1": "fix", "f2": "fix", "f3": "fix",
     "t1": "tool", "t2": "tool", "t3": "tool"})
# o: 3 edges, none incoming; i: 2 edges, both incoming
DEGREES = graph([("o", "r", "p1"), ("o", "r", "p2"), ("o", "r", "p3"), ("q1", "r", "i"), ("q2", "r", "i"),
                 ("w", "r", "q3"), ("p1", "r", "v")])
# p is one edge from s against the edges' direction; q is two edges from s along them
NEAR = graph([("s", "r", "m"), ("m", "r", "q"), ("p", "r", "s"), ("z1", "r", "z2")])
REACH = graph([("s", "r", "a"), ("a", "r2", "x"), ("s", "r", "y"), ("z", "r", "w")])
# a random walk from s ends at x half the time; y1 ends the most walks (two edges from b)
WALKS = graph([("s", "r", "a"), ("s", "r", "b"), ("a", "r", "x"), ("b", "r", "y1"), ("b", "r2", "y1"),
               ("b", "r", "y2"), ("b", "r", "y3"), ("z", "r", "y3")])
# f is the tail of 3 `fix` edges; g has more incoming edges, but only one of them `fix`
TAILS = graph([("h1", "fix", "f"), ("h2", "fix", "f"), ("h3", "fix", "f"), ("h4", "fix", "g"),
               *((f"k{i}", "other", "g") for i in range(4)), ("e1", "other", "e2")])
# r1, r2 reaches x from u1 and u2, w from u3, y only from the start
CHAINS = graph([("s", "r1", "m0"), ("m0", "r2", "y"), ("u1", "r1", "m1"), ("m1", "r2", "x"), ("u2", "r1", "m2"),
                ("m2", "r2", "x"), ("u3", "r1", "m3"), ("m3", "r2", "w"), ("z", "r3", "q")])
FIRST = graph([("s", "r1", "a"), ("a", "r9", "b"), ("b", "r9", "x"), ("s", "r2", "c"), ("c", "r9", "d"),
               ("d", "r9", "y")])
LAST_TWO = graph([("s", "r0", "u1"), ("u1", "r1", "m1"), ("m1", "r2", "x"), ("u2", "r1", "m2"), ("m2", "r2", "x"),
                  ("u3", "r1", "m3"), ("m3", "r2", "y"), ("v", "r2", "w"), ("z", "r0", "q")])

CHAIN4 = ("c1", "c2", "c3", "c4")


def partial_walk_graph(first: int, last: int) -> KnowledgeGraph:
    """Two 4-edge paths from s: to X with the chain's relations where the rule follows the chain and
    `x` elsewhere, to Y the other way round; the rule's walk ends at X only."""
    follows = [i < first or i >= 4 - last for i in range(4)]
    path_x = [(f"x{i}", CHAIN4[i] if f else "x", f"x{i + 1}") for i, f in enumerate(follows)]
    path_y = [(f"y{i}", "x" if f else CHAIN4[i], f"y{i + 1}") for i, f in enumerate(follows)]
    edges = [(("s" if h.endswith("0") else h), r, ("X" if t == "x4" else "Y" if t == "y4" else t))
             for h, r, t in (*path_x, *path_y)]
    return graph([*edges, ("w", "x", "W"), ("v", "x", "V")])


PARTIAL_CASES = [
    Case(name, partial_walk_graph(first, last), view(("Y", "X", "W", "V"), chain=CHAIN4, offers_options=False), "B")
    for name, (_, first, last) in baselines.PARTIAL_WALKS.items()
]

CASES = [
    *PARTIAL_CASES,
    Case("most_common_letter", ANY, view(("w", "x", "y", "z")), "C",
         {"letter_counts": Counter({"C": 5, "A": 2, "B": 1})}),
    Case("type_match", TYPED, view(("t1", "t2", "f2", "t3"), chain=("caused_by", "fixed_by")), "C"),
    Case("type_match", TYPED, view(("f1", "c2", "t1", "t2"), question="What is the root cause of s?", hop_len=1),
         "B", id="type named by the question"),
    Case("max_degree", DEGREES, view(("w", "o", "v", "i")), "B"),
    Case("max_in_degree", DEGREES, view(("w", "o", "v", "i")), "D"),
    Case("word_overlap", ANY,
         view(("w", "x", "y", "z"), question="Start at DiskFull and follow 1 hop: 1. is fixed by. Which entity?",
              labels=("RestartPod", "RotateCertificate", "SyncNTP", "CleanDisk")), "D"),
    Case("nearest_to_start", NEAR, view(("z1", "q", "p", "z2"), hop_len=2), "C"),
    Case("directed_nearest", NEAR, view(("z1", "q", "p", "z2"), hop_len=2), "B"),
    Case("reachable_in_k_hops", REACH, view(("x", "y", "a", "z"), hop_len=2), "A"),
    Case("random_walk_end", WALKS, view(("y2", "x", "y1", "z"), hop_len=2), "B"),
    Case("walk_count", WALKS, view(("y2", "x", "y1", "z"), hop_len=2), "C"),
    Case("train_answer_prior", ANY, view(("y", "z", "w", "x")), "D",
         {"train_answers": Counter({"x": 5, "y": 1}), "train_options": Counter({"x": 50, "y": 1})}),
    Case("train_answer_rate", ANY, view(("x", "y", "z", "w")), "B",
         {"train_answers": Counter({"x": 5, "y": 2}), "train_options": Counter({"x": 50, "y": 2, "z": 4})}),
    Case("train_rarest_option", ANY, view(("x", "y", "z", "w")), "D",
         {"train_answers": Counter(), "train_options": Counter({"x": 5, "y": 3, "z": 7, "w": 1})}),
    Case("last_relation_tail", TAILS, view(("g", "e1", "f", "e2"), chain=("other", "fix")), "C"),
    Case("chain_from_other_entities", CHAINS, view(("y", "w", "z", "x"), chain=("r1", "r2")), "D"),
    # r1, r2 reaches y, x and w from some entity; z, q and m0 from none (the start is not read)
    Case("chain_image_any_start", CHAINS, view(("z", "q", "x", "m0"), start=None, chain=("r1", "r2")), "C"),
    Case("first_relation_then_any", FIRST, view(("y", "x", "c", "d"), chain=("r1", "r2", "r9")), "B"),
    Case("last_two_relations", LAST_TWO, view(("w", "y", "x", "z"), chain=("r0", "r1", "r2")), "C"),
    Case("context_most_mentioned", ANY,
         view(("y", "x", "z", "w"), context=(("s", "r", "a"), ("a", "r", "x"), ("x", "r", "b"), ("x", "r2", "c"),
                                             ("s", "r", "y"), ("s", "r", "z"))), "B"),
    Case("context_least_mentioned", ANY,
         view(("x", "y", "w", "a"), context=(("s", "r", "a"), ("a", "r", "x"), ("x", "r", "b"), ("x", "r2", "c"),
                                             ("s", "r", "y"))), "C"),
    Case("context_deepest", ANY,
         view(("x", "y", "z", "a"), hop_len=3,
              context=(("s", "r", "a"), ("a", "r", "b"), ("b", "r", "x"), ("s", "r", "y"), ("y", "r", "z"))), "A"),
    Case("context_reached_from_start", ANY,
         view(("y", "x", "z", "w"), context=(("s", "r", "a"), ("a", "r", "x"), ("q", "r", "y"), ("q", "r", "z"),
                                             ("q", "r", "w"))), "B"),
    Case("context_random_walk_end", ANY,
         view(("y1", "y2", "z", "x"), hop_len=2,
              context=(("s", "r", "a"), ("s", "r", "b"), ("a", "r", "x"), ("b", "r", "y1"), ("b", "r", "y2"),
                       ("q", "r", "z"))), "D"),
    Case("context_first_mentioned", ANY,
         view(("x", "z", "y", "w"), context=(("q", "r", "y"), ("y", "r", "x"), ("x", "r", "z"), ("s", "r", "w"))),
         "C"),
    Case("context_last_mentioned", ANY,
         view(("x", "z", "y", "w"), context=(("q", "r", "y"), ("y", "r", "x"), ("x", "r", "z"), ("s", "r", "w"))),
         "D"),
    Case("context_last_relation", ANY,
         view(("z", "w", "x", "y"), chain=("r1", "r2"),
              context=(("s", "r1", "a"), ("a", "r2", "x"), ("s", "r1", "y"), ("y", "r3", "z"), ("q", "r1", "w"))),
         "C"),
    Case("context_chain_from_other_entities", ANY,
         view(("x", "y", "z", "w"), chain=("r1", "r2"),
              context=(("s", "r1", "a"), ("a", "r2", "x"), ("u", "r1", "b"), ("b", "r2", "y"), ("s", "r1", "c"),
                       ("c", "r3", "z"))), "B"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name + (f"[{c.id}]" if c.id else "") for c in CASES])
def test_baseline_picks_the_option_its_rule_names(case: Case) -> None:
    baseline = get_baseline(case.name)
    ctx = BaselineContext(case.kg, **case.ctx)
    scores = baseline.scores(case.item, ctx)
    assert scores is not None and len(scores) == len(case.item.options)
    # the pick is the rule's, not a tie-break's
    assert best_indices(scores) == [LETTERS.index(case.expected)], scores
    assert predict(baseline, case.item, ctx) == case.expected


def test_every_builtin_baseline_has_a_case() -> None:
    builtin = {name for name, b in BASELINES.items() if b.fn.__module__ == baselines.__name__}
    assert {c.name for c in CASES} == builtin


def test_context_baselines_do_not_apply_to_closed_items() -> None:
    open_only = [b for b in BASELINES.values() if b.open_only]
    assert {b.name for b in open_only} == {c.name for c in CASES if c.item.context}
    for b in open_only:
        assert b.scores(view(("x", "y", "z", "w"), chain=("r",)), BaselineContext(ANY)) is None, b.name


def test_partial_chain_walks_judge_free_form_items_only_and_never_the_whole_chain() -> None:
    for case in PARTIAL_CASES:
        b, ctx = get_baseline(case.name), BaselineContext(case.kg)
        assert not b.balanced and b.option_free_only, case.name  # multiple-choice files stay as they were
        assert b.scores(view(("Y", "X", "W", "V"), chain=CHAIN4), ctx) is None, case.name  # options offered
        # a 2-hop chain: the rules that would follow all of it, or none, do not apply
        short = view(("Y", "X", "W", "V"), chain=CHAIN4[:2], offers_options=False)
        _, first, last = baselines.PARTIAL_WALKS[case.name]
        assert (b.scores(short, ctx) is None) == (first + last >= 2), case.name


def test_training_baselines_need_training_files() -> None:
    item = view(("x", "y", "z", "w"))
    for name in ("train_answer_prior", "train_answer_rate", "train_rarest_option"):
        assert get_baseline(name).scores(item, BaselineContext(ANY)) is None, name


def test_ties_are_broken_per_item_not_always_first() -> None:
    b = get_baseline("max_degree")
    ctx = BaselineContext(ANY)
    picks = {predict(b, ItemView(id=f"t{i}", start="s", chain=(), letters=tuple(LETTERS), options=(None,) * 4,
                                 labels=("a", "b", "c", "d"), question="", hop_len=1), ctx) for i in range(40)}
    assert picks == set(LETTERS)


def test_unknown_baseline_suggests_the_closest_names() -> None:
    with pytest.raises(InputError, match=r"unknown shortcut baseline 'max_degre'; did you mean max_degree"):
        get_baseline("max_degre")
    with pytest.raises(InputError, match=r"registered: "):
        get_baseline("zzzz")


# --- baselines from outside the package ----------------------------------------------------------
PLUGIN = '''
from kgreason.tasks.baselines import register_baseline


@register_baseline("plugin_longest_label", "the option with the longest label (a test plugin)")
def longest_label(item, ctx):
    return [float(len(label)) for label in item.labels]
'''


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    """Restore the registry and the plugin flag after a test that loads plugins."""
    saved = dict(BASELINES)
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    yield
    BASELINES.clear()
    BASELINES.update(saved)
    sys.modules.pop("kgr_test_plugin", None)


def _tasks() -> list[Task]:
    """Three well-posed 2-hop items on tiny_kg (each has one fix among its options)."""
    def task(tid: str, options: dict[str, str], answer: str, path: list[str]) -> Task:
        rels = ["caused_by", "fixed_by"]
        edges = [(path[i], rels[i], path[i + 1]) for i in range(2)]
        return Task(id=tid, split="eval", hop_len=2, question="Start at TLSHandshakeError and follow 2 hops: "
                    "1. is caused by, 2. is fixed by. Which entity do you reach?", options=options, answer_star=answer,
                    path_star=PathStar(path, edges), prompt="", start="tls", relation_chain=rels)

    return [  # the longest label is the answer in p1 and p2, a cause in p3
        task("p1", {"A": "helm", "B": "kubectl", "C": "chronyc", "D": "RotateCertificate"}, "D",
             ["tls", "cert", "rotate"]),
        task("p2", {"A": "helm", "B": "DrainNode", "C": "certbot", "D": "kubectl"}, "B", ["tls", "cert", "drain"]),
        task("p3", {"A": "helm", "B": "certbot", "C": "SyncNTP", "D": "ClockSkew"}, "C", ["tls", "skew", "ntp"]),
    ]


def _audit_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kgreason")
    cli._add_tasks_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def test_the_manifest_names_the_baselines_it_balanced(registry, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """A baseline plugin joins the generator's balancer (so the same seed gives other files): the
    manifest names the balanced baselines, sorted, plugins included."""
    config = TaskConfig(seed=0, splits=(SplitSpec("eval", 4, 2, 2, held_out=True),))
    monkeypatch.delenv("KGREASON_PLUGINS", raising=False)
    before = generate(tiny_kg(), config, with_facts=False).manifest["balanced_baselines"]
    # closed mode: the open-only rules read context facts, which closed-book items do not have
    assert before == sorted(b.name for b in BASELINES.values() if b.balanced and not b.open_only)
    assert "plugin_longest_label" not in before
    (tmp_path / "kgr_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    monkeypatch.setenv("KGREASON_PLUGINS", "kgr_test_plugin")
    write_dataset(generate(tiny_kg(), config), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["balanced_baselines"] == sorted([*before, "plugin_longest_label"])


def test_plugin_from_kgreason_plugins_shows_up_in_the_audit(registry, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "kgr_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("KGREASON_PLUGINS", raising=False)
    assert "plugin_longest_label" not in BASELINES
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    monkeypatch.setenv("KGREASON_PLUGINS", " kgr_test_plugin ,")
    save_kg(tiny_kg(), tmp_path / "kg.json")
    tasks = _tasks()
    save_tasks(tasks, tmp_path / "eval.jsonl")
    assert _audit_cli(["tasks", "audit", str(tmp_path / "eval.jsonl"), "--kg", str(tmp_path / "kg.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["shortcuts"]["plugin_longest_label"]
    assert row["accuracy"] == pytest.approx(2 / 3)
    assert report["ill_posed"] == 0 and report["oracle_accuracy"] == 1.0
    assert row["description"] == "the option with the longest label (a test plugin)"
    assert len(row["ci95"]) == 2 and row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
    # over the limit (and named) under --strict
    assert _audit_cli(["tasks", "audit", str(tmp_path / "eval.jsonl"), "--kg", str(tmp_path / "kg.json"),
                       "--strict"]) == 1
    assert "plugin_longest_label 66.7%" in capsys.readouterr().out


def test_plugin_from_the_entry_point_group(registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "kgr_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("KGREASON_PLUGINS", raising=False)
    ep = importlib.metadata.EntryPoint("longest", "kgr_test_plugin", "kgreason.baselines")
    asked: list[str] = []

    def entry_points(group: str):
        asked.append(group)
        return [ep] if group == "kgreason.baselines" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    names = [b.name for b in baselines.active_baselines()]
    assert "kgreason.baselines" in asked and "plugin_longest_label" in names
    assert baselines.active_baselines(["plugin_longest_label"])[0].fn(view(("x", "yy")), BaselineContext(ANY)) == [1.0, 2.0]


def test_a_plugin_that_cannot_be_imported_is_an_input_error(registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGREASON_PLUGINS", "kgr_no_such_plugin_module")
    with pytest.raises(InputError, match="KGREASON_PLUGINS: cannot import 'kgr_no_such_plugin_module'"):
        baselines.load_plugins()


# --- docs/tasks.md lists the registry ------------------------------------------------------------
def test_docs_table_lists_every_registered_baseline() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "tasks.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- checked: baselines -->\n(.*?)<!-- end -->", text, re.DOTALL)
    assert m, "docs/tasks.md has no checked baselines table"
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in m.group(1).splitlines()
            if ln.startswith("|")][2:]
    builtin = [b for b in BASELINES.values() if b.fn.__module__ == baselines.__name__]
    assert rows == [[f"`{b.name}`", b.description, "yes" if b.balanced else "no",
                     "open" if b.open_only else "free form" if b.option_free_only else "both"]
                    for b in builtin]


def test_baselines_marked_per_option_score_each_option_alone() -> None:
    """The generator scores a candidate pool once for `per_option` baselines and picks out each
    distractor set's numbers: that is only right if an option's score never depends on which other
    options sit beside it, or in which order. Checked on real items with their options reshuffled
    and mixed with other entities of the graph, the context facts present or not."""
    import random

    from conftest_tasks import builtin_kg, small_dataset
    from kgreason.tasks.audit import item_views

    kg, data = builtin_kg(), small_dataset("open")
    tasks = data.splits["train_easy"][:20] + data.splits["eval"][:20]
    ctx = BaselineContext(kg, train_answers=Counter(t.answer_id for t in data.splits["train_hard"]),
                          train_options=Counter(x for t in data.splits["train_hard"] for x in t.option_ids.values()))
    marked = [b for b in BASELINES.values() if b.per_option]
    assert {b.name for b in marked} >= {"type_match", "nearest_to_start", "chain_from_other_entities", "word_overlap"}
    assert not any(b.open_only for b in marked)
    with pytest.raises(ValueError, match="cannot be per_option"):
        baselines.register_baseline("reads_context", "x", open_only=True, per_option=True)
    rng = random.Random(0)
    entities = sorted(kg.entities)
    for view in item_views(kg, tasks):
        pool = (*view.options, *rng.sample(entities, 8))
        wide = replace(view, options=pool, labels=tuple(kg.label(x) for x in pool),
                       letters=tuple(f"L{i}" for i in range(len(pool))), context=())
        for b in marked:
            every = b.scores(wide, ctx)
            for _ in range(3):
                picked = rng.sample(range(len(pool)), 4)
                # with the item's own context facts, which the pool view (as the generator builds it) lacks
                narrow = replace(wide, options=tuple(pool[i] for i in picked), letters=tuple(LETTERS),
                                 labels=tuple(wide.labels[i] for i in picked), context=view.context)
                got = b.scores(narrow, ctx)
                assert (got is None) == (every is None), b.name
                assert got is None or got == [every[i] for i in picked], (b.name, view.id)


def test_a_capped_walk_stops_at_the_same_entities_in_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BFS_CAP the k-hop frontier stops part way; it expands in sorted order, not in a set's
    order (which moves with the process's string hashing), so the same seed gives the same files."""
    kg = graph([("s", "r", "c"), ("s", "r", "a"), ("s", "r", "b"), ("a", "r", "x1"), ("a", "r", "x2"),
                ("b", "r", "y1"), ("b", "r", "y2"), ("c", "r", "z1"), ("c", "r", "z2")])
    monkeypatch.setattr(baselines, "BFS_CAP", 2)
    assert BaselineContext(kg).reachable_in_exactly("s", 2) == {"x1", "x2", "y1", "y2"}
