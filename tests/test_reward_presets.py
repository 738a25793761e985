"""Reward presets against docs/reward.md's worked examples, and the properties kgreason promises."""

from __future__ import annotations

import random

import pytest

from conftest_reward import WORKED_EXAMPLES, example_task, hobby_task, small_kg
from kgreason.kg.builtin import build_devops_kg
from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
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


@pytest.mark.parametrize("extra", [
    " SyncNTP is fixed by Gremlins.",  # a name the graph does not know, after the chain
    " 3. SyncNTP uses.",  # a relation phrase with nothing after it
    " Then SyncNTP is related to SyncNTP.",  # a claimed self-loop the graph does not have
])
def test_a_claim_the_graph_cannot_check_makes_a_right_chain_unfaithful(extra: str) -> None:
    """Found by an independent checker (2026-12-07): such a step used to be read as no hop at all, so
    a right chain with a made-up step after it stayed faithful and earned the full reward."""
    gold = "TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP."
    right = SCORERS["kgreason"].score(TASK, f"TRACE: {gold}\nANSWER: B")
    padded = SCORERS["kgreason"].score(TASK, f"TRACE: {gold}{extra}\nANSWER: B")
    assert right.faithful and right.correct
    assert padded.correct and not padded.faithful and padded.total < right.total
    # the same step in the middle of the chain
    middle = gold.replace(" ClockSkew is fixed", extra + " ClockSkew is fixed")
    assert not SCORERS["kgreason"].score(TASK, f"TRACE: {middle}\nANSWER: B").faithful
    # a negated or hedged clause claims nothing, with a known name or not
    hedged = SCORERS["kgreason"].score(TASK, f"TRACE: {gold} SyncNTP might be fixed by Gremlins.\nANSWER: B")
    assert hedged.faithful


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
        # Claims that are not affirmative, step numbers, prose answers, other walks of the chain.
        gold.replace(" is ", " is not "), "Perhaps " + gold, gold.replace(".", "?"),
        " ".join(f"{i}. {format_fact(kg, e)}" for i, e in enumerate(path, 1)),
        gold + " So the answer is a tool.", gold + " ANSWER: A",
        *(format_trace(kg, w) for w in _walks(kg, task.start, list(task.relation_chain), limit=4)),
    ]


def scored_pool(scorer: Scorer, kg, tasks: list[Task], seed: int) -> list[RewardBreakdown]:
    rng = random.Random(seed)
    out = []
    for task in tasks:
        for trace in adversarial_traces(kg, task, rng):
            for letter in LETTERS:
                out.append(scorer.score(task, format_completion(trace, letter)))
                # The entity-first answer line, naming this option or the gold one.
                for named in (task.options[letter], task.options[task.answer_star]):
                    out.append(scorer.score(task, f"TRACE: {trace}\nANSWER: {named} ({letter})"))
            out.append(scorer.score(task, f"{trace}\nANSWER: {task.answer_star}"))  # no TRACE marker
    return out


def test_no_wrong_answer_outscores_any_right_one() -> None:
    kg = build_devops_kg(seed=0, size="small")
    # 40 items (about 12k scored completions): this workload seed reaches the same extremes as 120
    # items of seed 3 did (the best wrong answer -0.2, the worst right one 0.7) in a third of the time
    tasks = [t for t, _ in bench_workload(kg, 40, seed=1)]
    pool = scored_pool(Scorer(kg, "kgreason"), kg, tasks, seed=5)
    pool += scored_pool(SCORERS["kgreason"], KG, [TASK, hobby_task()], seed=6)
    right = [b.total for b in pool if b.correct]
    wrong = [b.total for b in pool if b.format_ok and not b.correct]
    failed = [b.total for b in pool if not b.format_ok]
    assert len(right) > 1500 and len(wrong) > 4500 and len(failed) > 100
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


# --- faithful walks other than the gold one ---------------------------------------------------------
def test_another_faithful_walk_earns_the_gold_walks_reward() -> None:
    gold = SCORERS["kgreason"].score(TASK, WORKED_EXAMPLES["faithful"][0])
    other = SCORERS["kgreason"].score(TASK, WORKED_EXAMPLES["other_walk"][0])
    assert other.faithful and other.correct
    assert other.path_coverage == 0.0  # the diagnostic still reports gold-path coverage ...
    assert other.components == gold.components  # ... but the path terms are the gold walk's
    assert other.total == gold.total == pytest.approx(1.8)


