from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections import Counter, deque
from pathlib import Path

import pytest

from conftest_tasks import SMALL_SPLITS, builtin_kg, small_dataset, tiny_kg
from kgreason import cli
from kgreason.io import InputError
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.kg.kgjson import save_kg
from kgreason.records import LETTERS, Task
from kgreason.tasks.baselines import BASELINES, BaselineContext
from kgreason.tasks.distractors import Candidate, DistractorBalancer, ItemPlan
from kgreason.tasks.format import format_chain, format_fact, format_trace
from kgreason.tasks.generate import (
    DEFAULT_SPLITS,
    SplitSpec,
    TaskConfig,
    generate,
    load_tasks,
    make_task,
    mentions,
    save_tasks,
    try_make_task,
    write_dataset,
)
from kgreason.tasks.synthetic import dense_kg, synthetic_kg

TRAIN = ("train_easy", "train_hard")


def assert_well_posed(kg, task: Task) -> None:
    reached = kg.follow(task.start, task.relation_chain)
    hits = [lt for lt, eid in task.option_ids.items() if eid in reached]
    assert hits == [task.answer_star], (task.id, hits)
    assert task.option_ids[task.answer_star] == task.answer_id == task.path_star.entities[-1]
    assert {task.options[lt] for lt in LETTERS} == {kg.label(task.option_ids[lt]) for lt in LETTERS}
    assert len({v.lower() for v in task.options.values()}) == 4
    # the gold path is a real, non-revisiting path along the stated chain
    assert task.path_star.entities[0] == task.start
    assert len(set(task.path_star.entities)) == len(task.path_star.entities) == task.hop_len + 1
    assert [r for _, r, _ in task.path_star.edges] == task.relation_chain
    assert all(kg.has_edge(*e) for e in task.path_star.edges)
    # the question names the start and every phrase in order, and no option
    pos = task.question.index(kg.label(task.start))
    for rel in task.relation_chain:
        pos = task.question.index(kg.phrase(rel), pos)
    assert not any(mentions(task.question, text) for text in task.options.values())
    # distractors share the answer's type (the built-in graph is typed)
    answer_type = kg.entities[task.answer_id].type
    assert all(kg.entities[eid].type == answer_type for eid in task.option_ids.values())
    assert task.reference_trace == format_trace(kg, task.path_star.edges)
    assert task.reference_trace.startswith(f"1. {kg.label(task.start)} ")
    # the question numbers the chain; the prompt lists the options as the answer line repeats them
    assert format_chain(kg, task.relation_chain) in task.question
    assert task.question in task.prompt
    options = "Options:\n" + "\n".join(f"{task.options[lt]} ({lt})" for lt in LETTERS)
    assert task.prompt.endswith(options), task.prompt
    # no format hint in the user prompt: the system prompt carries it
    assert "ANSWER:" not in task.prompt and "TRACE:" not in task.prompt


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_every_generated_item_is_well_posed(mode: str) -> None:
    kg, data = builtin_kg(), small_dataset(mode)
    for split, tasks in data.splits.items():
        assert tasks, split
        for task in tasks:
            assert_well_posed(kg, task)
            assert task.mode == mode and bool(task.context_facts) == (mode == "open")


def test_sizes_and_hop_ranges() -> None:
    data = small_dataset()
    for spec in SMALL_SPLITS:
        assert len(data.splits[spec.name]) == spec.size, spec.name
        assert {t.hop_len for t in data.splits[spec.name]} == set(spec.hop_lengths()), spec.name
    assert data.manifest["counts"]["facts"] == len(builtin_kg().edges)
    # the defaults the CLI and `TaskConfig()` use (generated at full size in the slow tests)
    assert [(s.name, s.size, s.min_hops, s.max_hops, s.held_out) for s in DEFAULT_SPLITS] == [
        ("eval", 300, 4, 5, True), ("train_easy", 1500, 1, 3, False), ("train_hard", 600, 4, 5, False)]
    assert TaskConfig().splits == DEFAULT_SPLITS and TaskConfig().max_context_facts == 24
    assert TaskConfig().strict_distractors == "held_out"


class _Stop(Exception):
    pass


