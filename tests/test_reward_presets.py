"""Reward presets against docs/reward.md's worked examples, and the properties kgreason promises."""

from __future__ import annotations

import random

import pytest

from conftest_reward import WORKED_EXAMPLES, example_task, hobby_task, small_kg
from kgreason.kg.builtin import build_devops_kg
from kgreason.records import LETTERS, PathStar, RewardBreakdown, Task
from kgreason.reward import KGReasonWeights, Scorer
from kgreason.reward.commands import bench_workload
from kgreason.reward.presets import longest_run, repetition_factor, word_tokens
from kgreason.tasks.format import format_completion, format_fact, format_trace

KG = small_kg()
TASK = example_task()
SCORERS = {p: Scorer(KG, p) for p in ("seed", "paper", "kgreason")}


def total(preset: str, text: str, task: Task = TASK) -> float:
    return SCORERS[preset].score(task, text).total


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
@pytest.mark.parametrize("preset", ["seed", "paper", "kgreason"])
def test_worked_examples(name: str, preset: str) -> None:
    text, expected = WORKED_EXAMPLES[name]
    assert total(preset, text) == pytest.approx(expected[preset], abs=1e-6)


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
def test_hobby_format_task_scores_like_ours(name: str) -> None:
    """No option ids, chain or start in the file: options resolve from labels, the chain from path_star."""
    text, expected = WORKED_EXAMPLES[name]
    for preset in SCORERS:
        assert total(preset, text, hobby_task()) == pytest.approx(expected[preset], abs=1e-6)


def test_breakdown_fields_of_the_faithful_example() -> None:
    b = SCORERS["kgreason"].score(TASK, WORKED_EXAMPLES["faithful"][0])
    assert (b.format_ok, b.answer, b.correct, b.faithful) == (True, "B", True, True)
    assert (b.hits, b.path_coverage, b.valid_hops, b.repetition) == (1, 1.0, 2, 0.0)
    assert [(h.head, h.relation, h.tail, h.valid) for h in b.claimed_hops] == [
        ("tls_handshake_error", "caused_by", "clock_skew", True),
        ("clock_skew", "fixed_by", "sync_ntp", True),
    ]
    assert b.components == {"correctness": 1.0, "chain": 0.4, "chain_progress": 2.0, "coverage": 0.1,
                            "faithful": 0.3, "repetition_penalty": 0.0}
    assert RewardBreakdown.from_dict(b.to_dict()) == b


def test_coverage_counts_intermediate_entities_only() -> None:
    ends = SCORERS["kgreason"].score(TASK, WORKED_EXAMPLES["ends_only"][0])
    assert (ends.hits, ends.path_coverage) == (0, 0.0)  # start and answer are named, earn nothing
    middle = SCORERS["kgreason"].score(TASK, "TRACE: It is ClockSkew.\nANSWER: B")
    assert (middle.hits, middle.path_coverage) == (1, 1.0)
    assert middle.components["coverage"] == pytest.approx(0.1)
    # The seed preset keeps the hobby definition: start and answer count (2 of 3 hits -> 2/3).
    assert SCORERS["seed"].score(TASK, WORKED_EXAMPLES["ends_only"][0]).components["coverage_all"] == pytest.approx(2 / 3, abs=1e-6)


def hop_summary(text: str) -> tuple[int, int, bool]:
    b = SCORERS["kgreason"].score(TASK, text)
    return len(b.claimed_hops), b.valid_hops, b.faithful


def test_faithfulness() -> None:
    gold = "TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP."
    assert hop_summary(f"TRACE: {gold}\nANSWER: B") == (2, 2, True)
    # Inverse phrasing states the same edges: still faithful.
    assert hop_summary("TRACE: ClockSkew causes TLSHandshakeError. SyncNTP fixes ClockSkew.\nANSWER: B") == (2, 2, True)
    # A real chain along the stated relations, but to an entity that is not the chosen option.
    assert hop_summary(WORKED_EXAMPLES["other_branch_wrong"][0]) == (2, 2, False)
    # The right chain, then the wrong letter: the chain does not end at the chosen entity.
    assert hop_summary(f"TRACE: {gold}\nANSWER: C") == (2, 2, False)
    # Real edges, but the second relation is not the stated one (diagnosed_by instead of fixed_by).
    assert hop_summary("TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is diagnosed by "
                       "CheckNTPStatus.\nANSWER: C") == (2, 2, False)
    # Broken chain: the second hop does not continue from the first one's tail.
    assert hop_summary("TRACE: TLSHandshakeError is caused by ClockSkew. MemoryLeak is fixed by "
                       "IncreaseMemoryLimit.\nANSWER: B") == (2, 2, False)
    # Skipping the first hop: the chain must start at the question's entity.
    assert hop_summary("TRACE: ClockSkew is fixed by SyncNTP.\nANSWER: B") == (1, 1, False)
    # An extra claim after the chain: the claimed chain no longer ends at the answer.
    assert hop_summary(f"TRACE: {gold} SyncNTP is related to RestartPod.\nANSWER: B") == (3, 2, False)
    assert hop_summary("ANSWER: B") == (0, 0, False)