def test_a_faithful_walk_that_revisits_an_entity_is_not_charged_for_repetition() -> None:
    """X -r-> Y -r-> X -fix-> Z names X three times; the walk needs it, so it costs nothing."""
    kg = KnowledgeGraph.from_parts(
        [Entity(i, i.upper()) for i in ("x", "y", "w", "v", "z", "q1", "q2", "q3")],
        [Relation("r", "is related to"), Relation("fix", "is fixed by")],
        [Edge("x", "r", "y"), Edge("y", "r", "x"), Edge("x", "fix", "z"),
         Edge("x", "r", "w"), Edge("w", "r", "v"), Edge("v", "fix", "z")],
    )
    task = Task(id="cyc", split="eval", hop_len=3, question="", prompt="",
                options={"A": "Q1", "B": "Z", "C": "Q2", "D": "Q3"}, answer_star="B",
                path_star=PathStar(["x", "w", "v", "z"], [("x", "r", "w"), ("w", "r", "v"), ("v", "fix", "z")]),
                start="x", relation_chain=["r", "r", "fix"],
                option_ids={"A": "q1", "B": "z", "C": "q2", "D": "q3"}, answer_id="z")
    scorer = Scorer(kg, "kgreason")
    gold = scorer.score(task, "TRACE: X is related to W. W is related to V. V is fixed by Z.\nANSWER: B")
    cyclic = scorer.score(task, "TRACE: X is related to Y. Y is related to X. X is fixed by Z.\nANSWER: B")
    assert gold.faithful and cyclic.faithful
    assert (cyclic.repetition, cyclic.total) == (0.0, pytest.approx(gold.total)) and gold.total == pytest.approx(1.8)
    # The allowance is the verified walk's, not a licence to repeat: naming X again costs.
    spam = scorer.score(task, "TRACE: X is related to Y. Y is related to X. X is fixed by Z. X X.\nANSWER: B")
    assert spam.faithful and spam.repetition == pytest.approx(0.1) and spam.total == pytest.approx(1.7)


def _walks(kg, start: str, chain: list[str], limit: int = 50) -> list[list[tuple[str, str, str]]]:
    """Walks from `start` along `chain` (every hop a real edge), at most `limit` of them."""
    walks: list[list[tuple[str, str, str]]] = [[]]
    for rel in chain:
        walks = [w + [(w[-1][2] if w else start, rel, t)] for w in walks
                 for t in kg.out_relations(w[-1][2] if w else start).get(rel, ())][:limit]
    return walks


def test_every_faithful_walk_to_the_answer_earns_full_path_credit() -> None:
    kg = build_devops_kg(seed=0, size="small")
    scorer = Scorer(kg, "kgreason")
    alternatives = 0
    for task, _ in bench_workload(kg, 120, seed=3):
        gold = scorer.score(task, format_completion(format_trace(kg, task.path_star.edges), task.answer_star))
        assert gold.faithful and gold.total == pytest.approx(1.8)
        for walk in _walks(kg, task.start, task.relation_chain):
            letters = [k for k, v in task.option_ids.items() if v == walk[-1][2]]
            if not letters:
                continue
            b = scorer.score(task, format_completion(format_trace(kg, walk), letters[0]))
            assert b.faithful
            if b.correct:
                alternatives += walk != [tuple(e) for e in task.path_star.edges]
                assert b.total == pytest.approx(gold.total), (task.id, walk)
            else:  # a walk to a distractor (an ill-posed item): still below every right answer
                assert b.total < 0.7
    assert alternatives > 5


# --- adversarial completions -------------------------------------------------------------------------
GOLD = "TLSHandshakeError is caused by ClockSkew. ClockSkew is fixed by SyncNTP."


def kg_score(text: str) -> RewardBreakdown:
    return SCORERS["kgreason"].score(TASK, text)