def test_generate_flags_default_to_the_config_task_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kgreason tasks generate` with no options asks the generator for exactly `TaskConfig()`, and
    the data stage's sizes are the same: all three read the defaults in kgreason/tasks/defaults.py."""
    from kgreason.tasks import commands
    from kgreason.tasks import defaults as config

    save_kg(tiny_kg(), tmp_path / "kg.json")
    args = cli.build_parser().parse_args(["tasks", "generate", "--kg", str(tmp_path / "kg.json"),
                                          "--out", str(tmp_path / "out")])
    assert (args.eval_size, args.easy_size, args.hard_size) == tuple(s.size for s in config.DEFAULT_SPLITS)
    assert (args.mode, args.max_context_facts, args.attempts_per_item, args.cover_eval_edges,
            args.strict_distractors) == (config.TASK_MODE, config.TASK_MAX_CONTEXT_FACTS,
                                         config.TASK_ATTEMPTS_PER_ITEM, config.TASK_COVER_EVAL_EDGES,
                                         config.TASK_STRICT_DISTRACTORS)
    seen: list[TaskConfig] = []

    def fake_generate(kg: KnowledgeGraph, task_config: TaskConfig, **_: object) -> None:
        seen.append(task_config)
        raise _Stop

    monkeypatch.setattr("kgreason.tasks.generate.generate", fake_generate)
    with pytest.raises(_Stop):
        commands.generate_command(args)
    assert seen == [TaskConfig()] and seen[0].splits == DEFAULT_SPLITS == config.DEFAULT_SPLITS
    data = config.DataOptions()
    assert (data.mode, data.eval_size, data.train_easy, data.train_hard) == (
        config.TASK_MODE, *(s.size for s in config.DEFAULT_SPLITS))


def test_letters_are_exactly_balanced() -> None:
    for split, tasks in small_dataset().splits.items():
        counts = Counter(t.answer_star for t in tasks)
        assert set(counts) == set(LETTERS)
        assert max(counts.values()) - min(counts.values()) <= 1, (split, counts)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_eval_is_held_out_from_training(mode: str) -> None:
    splits = small_dataset(mode).splits
    train = [t for name in TRAIN for t in splits[name]]
    questions = {t.question for t in train}
    paths = {tuple(t.path_star.edges) for t in train}
    keys = {(t.start, tuple(t.relation_chain)) for t in train}
    for t in splits["eval"]:
        assert t.question not in questions
        assert tuple(t.path_star.edges) not in paths
        assert (t.start, tuple(t.relation_chain)) not in keys


def test_eval_edges_are_taught() -> None:
    data = small_dataset()
    facts = {(f["head"], f["relation"], f["tail"]) for f in data.facts}
    eval_edges = {e for t in data.splits["eval"] for e in t.path_star.edges}
    assert eval_edges <= facts
    asked = {e for name in TRAIN for t in data.splits[name] for e in t.path_star.edges}
    # shorter training questions are steered onto eval edges (up to half of train_easy, one
    # distinct edge each): nearly all are asked about too where the quota allows (default sizes)
    steered = int(TaskConfig().cover_eval_edges * len(data.splits["train_easy"]))
    assert len(eval_edges & asked) >= min(0.95 * len(eval_edges), steered)
    ho = data.manifest["held_out_edges"]
    assert ho["taught_by_facts"] == ho["distinct"] == len(eval_edges)


def test_facts_restate_each_edge() -> None:
    kg, data = builtin_kg(), small_dataset()
    for f, e in zip(data.facts, kg.edges, strict=True):
        assert (f["head"], f["relation"], f["tail"]) == (e.head, e.relation, e.tail)
        assert f["text"] == format_fact(kg, e)
        assert f"{f['prompt']} {f['completion']}".endswith(f["text"])


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    kg = builtin_kg()
    config = TaskConfig(seed=7, splits=(SplitSpec("eval", 30, 4, 5, True), SplitSpec("train_easy", 45, 1, 3)))
    a = write_dataset(generate(kg, config), tmp_path / "a")
    b = write_dataset(generate(kg, config), tmp_path / "b")
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    c = generate(kg, TaskConfig(seed=8, splits=config.splits))
    assert [t.question for t in c.splits["eval"]] != [json.loads(x)["question"] for x in a["eval"].read_text().splitlines()]


def test_files_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Set iteration order changes with PYTHONHASHSEED; the files must not."""
    script = (
        "import sys; from kgreason.kg.builtin import build_devops_kg; "
        "from kgreason.tasks.generate import *; "
        "c = TaskConfig(seed=3, mode='open', splits=(SplitSpec('eval', 40, 4, 5, True), SplitSpec('train_easy', 40, 1, 3))); "
        "write_dataset(generate(build_devops_kg(seed=0), c), sys.argv[1])"
    )
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        outs.append(out)
    for name in ("eval.jsonl", "train_easy.jsonl", "facts.jsonl", "manifest.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def _context_triples(kg, task: Task) -> list[tuple[str, str, str]]:
    """The task's context facts as KG edges (KeyError: a fact that is no edge of the graph)."""
    fact_edge = {format_fact(kg, e): (e.head, e.relation, e.tail) for e in kg.edges}
    return [fact_edge[f] for f in task.context_facts]


def _context_depths(start: str, triples: list[tuple[str, str, str]]) -> dict[str, int]:
    """Directed BFS depth of each entity below the start over the context facts."""
    depth, queue = {start: 0}, deque([start])
    while queue:
        node = queue.popleft()
        for h, _, t in triples:
            if h == node and t not in depth:
                depth[t] = depth[node] + 1
                queue.append(t)
    return depth


def _context_follow(start: str, chain: list[str], triples: list[tuple[str, str, str]]) -> set[str]:
    frontier = {start}
    for rel in chain:
        frontier = {t for h, r, t in triples if h in frontier and r == rel}
    return frontier


def test_open_mode_context_is_bounded_and_contains_the_gold_path() -> None:
    kg, data = builtin_kg(), small_dataset("open")
    for split, tasks in data.splits.items():
        for task in tasks:
            assert 0 < len(task.context_facts) <= 24
            assert len(set(task.context_facts)) == len(task.context_facts)
            assert {format_fact(kg, e) for e in task.path_star.edges} <= set(task.context_facts)
            assert "Facts:\n" + "\n".join(task.context_facts) + "\n\n" in task.prompt
            triples = _context_triples(kg, task)  # every fact, decoys included, is a real KG edge
            # following the chain inside the context alone also reaches exactly the answer
            reached = _context_follow(task.start, task.relation_chain, triples)
            assert [lt for lt, eid in task.option_ids.items() if eid in reached] == [task.answer_star], (split, task.id)


def test_open_eval_context_mentions_every_option_once_at_the_same_depth() -> None:
    """Each distractor has a decoy path from the start of the answer's length: only the chain
    tells the options apart (no option is mentioned more often, earlier-reached or deeper)."""
    kg, data = builtin_kg(), small_dataset("open")
    for task in data.splits["eval"]:
        triples = _context_triples(kg, task)
        assert len(triples) <= data.manifest["config"]["max_context_facts"] == 24
        mentions_of = Counter(x for h, _, t in triples for x in (h, t))
        depth = _context_depths(task.start, triples)
        for lt, eid in task.option_ids.items():
            assert mentions_of[eid] == 1, (task.id, lt, eid)
            assert depth.get(eid) == task.hop_len, (task.id, lt, eid, depth.get(eid))
        # one decoy path per distractor: every fact lies on a walk from the start (no stray facts)
        assert set(depth) == {x for h, _, t in triples for x in (h, t)}
        # the decoys end with the stated last relation, like the gold path
        last = {t: r for _, r, t in triples if t in task.option_ids.values()}
        assert set(last.values()) == {task.relation_chain[-1]}, task.id
    # sets of decoys that could not keep one depth per entity were rejected and counted
    assert data.manifest["rejections"]["eval"]["crossing_decoys"] > 0


def test_held_out_decoys_keep_one_depth_per_entity() -> None:
    """The balancer of an open-mode held-out split never picks a decoy that reaches a gold-path
    entity at another depth (a shortcut to the answer) or runs through another option."""
    gold = [("s", "r1", "a"), ("a", "r2", "b"), ("b", "r3", "ans")]
    decoys = {
        "x1": [("s", "r1", "a"), ("a", "r4", "d"), ("d", "r3", "x1")],  # shares a, at depth 1 too
        "x2": [("s", "r5", "e"), ("e", "r2", "f"), ("f", "r3", "x2")],
        "x3": [("s", "r5", "e"), ("e", "r6", "g"), ("g", "r3", "x3")],
        "x4": [("s", "r4", "b"), ("b", "r6", "h"), ("h", "r3", "x4")],  # b at depth 1: ans 2 facts deep
        "x5": [("s", "r5", "x2"), ("x2", "r2", "k"), ("k", "r3", "x5")],  # runs through option x2
    }
    triples = gold + [e for d in decoys.values() for e in d]
    kg = KnowledgeGraph.from_parts([Entity(x, x.upper()) for x in dict.fromkeys(x for h, _, t in triples for x in (h, t))],
                                   [Relation(r, r) for r in dict.fromkeys(r for _, r, _ in triples)],
                                   [Edge(*e) for e in dict.fromkeys(triples)])

    def choose(names: str, layered: bool) -> set[str] | None:
        plan = ItemPlan("s", gold, "q", [Candidate(x, decoys[x], "structure") for x in names.split()])
        picked = DistractorBalancer(kg, BaselineContext(kg), "open", 24, layered=layered).choose(plan, random.Random(0))
        return None if picked is None else {c.entity for c in picked[0]}

    assert choose("x1 x2 x3 x4", layered=True) == {"x1", "x2", "x3"}
    assert choose("x1 x2 x4 x5", layered=True) is None  # x4 shortcuts the gold path, x5 crosses x2
    assert choose("x1 x2 x4 x5", layered=False) is not None  # training splits take what there is
    # closed mode shows no decoys: nothing to filter
    assert not DistractorBalancer(kg, BaselineContext(kg), "closed", 24, layered=True).layered


def test_open_training_contexts_branch_at_every_hop() -> None:
    """Training contexts add a fact leaving each gold-path entity by another relation (where the
    graph has one), so even 1-hop items make the model read the relation; held-out contexts are
    exactly the gold path and the decoys the balancer measured."""
    kg, data = builtin_kg(), small_dataset("open")
    share = {}
    for name, tasks in data.splits.items():
        possible = branching = 0
        for task in tasks:
            triples = _context_triples(kg, task)
            options = set(task.option_ids.values())
            for node, rel, _ in task.path_star.edges:
                if any(r != rel and x not in options for r, xs in kg.out_relations(node).items() for x in xs):
                    possible += 1
                    branching += any(h == node and r != rel for h, r, _ in triples)
        share[name] = branching / possible
    assert share["train_easy"] >= 0.95 and share["train_hard"] >= 0.95, share
    assert share["eval"] < 0.5, share


def test_manifest_counts_rejections_and_records_distractors() -> None:
    data = small_dataset()
    rejections = data.manifest["rejections"]
    # held-out items without three structure-matched distractors are rejected, and spare items
    # that would push a shortcut above chance are skipped
    assert rejections["eval"]["no_structure_matched_distractors"] > 0
    assert rejections["eval"]["shortcut_balance"] > 0
    assert "no_structure_matched_distractors" not in rejections["train_easy"]
    dist = data.manifest["distractors"]
    assert set(dist) == {s.name for s in SMALL_SPLITS}
    assert dist["eval"]["strict"] is True and dist["train_easy"]["strict"] is False
    assert dist["eval"]["distractor_kinds"] == {"structure": 3 * len(data.splits["eval"])}
    # 1-hop items cannot have structure-matched decoys: the training split falls back to weaker kinds
    assert sum(dist["train_easy"]["distractor_kinds"].values()) == 3 * len(data.splits["train_easy"])
    assert set(dist["train_easy"]["distractor_kinds"]) - {"structure"}
    rates = dist["eval"]["expected_shortcut_rates"]
    balanced = {name for name, b in BASELINES.items() if b.balanced and not b.open_only}
    assert set(rates) == balanced
    # structure-matched options all have the answer's type and all end a k-hop walk from the start:
    # those rules tie on every item; the rest are balanced to the limit, most of them near chance
    assert rates["type_match"] == rates["reachable_in_k_hops"] == 0.25
    assert max(rates.values()) <= 0.35 and sum(rates.values()) / len(rates) <= 0.28, rates
    assert data.manifest["config"]["strict_distractors"] == "held_out"


def test_strict_distractors_everywhere() -> None:
    """--strict-distractors all: training splits get structure-matched decoys too, so 1-hop items
    (whose same-relation tails the chain reaches) and 2-hop items are rejected."""
    splits = (SplitSpec("eval", 16, 4, 5, True), SplitSpec("train_easy", 24, 1, 3))
    data = generate(builtin_kg(), TaskConfig(seed=1, splits=splits, strict_distractors="all"))
    for name in ("eval", "train_easy"):
        assert data.manifest["distractors"][name]["strict"] is True
        assert set(data.manifest["distractors"][name]["distractor_kinds"]) == {"structure"}
    # on the strictly typed built-in graph only 3-hop chains can deviate early enough
    assert {t.hop_len for t in data.splits["train_easy"]} == {3}
    assert data.manifest["rejections"]["train_easy"]["no_structure_matched_distractors"] > 0


def test_dense_graph_terminates_and_reports_rejections() -> None:
    kg = dense_kg(12)
    config = TaskConfig(seed=0, attempts_per_item=10,
                        splits=(SplitSpec("eval", 8, 4, 5, True), SplitSpec("train_easy", 8, 1, 3)))
    data = generate(kg, config)
    assert len(data.splits["eval"]) < 8
    rejected = data.manifest["rejections"]
    assert rejected["eval"].get("no_structure_matched_distractors", 0) > 0
    assert rejected["train_easy"].get("too_few_distractors", 0) > 0
    # bounded: a strict split plans (1 + overgenerate) x its size, each with `attempts_per_item` tries
    extra = 1 + config.overgenerate
    assert sum(rejected["eval"].values()) <= config.attempts_per_item * math.ceil(8 * extra)
    assert sum(rejected["train_easy"].values()) <= config.attempts_per_item * 8
    for task in data.splits["train_easy"]:  # whatever could be made is still well posed
        reached = kg.follow(task.start, task.relation_chain)
        assert [lt for lt, eid in task.option_ids.items() if eid in reached] == [task.answer_star]


def test_generate_command_fails_in_one_line_when_eval_is_empty(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    save_kg(dense_kg(12), tmp_path / "dense.json")
    out = tmp_path / "out"
    rc = cli.main(["tasks", "generate", "--kg", str(tmp_path / "dense.json"), "--out", str(out),
                   "--eval-size", "4", "--easy-size", "4", "--hard-size", "0", "--attempts-per-item", "5"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("kgreason: error: ")
    assert "held-out split 'eval'" in err and "no_structure_matched_distractors" in err
    assert not out.exists() or not any(out.iterdir())


def test_make_task_from_a_chosen_start_and_chain() -> None:
    kg = builtin_kg()
    ref = small_dataset().splits["eval"][0]
    task = make_task(kg, ref.start, ref.relation_chain, random.Random(0), mode="open")
    assert task is not None
    assert_well_posed(kg, task)
    assert task.context_facts
    reasons: list[str] = []
    assert make_task(kg, ref.start, ["no_such_relation"], random.Random(0), reasons=reasons) is None
    assert "unknown relation" in reasons[0]


def test_make_task_explains_why_an_item_cannot_be_well_posed() -> None:
    # every tool is reached by caused_by -> fixed_by -> uses_tool from TLSHandshakeError
    task, reason = try_make_task(tiny_kg(), "tls", ["caused_by", "fixed_by", "uses_tool"], random.Random(0))
    assert task is None and reason == "too_few_distractors"


def test_large_sparse_graph_generates_quickly_enough_to_test() -> None:
    kg = synthetic_kg(50_000, seed=0)
    data = generate(kg, TaskConfig(seed=0, splits=(SplitSpec("eval", 40, 4, 5, True),)))
    assert len(data.splits["eval"]) == 40
    for task in data.splits["eval"]:
        reached = kg.follow(task.start, task.relation_chain)
        assert [lt for lt, eid in task.option_ids.items() if eid in reached] == [task.answer_star]


HOBBY = {
    "id": "eval_0001", "split": "eval", "hop_len": 2,
    "question": "What is the root cause of TLSHandshakeError?",
    "options": {"A": "SyncNTP", "B": "RotateCertificate", "C": "chronyc", "D": "helm"},
    "answer_star": "A",
    "path_star": {"entities": ["tls", "skew", "ntp"],
                  "edges": [{"src": "tls", "rel": "caused_by", "dst": "skew"},
                            {"src": "skew", "rel": "fixed_by", "dst": "ntp"}]},
    "prompt": "Question: What is the root cause of TLSHandshakeError?\nA) SyncNTP ...",
}


def test_hobby_task_files_load_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "hobby_eval.jsonl"
    path.write_text(json.dumps(HOBBY) + "\n")
    (task,) = load_tasks(path)
    assert task.hop_len == 2 and task.answer_star == "A" and task.options["C"] == "chronyc"
    assert task.start == "tls" and task.answer_id == "ntp"
    assert task.relation_chain == ["caused_by", "fixed_by"]
    save_tasks([task], tmp_path / "again.jsonl")
    assert load_tasks(tmp_path / "again.jsonl")[0].to_dict() == task.to_dict()


@pytest.mark.parametrize(("line", "expected"), [
    ("{not json", "malformed JSON"),
    (json.dumps({k: v for k, v in HOBBY.items() if k != "options"}), "missing field(s) ['options']"),
    (json.dumps({**HOBBY, "answer_star": "E"}), "answer_star 'E'"),
    ("[1, 2]", "expected a JSON object"),
])
def test_bad_task_lines_name_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(HOBBY) + "\n" + line + "\n")
    with pytest.raises(InputError) as err:
        load_tasks(path)
    assert f"{path}:2" in str(err.value) and expected in str(err.value)


def test_bad_config_is_an_input_error() -> None:
    with pytest.raises(InputError):
        TaskConfig(mode="sideways")
    with pytest.raises(InputError):
        TaskConfig(splits=(SplitSpec("eval", 10, 3, 2),))
    with pytest.raises(InputError, match="strict_distractors"):
        TaskConfig(strict_distractors="some")


# Digests of the split files for seed 0 on the built-in graph, as generated by 45716ce (before the
# generator's speed-ups: the per-graph walk index, per-option baseline scores, the image memo).
# Published figures rest on the data of a seed staying the same: a change that moves these
# digests changes every dataset users made with that seed, so it must be deliberate, documented,
# and the digests updated with it.
PUBLISHED_DIGESTS = {
    ("multiple_choice", "closed"): "188ded13d3f58367f4e95608e180db42",
    ("multiple_choice", "open"): "dae5a6ffccc8bf747e036c07412af481",
    # free form's closed-book held-out split is screened against the graph's rules since 2026-12-07
    # (tasks/screen.py, then with the partial-chain walks and two held-out probes): its eval file
    # changed then, deliberately; the training files did not
    ("free_form", "closed"): "c0447b78df11023c4d321671d2f33d50",
}


@pytest.mark.parametrize("family, mode", list(PUBLISHED_DIGESTS))
def test_a_seed_gives_the_files_it_always_gave(family: str, mode: str, tmp_path: Path) -> None:
    import hashlib

    splits = (SplitSpec("eval", 40, 4, 5, held_out=True), SplitSpec("train_easy", 40, 1, 3),
              SplitSpec("train_hard", 20, 4, 5))
    write_dataset(generate(builtin_kg(0), TaskConfig(seed=0, mode=mode, family=family, splits=splits)), tmp_path)
    digest = hashlib.sha256()
    for name in ("eval.jsonl", "train_easy.jsonl", "train_hard.jsonl"):
        digest.update((tmp_path / name).read_bytes())
    assert digest.hexdigest()[:32] == PUBLISHED_DIGESTS[family, mode]


def test_relations_sharing_a_phrase_are_refused_before_any_item(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A question names its chain by phrases: two relations that read the same ("has the genre", a
    film's and a TV programme's in FB15k-237) let an item have two right options as written, however
    unique its answer is along the relations' ids. Generation refuses such a graph, from the CLI with
    exit 2 and the phrase named."""
    from kgreason.tasks.generate import generate, shared_phrases

    ents = [Entity(f"e{i}", f"E{i}", "thing") for i in range(6)]
    rels = [Relation("film_genre", "has the genre"), Relation("tv_genre", "has the  Genre"), Relation("uses", "uses")]
    edges = [Edge("e0", "film_genre", "e1"), Edge("e0", "tv_genre", "e2"), Edge("e1", "uses", "e3"),
             Edge("e2", "uses", "e4"), Edge("e3", "uses", "e5")]
    kg = KnowledgeGraph.from_parts(ents, rels, edges, name="shared")
    assert shared_phrases(kg) == {"has the genre": ["film_genre", "tv_genre"]}
    with pytest.raises(InputError, match="'has the genre': film_genre, tv_genre"):
        generate(kg)
    path = tmp_path / "kg.json"
    save_kg(kg, path)
    assert cli.main(["tasks", "generate", "--kg", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "more than one right answer" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written
    # distinct phrases: no refusal
    assert shared_phrases(KnowledgeGraph.from_parts(ents, rels[:1] + rels[2:], edges[:1] + edges[2:])) == {}