def test_chain_progress_credits_verified_prefix() -> None:
    b = SCORERS["kgreason"].score(TASK, "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is "
                                  "diagnosed by CheckNTPStatus.\nANSWER: C")
    assert b.components["chain_progress"] == 1.0
    assert b.total == pytest.approx(-1.0 + 0.2 + 0.1)


def test_task_without_relation_chain_accepts_any_real_chain() -> None:
    task = Task.from_dict({**TASK.to_dict(), "relation_chain": [],
                           "path_star": {"entities": TASK.path_star.entities, "edges": []}})
    assert task.relation_chain == []
    assert hop_summary_for(task, "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP.\nANSWER: B")
    assert not hop_summary_for(task, "TRACE: TLSHandshakeError is caused by ClockSkew. ClockSkew leads to SyncNTP.\nANSWER: B")


def hop_summary_for(task: Task, text: str) -> bool:
    return SCORERS["kgreason"].score(task, text).faithful


def test_repetition_penalties() -> None:
    spam = WORKED_EXAMPLES["spam_right"][0]
    assert SCORERS["seed"].score(TASK, spam).repetition == 0.5
    assert SCORERS["paper"].score(TASK, spam).components["repetition_factor"] == 0.5
    k = SCORERS["kgreason"].score(TASK, spam)
    assert k.repetition == pytest.approx(0.2) and k.components["repetition_penalty"] == pytest.approx(-0.2)
    # kgreason caps the penalty at 0.3; seed stays at 0.5 however bad it gets.
    flood = "TRACE: " + "ClockSkew " * 30 + "\nANSWER: B"
    assert SCORERS["kgreason"].score(TASK, flood).repetition == pytest.approx(0.3)
    assert SCORERS["seed"].score(TASK, flood).repetition == 0.5
    # Twice per intermediate entity is what a chain needs: no penalty for the faithful trace.
    assert SCORERS["kgreason"].score(TASK, WORKED_EXAMPLES["faithful"][0]).repetition == 0.0


def test_paper_repetition_factor_rules() -> None:
    assert word_tokens("ClockSkew is_fixed, by SyncNTP!") == ["clockskew", "is_fixed", "by", "syncntp"]
    assert longest_run(["a", "b", "b", "b", "c"]) == 3
    assert repetition_factor(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]) == 1.0
    # One token is 4 of 10 (> 30%): halved. Also a run of 3: halved again.
    assert repetition_factor(["x", "a", "x", "b", "x", "c", "x", "d", "e", "f"]) == 0.5
    assert repetition_factor(["x", "x", "x", "a", "x", "b", "c", "d", "e", "f"]) == 0.25
    # Under 10 tokens the share rule does not apply; the run rule does.
    assert repetition_factor(["x", "a", "x", "b", "x"]) == 1.0
    assert repetition_factor(["x", "x", "x"]) == 0.5


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown reward preset 'fancy'.*seed, paper, kgreason"):
        Scorer(KG, preset="fancy")


def test_score_batch() -> None:
    texts = [WORKED_EXAMPLES[n][0] for n in ("faithful", "bare_right", "unparseable")]
    scorer = SCORERS["kgreason"]
    assert [b.total for b in scorer.score_batch(TASK, texts)] == [1.8, 1.0, -1.5]
    assert [b.total for b in scorer.score_batch([TASK, TASK], texts[:2])] == [1.8, 1.0]
    with pytest.raises(ValueError, match="2 tasks but 3 completions"):
        scorer.score_batch([TASK, TASK], texts)


def test_weights_that_break_the_ordering_are_refused() -> None:
    KGReasonWeights().check()
    with pytest.raises(ValueError, match="worst right answer"):
        KGReasonWeights(chain=1.5).check()
    with pytest.raises(ValueError, match="format failure"):
        KGReasonWeights(unparseable=-1.0).check()


def test_one_hop_tasks_reach_the_same_maximum() -> None:
    task = Task(id="one", split="eval", hop_len=1, question="", prompt="", options=dict(TASK.options),
                answer_star="C", path_star=PathStar(["clock_skew", "check_ntp_status"],
                                                    [("clock_skew", "diagnosed_by", "check_ntp_status")]),
                start="clock_skew", relation_chain=["diagnosed_by"], option_ids=dict(TASK.option_ids),
                answer_id="check_ntp_status")
    assert total("kgreason", "TRACE: ClockSkew is diagnosed by CheckNTPStatus.\nANSWER: C", task) == pytest.approx(1.8)


