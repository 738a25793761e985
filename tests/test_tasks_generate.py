from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest_tasks import builtin_kg, default_dataset, tiny_kg
from kgreason.io import InputError
from kgreason.records import LETTERS, Task
from kgreason.tasks.format import format_fact, format_trace
from kgreason.tasks.generate import (
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
    assert "TRACE:" in task.prompt and "ANSWER:" in task.prompt and task.question in task.prompt


def test_every_generated_item_is_well_posed() -> None:
    kg, data = builtin_kg(), default_dataset()
    for split, tasks in data.splits.items():
        assert tasks, split
        for task in tasks:
            assert_well_posed(kg, task)


def test_default_sizes_and_hop_ranges() -> None:
    data = default_dataset()
    assert len(data.splits["eval"]) == 300
    assert {t.hop_len for t in data.splits["eval"]} == {4, 5}
    assert {t.hop_len for t in data.splits["train_hard"]} == {4, 5}
    assert {t.hop_len for t in data.splits["train_easy"]} == {1, 2, 3}
    assert data.manifest["counts"]["facts"] == len(builtin_kg().edges)


def test_letters_are_exactly_balanced() -> None:
    for split, tasks in default_dataset().splits.items():
        counts = Counter(t.answer_star for t in tasks)
        assert set(counts) == set(LETTERS)
        assert max(counts.values()) - min(counts.values()) <= 1, (split, counts)


def test_eval_is_held_out_from_training() -> None:
    splits = default_dataset().splits
    train = [t for name in TRAIN for t in splits[name]]
    questions = {t.question for t in train}
    paths = {tuple(t.path_star.edges) for t in train}
    keys = {(t.start, tuple(t.relation_chain)) for t in train}
    for t in splits["eval"]:
        assert t.question not in questions
        assert tuple(t.path_star.edges) not in paths
        assert (t.start, tuple(t.relation_chain)) not in keys


def test_eval_edges_are_taught() -> None:
    data = default_dataset()
    facts = {(f["head"], f["relation"], f["tail"]) for f in data.facts}
    eval_edges = {e for t in data.splits["eval"] for e in t.path_star.edges}
    assert eval_edges <= facts
    asked = {e for name in TRAIN for t in data.splits[name] for e in t.path_star.edges}
    # shorter training questions are steered onto eval edges: nearly all are asked about too
    assert len(eval_edges & asked) >= 0.95 * len(eval_edges)
    ho = data.manifest["held_out_edges"]
    assert ho["taught_by_facts"] == ho["distinct"] == len(eval_edges)


def test_facts_restate_each_edge() -> None:
    kg, data = builtin_kg(), default_dataset()
    for f, e in zip(data.facts, kg.edges, strict=True):
        assert (f["head"], f["relation"], f["tail"]) == (e.head, e.relation, e.tail)
        assert f["text"] == format_fact(kg, e)
        assert f"{f['prompt']} {f['completion']}".endswith(f["text"])


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    kg = builtin_kg()
    config = TaskConfig(seed=7, splits=(SplitSpec("eval", 60, 4, 5, True), SplitSpec("train_easy", 90, 1, 3)))
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


def test_open_mode_context_is_bounded_and_contains_the_gold_path() -> None:
    kg, data = builtin_kg(), default_dataset("open")
    fact_edge = {format_fact(kg, e): e for e in kg.edges}
    for task in data.splits["eval"]:
        assert task.mode == "open"
        assert 0 < len(task.context_facts) <= 24
        assert len(set(task.context_facts)) == len(task.context_facts)
        assert {format_fact(kg, e) for e in task.path_star.edges} <= set(task.context_facts)
        for fact in task.context_facts:
            assert f"- {fact}" in task.prompt
        # every option is mentioned in the context, so "the option named in the facts" is no tell
        for text in task.options.values():
            assert any(mentions(f, text) for f in task.context_facts), (task.id, text)
        # following the chain inside the context alone also reaches exactly the answer
        sub = [fact_edge[f] for f in task.context_facts]
        frontier = {task.start}
        for rel in task.relation_chain:
            frontier = {e.tail for e in sub if e.head in frontier and e.relation == rel}
        assert [lt for lt, eid in task.option_ids.items() if eid in frontier] == [task.answer_star]


def test_dense_graph_terminates_and_reports_rejections() -> None:
    kg = dense_kg(12)
    config = TaskConfig(seed=0, splits=(SplitSpec("eval", 50, 4, 5, True), SplitSpec("train_easy", 50, 1, 3)))
    data = generate(kg, config)
    assert len(data.splits["eval"]) < 50
    rejected = data.manifest["rejections"]["eval"]
    assert rejected.get("too_few_distractors", 0) > 0
    assert sum(rejected.values()) <= config.attempts_per_item * 50
    for task in data.splits["train_easy"]:  # whatever could be made is still well posed
        reached = kg.follow(task.start, task.relation_chain)
        assert [lt for lt, eid in task.option_ids.items() if eid in reached] == [task.answer_star]


def test_make_task_from_a_chosen_start_and_chain() -> None:
    kg = builtin_kg()
    ref = default_dataset().splits["eval"][0]
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
