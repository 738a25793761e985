"""The shuffle test moves the correct letter (and every other option)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from conftest_eval import make_episode, make_task
from kgreason.evaluate.shuffle import (
    SHUFFLE_SUFFIX,
    chosen_entity,
    random_derangement,
    shuffle_report,
    shuffle_task,
    shuffle_tasks,
)


def test_derangement_never_fixes_a_position_and_covers_all_nine():
    rng = random.Random(0)
    seen = Counter()
    for _ in range(2000):
        p = random_derangement(4, rng)
        assert sorted(p) == [0, 1, 2, 3]
        assert all(p[i] != i for i in range(4))
        seen[tuple(p)] += 1
    assert len(seen) == 9  # !4 = 9 derangements, all reachable
    assert random_derangement(2, rng) == [1, 0]
    with pytest.raises(ValueError):
        random_derangement(1, rng)


@pytest.mark.parametrize("answer", ["A", "B", "C", "D"])
def test_shuffle_always_moves_the_correct_letter_and_keeps_the_entity(answer):
    rng = random.Random(7)
    task = make_task(1, answer=answer)
    for _ in range(200):
        s = shuffle_task(task, rng)
        assert s.answer_star != task.answer_star
        assert s.options[s.answer_star] == task.options[task.answer_star]
        assert s.option_ids[s.answer_star] == task.answer_id
        assert sorted(s.options.values()) == sorted(task.options.values())
        assert all(s.options[k] != task.options[k] for k in task.options)
        for k, v in s.options.items():
            assert f"{k}) {v}" in s.prompt
        assert s.id == task.id + SHUFFLE_SUFFIX


def test_shuffle_tasks_is_seeded_and_prompt_renderer_is_used():
    tasks = [make_task(i, answer="ABCD"[i % 4]) for i in range(20)]
    assert [t.answer_star for t in shuffle_tasks(tasks, 1)] == [t.answer_star for t in shuffle_tasks(tasks, 1)]
    out = shuffle_tasks(tasks, 1, render_prompt=lambda t: "P:" + t.answer_star)
    assert all(s.prompt == "P:" + s.answer_star for s in out)


def test_shuffle_report_detects_a_letter_memoriser():
    tasks = [make_task(i, answer="A") for i in range(40)]
    shuffled = shuffle_tasks(tasks, 0)
    # a model that always says "A": right on every original, wrong on every shuffled item
    orig = {t.id: make_episode(t, "A") for t in tasks}
    shuf = {t.id: make_episode(t, "A") for t in shuffled}
    rep = shuffle_report(tasks, orig, shuffled, shuf)
    assert rep["accuracy_original"]["mean"] == 1.0
    assert rep["accuracy_shuffled"]["mean"] == 0.0
    assert rep["entity_changed_share"]["mean"] == 1.0
    assert rep["correct_letter_moved_share"] == 1.0
    assert rep["difference"]["diff"] == -1.0
    # a model that follows the entity: same entity, same accuracy
    shuf_ok = {s.id: make_episode(s, s.answer_star) for s in shuffled}
    rep2 = shuffle_report(tasks, orig, shuffled, shuf_ok)
    assert rep2["entity_changed_share"]["mean"] == 0.0
    assert rep2["accuracy_shuffled"]["mean"] == 1.0
    assert chosen_entity(shuffled[0], shuf_ok[shuffled[0].id]) == tasks[0].answer_id
