"""docs/reward.md's checked tables against the code: answer lines, claimed hops, worked examples.

A table checked here sits between `<!-- checked: NAME -->` and `<!-- end -->`; cells holding
several `code` spans are several lines. Editing the rules without the docs (or the other way
round) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest_reward import WORKED_EXAMPLES, small_kg
from kgreason.reward.match import EntityMatcher, RelationMatcher, read_trace
from kgreason.reward.parse import find_answer_line

DOC = Path(__file__).resolve().parents[1] / "docs" / "reward.md"
KG = small_kg()


def checked_rows(name: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(rf"<!-- checked: {re.escape(name)} -->\n(.*?)<!-- end -->", text, re.DOTALL)
    assert m, f"docs/reward.md has no checked table {name!r}"
    lines = [ln for ln in m.group(1).splitlines() if ln.startswith("|")][2:]  # skip header and rule
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    assert rows, f"checked table {name!r} is empty"
    return rows


def code_lines(cell: str) -> str:
    spans = re.findall(r"`([^`]*)`", cell)
    assert spans, f"expected `code` in {cell!r}"
    return "\n".join(spans)


@pytest.mark.parametrize("row", checked_rows("answer lines"), ids=lambda r: r[0])
def test_documented_answer_lines(row: list[str]) -> None:
    line, letter, entity = code_lines(row[0]), row[1], row[2]
    found = find_answer_line(f"TRACE: x\n{line}")
    if letter == "—":
        assert found is None or found.letter == ""  # no answer line, or a hedge naming two options
    else:
        assert found is not None and (found.letter, found.entity) == (letter, entity)


def _label_ids() -> dict[str, str]:
    return {e.label: e.id for e in KG.entities.values()}


@pytest.mark.parametrize("row", checked_rows("claims"), ids=lambda r: r[0])
def test_documented_claims(row: list[str]) -> None:
    trace, expected = code_lines(row[0]), row[1]
    ids = _label_ids()
    want = [] if expected == "none" else [tuple(h.split()) for h in expected.split(";")]
    want = [(ids[head], rel, ids[tail]) for head, rel, tail in want]
    reading = read_trace(KG, EntityMatcher(KG), RelationMatcher(KG), trace)
    assert [(h.head, h.relation, h.tail) for h in reading.hops] == want
    assert all(h.valid for h in reading.hops)


def test_worked_examples_table_lists_exactly_the_tested_examples() -> None:
    by_text = {text: (name, totals) for name, (text, totals) in WORKED_EXAMPLES.items()}
    seen = []
    for row in checked_rows("worked examples"):
        completion = code_lines(row[1])
        assert completion in by_text, f"docs example {row[0]} is not in conftest_reward.WORKED_EXAMPLES"
        name, totals = by_text[completion]
        seen.append(name)
        documented = dict(zip(("seed", "paper", "kgreason"), (float(x) for x in row[2:5]), strict=True))
        assert documented == pytest.approx(totals, abs=1e-4), name
    assert sorted(seen) == sorted(WORKED_EXAMPLES)