@pytest.mark.parametrize(
    "trace",
    [
        "TLSHandshakeError is not caused by ClockSkew. ClockSkew is not fixed by SyncNTP.",
        "It is false that TLSHandshakeError is caused by ClockSkew. It is false that ClockSkew is fixed by SyncNTP.",
        "TLSHandshakeError might be caused by ClockSkew? ClockSkew might be fixed by SyncNTP?",
        "Does TLSHandshakeError lead to ClockSkew? Is ClockSkew fixed by SyncNTP?",
        "TLSHandshakeError is probably not caused by ClockSkew. ClockSkew is probably not fixed by SyncNTP.",
        "Is TLSHandshakeError caused by ClockSkew? Maybe ClockSkew is fixed by SyncNTP.",
    ],
)
def test_negated_hedged_or_questioned_gold_earns_no_chain_credit(trace: str) -> None:
    b = kg_score(f"TRACE: {trace}\nANSWER: B")
    assert b.correct and not b.faithful and b.claimed_hops == []
    assert b.total == pytest.approx(1.1)  # the bare right answer (1.0) + naming ClockSkew (0.1), nothing more


def test_listing_every_fact_of_the_graph_is_not_faithful() -> None:
    facts = " ".join(format_fact(KG, e) for e in KG.edges)
    b = kg_score(f"TRACE: {facts}\nANSWER: B")
    assert b.correct and not b.faithful and b.valid_hops == len(KG.edges)
    # The gold facts come first here, so the chain credit is earned; the faithful bonus is not,
    # and naming entities over and over costs.
    assert b.components["faithful"] == 0.0 and b.repetition > 0
    assert b.total < kg_score(WORKED_EXAMPLES["faithful"][0]).total - 0.3


def test_repeating_the_start_or_the_gold_hop_earns_nothing_extra() -> None:
    start_spam = kg_score("TRACE: " + "TLSHandshakeError. " * 8 + "\nANSWER: B")
    assert start_spam.total == pytest.approx(1.0 + 0.0 - 0.3)
    hop_spam = kg_score("TRACE: " + "TLSHandshakeError is caused by ClockSkew. " * 4 + "ClockSkew is fixed by SyncNTP."
                        "\nANSWER: B")
    assert not hop_spam.faithful and hop_spam.components["chain_progress"] == 1.0
    assert hop_spam.total < kg_score(WORKED_EXAMPLES["faithful"][0]).total - 0.5


@pytest.mark.parametrize(
    "text",
    [
        f"TRACE: {GOLD} So the answer is B.",
        f"TRACE: {GOLD} ANSWER: B",
        f"TRACE: {GOLD} The answer: (B)\n",
        f"TRACE: {GOLD}\nThe answer is B.",
    ],
)
def test_an_answer_buried_in_prose_is_a_format_failure(text: str) -> None:
    b = kg_score(text)
    assert not b.format_ok and b.answer is None and b.total == -1.5


def test_two_answer_lines_the_first_one_counts() -> None:
    wrong_first = kg_score(f"TRACE: {GOLD}\nANSWER: C\nANSWER: B")
    right_first = kg_score(f"TRACE: {GOLD}\nANSWER: B\nANSWER: C")
    assert (wrong_first.answer, wrong_first.correct, wrong_first.faithful) == ("C", False, False)
    assert (right_first.answer, right_first.correct, right_first.faithful) == ("B", True, True)
    # An answer line before the trace wins too: the trace after it is never read.
    early = kg_score(f"ANSWER: B\nTRACE: {GOLD}")
    assert not early.format_ok and early.total == -1.5


def test_naming_the_right_entity_with_the_wrong_letter_is_wrong() -> None:
    b = kg_score(f"TRACE: {GOLD}\nANSWER: SyncNTP (C)")
    assert (b.answer, b.correct, b.faithful) == ("C", False, False)
    assert b.components["named_option"] == 0.0  # noted, but the letter is what is graded
    assert b.total == pytest.approx(-1.0 + 0.4 + 0.1)
    right = kg_score(f"TRACE: {GOLD}\nANSWER: SyncNTP (B)")
    assert right.components["named_option"] == 1.0 and right.total == pytest.approx(1.8)
    # A mismatch on a right letter is no format failure and costs nothing.
    mismatch = kg_score(f"TRACE: {GOLD}\nANSWER: RestartPod (B)")
    assert mismatch.correct and mismatch.components["named_option"] == 0.0 and mismatch.total == pytest.approx(1.8)
    assert "named_option" not in kg_score(f"TRACE: {GOLD}\nANSWER: B").components


