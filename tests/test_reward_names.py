"""Entity names of any shape are read back unambiguously (issue 28): a perfect trace and answer over
names with brackets, commas, quotes, colons, semicolons, digits and decimal points, what looks like a
step label ("Bad Gateway (502)", "1. FC Nürnberg"), non-Latin letters, question marks or 100+ characters
scores right, faithful, every hop valid, for every
letter the answer may sit at. Names as a large lexical KG gives them ("cover (provide with a,
2730)") collided with the `<entity> (<letter>)` answer line before the scorer read it against the
task's options."""

from __future__ import annotations

import pytest

from kgreason.kg.graph import Edge, Entity, KnowledgeGraph, Relation
from kgreason.records import LETTERS, PathStar, Task
from kgreason.reward.parse import find_answer_line, parse_completion
from kgreason.reward.score import Scorer

ODD_NAMES = [
    "cover (provide with a, 2730)", "B (musical note)", "C++", "Ünïcödé Straße", "ratio: golden", 'say "hi"',
    "long " * 24 + "name", "(a) first", "number (a concept of, 2013)", "D (album)", "Café, Inc.", "東京",
    "(B)", "x (C)", "Mr. Smith; Jr.", "node.js", "3.14", "what? really", "Дом", "a/b testing", "C",
    # names holding what a trace's step labels look like ("(3)", "2)", "1.", "Step 4:"), as the hobby
    # graph's HTTP errors and FB15k-237's clubs and films have them: labels are blanked before
    # matching, but never inside a name the graph knows
    "Bad Gateway (502)", "(500) Days of Summer", "1. FC Nürnberg", "Take 2) again", "Step 3 Records", "hop 4: live",
    # names that are words of the relation phrase ("is a kind of"), as FB15k-237's "film" is of "has the film":
    # inside the phrase they are part of it
    "a", "kind",
]


def _graph() -> KnowledgeGraph:
    # ids as `kgreason kg import` makes them from names: the name itself
    ents = [Entity(n, n, "thing") for n in ODD_NAMES]
    n = len(ODD_NAMES)
    edges = [Edge(ODD_NAMES[i], "kind_of", ODD_NAMES[(i + 1) % n]) for i in range(n)]
    return KnowledgeGraph.from_parts(ents, [Relation("kind_of", "is a kind of", "has the kind")], edges, name="odd")


def _task(kg: KnowledgeGraph, i: int, letter: str) -> Task:
    n = len(ODD_NAMES)
    a, b, c = (ODD_NAMES[(i + j) % n] for j in range(3))
    others = iter(ODD_NAMES[(i + 5 + j) % n] for j in range(3))
    ids = {x: (c if x == letter else next(others)) for x in LETTERS}
    return Task(id=f"t{i}{letter}", split="eval", hop_len=2, question="q", options={x: kg.label(v) for x, v in ids.items()},
                answer_star=letter, path_star=PathStar([a, b, c], [(a, "kind_of", b), (b, "kind_of", c)]), prompt="p",
                start=a, relation_chain=["kind_of", "kind_of"], option_ids=ids, answer_id=c, reference_trace="")


@pytest.mark.parametrize("i", range(len(ODD_NAMES)))
def test_a_perfect_answer_over_odd_names_scores_right_and_faithful(i: int) -> None:
    kg = _graph()
    scorer = Scorer(kg)
    for letter in LETTERS:
        task = _task(kg, i, letter)
        a, b, c = task.path_star.entities
        text = f"TRACE: 1. {a} is a kind of {b}. 2. {b} is a kind of {c}.\nANSWER: {c} ({letter})"
        r = scorer.score(task, text)
        assert (r.format_ok, r.answer, r.correct, r.faithful, r.valid_hops) == (True, letter, True, True, 2), (text, r)
        # a wrong letter after the right name stays wrong: the contract is the name with its own letter
        wrong = next(x for x in LETTERS if x != letter)
        assert not scorer.score(task, text.rsplit("(", 1)[0] + f"({wrong})").correct


def test_the_contract_needs_the_options_to_read_names_with_lone_letters() -> None:
    options = {"A": "B (musical note)", "B": "x", "C": "y", "D": "z"}
    text = "TRACE: 1. s is a kind of t.\nANSWER: B (musical note) (A)"
    # task-free, the line names B and A: a hedge, as before
    assert parse_completion(text).answer is None and find_answer_line(text).options == "BA"
    line = find_answer_line(text, options=options)
    assert (line.letter, line.entity) == ("A", "B (musical note)") and text[line.start:line.end].endswith("(A)")
    assert parse_completion(text, options).answer == "A"
    # case and spacing aside, emphasis allowed; anything more on the line is read the task-free way
    assert parse_completion("TRACE: x\nANSWER: **b  (MUSICAL note) (a)**", options).answer == "A"
    assert parse_completion("TRACE: x\nANSWER: B (musical note) (A) or C", options).answer is None


def test_a_step_label_after_a_name_ending_in_a_digit_is_still_a_label() -> None:
    from kgreason.reward.match import blank_step_labels, normalize

    assert blank_step_labels(normalize("1. A causes Server3. 2. Server3 causes B.")) == \
        ";  a causes server3. ;  server3 causes b."
    assert blank_step_labels(normalize("2. x is a kind of 3.14.")) == ";  x is a kind of 3.14."


def test_option_keys_in_lower_case_never_raise() -> None:
    assert parse_completion("TRACE: x\nANSWER: Paris (a)", {"a": "Paris"}).answer == "A"


@pytest.mark.parametrize("source", ["tests/data/hobby_kg.json", "builtin:devops", "builtin:umls"])
def test_every_edge_of_the_shipped_graphs_reads_back_as_its_own_hop(source: str) -> None:
    """The sentence SFT teaches for each edge (tasks/format.format_fact), as a one-step trace, reads
    back as exactly that edge. The hobby graph's "Service Unavailable (503)" once lost its "(503)" as
    a step label, and every hop through it with it; a probe over every entity found that, no test did."""
    from pathlib import Path

    from kgreason.kg.sources import open_kg
    from kgreason.reward.match import EntityMatcher, RelationMatcher, read_trace
    from kgreason.tasks.format import format_fact

    kg = open_kg(Path(__file__).parent.parent / source if source.endswith(".json") else source)
    entities, relations = EntityMatcher(kg), RelationMatcher(kg)
    wrong = []
    for edge in kg.edges:
        reading = read_trace(kg, entities, relations, f"1. {format_fact(kg, edge)}")
        got = [(h.head, h.relation, h.tail, h.valid) for h in reading.hops]
        if got != [(edge.head, edge.relation, edge.tail, True)] or reading.unread_claims:
            wrong.append((format_fact(kg, edge), got, reading.unread_claims))
    assert len(kg.edges) > 500 and not wrong, (len(wrong), wrong[:3])