# --- properties over many completions -------------------------------------------------------------
def adversarial_traces(kg, task: Task, rng: random.Random) -> list[str]:
    """Traces a policy might produce, including every way to game an entity-counting reward."""
    path = task.path_star.edges
    gold = format_trace(kg, path)
    labels = [kg.label(e) for e in dict.fromkeys(task.path_star.entities)]
    option_labels = [kg.label(e) for e in task.option_ids.values()]
    rels = list(kg.relations)
    facts_near = [format_fact(kg, e) for e in rng.sample(kg.edges, 6)]
    wrong_rel = [(h, rng.choice(rels), t) for h, _, t in path]
    words = ["the", "is", "caused", "by", "fixed", "leads", "to", "and", "so", "then"]
    junk = " ".join(rng.choice(words + labels + option_labels) for _ in range(rng.randint(3, 40)))
    return [
        "", gold, gold + " " + gold, format_trace(kg, path[:1]), format_trace(kg, path[-1:]),
        " ".join(labels), " ".join(labels + option_labels), " ".join((labels + option_labels) * 4),
        format_trace(kg, wrong_rel), gold + " " + " ".join(facts_near), " ".join(facts_near), junk,
        gold.replace(".", ""), " ".join(option_labels) + ". " + gold,
    ]


def scored_pool(scorer: Scorer, kg, tasks: list[Task], seed: int) -> list[RewardBreakdown]:
    rng = random.Random(seed)
    out = []
    for task in tasks:
        for trace in adversarial_traces(kg, task, rng):
            for letter in LETTERS:
                out.append(scorer.score(task, format_completion(trace, letter)))
            out.append(scorer.score(task, f"{trace}\nANSWER: {task.answer_star}"))  # no TRACE marker
    return out


def test_no_wrong_answer_outscores_any_right_one() -> None:
    kg = build_devops_kg(seed=0, size="small")
    tasks = [t for t, _ in bench_workload(kg, 120, seed=3)]
    pool = scored_pool(Scorer(kg, "kgreason"), kg, tasks, seed=5)
    pool += scored_pool(SCORERS["kgreason"], KG, [TASK, hobby_task()], seed=6)
    right = [b.total for b in pool if b.correct]
    wrong = [b.total for b in pool if b.format_ok and not b.correct]
    failed = [b.total for b in pool if not b.format_ok]
    assert len(right) > 500 and len(wrong) > 1500 and len(failed) > 100
    assert max(wrong) < min(right)
    assert max(failed) < min(wrong)
    # Faithful traces exist in the pool and always come with the right answer on these tasks.
    assert any(b.faithful for b in pool)


def test_reference_presets_let_wrong_answers_win() -> None:
    """Why kgreason exists: the paper's reward pays a wrong entity dump more than a right bare answer."""
    dump_wrong = total("paper", WORKED_EXAMPLES["entity_dump_wrong"][0])
    bare_right = total("paper", WORKED_EXAMPLES["bare_right"][0])
    assert dump_wrong > bare_right


def test_entity_dumping_earns_little() -> None:
    kg = build_devops_kg(seed=0, size="small")
    scorer = Scorer(kg, "kgreason")
    tasks = [t for t, _ in bench_workload(kg, 80, seed=11) if t.hop_len >= 2]
    assert len(tasks) > 30
    for task in tasks:
        labels = [kg.label(e) for e in task.path_star.entities] + [kg.label(e) for e in task.option_ids.values()]
        bare = scorer.score(task, format_completion("", task.answer_star))
        dump = scorer.score(task, format_completion(" ".join(labels), task.answer_star))
        faithful = scorer.score(task, format_completion(format_trace(kg, task.path_star.edges), task.answer_star))
        assert bare.correct and dump.correct and faithful.faithful
        assert dump.total - bare.total <= 0.1 + 1e-9
        assert dump.valid_hops == 0 or dump.components["chain_progress"] < task.hop_len
        assert faithful.total - dump.total >= 0.7 - 1e-9


def test_scoring_random_text_never_raises() -> None:
    rng = random.Random(99)
    vocab = ["TRACE:", "ANSWER:", "B", "is caused by", "causes", "ClockSkew", "clock drift", "OOM", "ZOOM",
             "SyncNTP", ".", ";", "\n", "Disk full error", "(", ")", "is fixed by", "İ", "ß", "  "]
    for _ in range(400):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        for preset, scorer in SCORERS.items():
            b = scorer.score(hobby_task() if rng.random() < 0.3 else TASK, text)
            assert b.preset == preset
            assert b.correct <= b.format_ok and b.faithful <= b.format_ok
            assert 0.0 <= b.path_coverage <= 1.0 and b.repetition >= 0.0