def test_a_disjunction_of_options_claims_nothing() -> None:
    b = kg_score("TRACE: TLSHandshakeError is caused by ClockSkew or ExpiredCertificate. ClockSkew is fixed by "
                 "SyncNTP or RotateCertificate.\nANSWER: B")
    assert b.claimed_hops == [] and not b.faithful


# --- answer: the ablation's control ----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
def test_answer_preset_is_correctness_alone(name: str) -> None:
    """The same right (or wrong) answer scores the same whatever its trace: no path term at all."""
    text, _ = WORKED_EXAMPLES[name]
    r = Scorer(KG, "answer").score(TASK, text)
    expected = -1.5 if not r.format_ok else (1.0 if r.correct else -1.0)
    assert r.total == expected and r.components["correctness"] == expected and "path" not in r.components


def test_answer_preset_ignores_the_trace_the_others_reward() -> None:
    right = [t for t, _ in WORKED_EXAMPLES.values() if SCORERS["kgreason"].score(TASK, t).correct]
    assert len(right) >= 2
    kg_totals = {SCORERS["kgreason"].score(TASK, t).total for t in right}
    assert len(kg_totals) > 1, "the kgreason preset tells these right answers apart by their traces"
    assert {Scorer(KG, "answer").score(TASK, t).total for t in right} == {1.0}


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
def test_verified_preset_gives_a_right_answer_credit_only_through_a_verified_chain(name: str) -> None:
    """+1 right and faithful, 0 right through a false hop, -1 wrong, -1.5 unparseable: the scorer's
    own verdicts (correct, faithful, format_ok) decide, whatever else the trace says."""
    text, _ = WORKED_EXAMPLES[name]
    r = Scorer(KG, "verified").score(TASK, text)
    expected = -1.5 if not r.format_ok else (-1.0 if not r.correct else (1.0 if r.faithful else 0.0))
    assert r.total == expected


def test_verified_preset_ranks_an_unfaithful_right_answer_below_a_faithful_one() -> None:
    right = [t for t, _ in WORKED_EXAMPLES.values() if SCORERS["kgreason"].score(TASK, t).correct]
    verdicts = {Scorer(KG, "verified").score(TASK, t).faithful for t in right}
    assert verdicts == {True, False}, "the worked examples hold right answers with and without a verified chain"
    scores = {Scorer(KG, "verified").score(TASK, t).faithful: Scorer(KG, "verified").score(TASK, t).total for t in right}
    assert scores[True] == 1.0 and scores[False] == 0.0


def _paper_from_scratch(task: Task, text: str, kg: KnowledgeGraph) -> float:
    """The paper's reward written again from its formula (background.md), sharing no code with the
    preset: +0.1 right / -1 wrong; path = min(1.2 x coverage + 0.3 x [>= 2 overlapping tokens], 1.5)
    x repetition factor, coverage = share of the path's lower-cased word tokens (a bag) found in the
    reasoning; the factor halves when one token is > 30% of >= 10 tokens, and again for a run of 3."""
    import re as re_
    from collections import Counter

    r = Scorer(kg, "paper").score(task, text)  # only for the parsed answer and format
    if not r.format_ok:
        return -1.0
    labels = [kg.entities[e].label if e in kg.entities else e for e in task.path_star.entities]
    path_bag = Counter(t for label in labels for t in re_.findall(r"\w+", label.lower()))
    reasoning = text.split("ANSWER")[0]
    toks = re_.findall(r"\w+", reasoning.lower())
    bag = Counter(toks)
    coverage = sum(min(n, bag[t]) for t, n in path_bag.items()) / sum(path_bag.values())
    overlap = len(set(path_bag) & set(bag))
    path = min(1.2 * coverage + (0.3 if overlap >= 2 else 0.0), 1.5)
    factor = 1.0
    if len(toks) >= 10 and Counter(toks).most_common(1)[0][1] / len(toks) > 0.3:
        factor *= 0.5
    if any(toks[i] == toks[i + 1] == toks[i + 2] for i in range(len(toks) - 2)):
        factor *= 0.5
    return (0.1 if r.correct else -1.0) + path * factor


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
def test_paper_preset_matches_the_formula_written_from_scratch(name: str) -> None:
    text, _ = WORKED_EXAMPLES[name]
    assert total("paper", text) == pytest.approx(_paper_from_scratch(TASK, text, KG), abs=1e-9)
