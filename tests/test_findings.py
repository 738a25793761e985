"""docs/findings.md (kgreason/experiments/findings.py): rendered from the claims and the experiments'
results, never typed by hand; the check fails when a figure in the page differs from its results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgreason.cli import main
from kgreason.experiments.arms import load_grid
from kgreason.experiments.findings import Claim, load_claims, paired_row, render, rows, two_by_two_row
from kgreason.io import InputError

REPO = Path(__file__).resolve().parents[1]


def interval(mean: float, low: float, high: float, n: int = 150) -> dict:
    return {"mean": mean, "low": low, "high": high, "n": n}


def arm(name: str, acc: float, compare_to: str = "", diff: tuple[float, float, float] | None = None,
        seeds: list[int] | None = None, confusion: dict | None = None, kind: str = "rsft",
        seed_diffs: list[float] | None = None) -> dict:
    seeds = [0, 1, 2] if seeds is None else seeds
    vs = ({"reference": compare_to, "seeds": seeds,
           "accuracy": {"diff": diff[0], "low": diff[1], "high": diff[2], "n": 150}} if diff else None)
    per_seed = [{"seed": s, "vs_compare": {"diff": (seed_diffs or [diff[0]] * len(seeds))[i]} if diff else None}
                for i, s in enumerate(seeds)]
    return {"name": name, "label": name.upper(), "kind": kind, "compare_to": compare_to, "seeds_done": seeds,
            "accuracy": interval(acc, acc - 0.08, acc + 0.08), "faithful_share": interval(0.5, 0.42, 0.58),
            "confusion": confusion or {}, "vs_compare": vs, "vs_sft": vs if compare_to == "sft" else None,
            "per_seed": per_seed}


def results(*arms: dict, seeds: int = 3) -> dict:
    return {"seeds": seeds, "arms": [arm("sft", 0.56, kind="sft"), *arms], "wall_seconds_arms": 7200.0,
            "cpus": ["AMD EPYC (AVX2)"]}


def claim(**kw) -> Claim:
    base = {"id": "c", "claim": "B beats A", "source": "s", "results": "exp", "command": "kgreason experiment x",
            "arm": "b", "control": "a"}
    return Claim(**{**base, **kw})


@pytest.mark.parametrize("diff, expect, verdict", [
    ((0.05, 0.01, 0.09), "higher", "supported"),
    ((-0.05, -0.09, -0.01), "higher", "not supported"),
    ((0.02, -0.02, 0.06), "higher", "no difference resolved at this budget"),
    ((-0.05, -0.09, -0.01), "lower", "supported"),
    ((0.05, 0.01, 0.09), "lower", "not supported"),
])
def test_the_verdict_reads_the_paired_interval(diff, expect, verdict):
    res = results(arm("a", 0.6, "sft"), arm("b", 0.6 + diff[0], "a", diff))
    text, got = paired_row(claim(expect=expect), res)
    assert got == verdict
    assert f"{100 * diff[0]:+.1f} points [{100 * diff[1]:+.1f}, {100 * diff[2]:+.1f}]" in text


def test_fewer_seeds_than_asked_is_called_preliminary_and_a_missing_arm_is_not_measured():
    res = results(arm("a", 0.6, "sft", seeds=[0]), arm("b", 0.65, "a", (0.05, 0.01, 0.09), seeds=[0]))
    assert paired_row(claim(), res)[1] == "supported (preliminary: 1 of 3 seeds)"
    assert paired_row(claim(arm="c"), res) == ("arm `c` has no finished arm-seed yet", "not measured yet")


def test_a_pooled_gain_that_one_seed_contradicts_is_not_supported():
    res = results(arm("a", 0.6, "sft"), arm("b", 0.65, "a", (0.05, 0.01, 0.09), seed_diffs=[0.12, 0.06, -0.02]))
    text, verdict = paired_row(claim(), res)
    assert verdict.startswith("not consistent across seeds") and "(seeds: +12.0, +6.0, -2.0)" in text


def test_a_comparison_with_the_base_arm_needs_one_seed():
    res = results(arm("base", 0.0, kind="base", seeds=[0]), arm("b", 0.5, "base", (0.5, 0.4, 0.6)))
    assert paired_row(claim(control="base"), res)[1] == "supported"


def test_the_two_by_two_row_needs_each_cell_in_every_trained_arm():
    common = {"correct_faithful": 70, "correct_unfaithful": 20, "wrong_faithful": 0, "wrong_unfaithful": 60}
    res = results(arm("a", 0.6, confusion=common), arm("c", 0.6, confusion={**common, "wrong_faithful": 1}),
                  arm("base", 0.0, kind="base", confusion={"correct_unfaithful": 99}))
    text, verdict = two_by_two_row(claim(measure="two_by_two"), res)
    assert "22.2% to 22.2%" in text and "2 trained arms" in text  # base left out (and sft: no 2x2 here)
    assert verdict == "half supported: a right answer does not imply a faithful trace; a faithful trace does here"
    one_slip = results(arm("a", 0.6, confusion={**common, "wrong_faithful": 1, "correct_unfaithful": 1}))
    assert two_by_two_row(claim(measure="two_by_two"), one_slip)[1].startswith("not supported")


def test_check_fails_when_a_figure_in_the_page_differs_from_its_results(tmp_path, capsys):
    claims_file = tmp_path / "claims.yaml"
    claims_file.write_text("claims:\n  - {id: c, claim: B beats A, source: s, results: exp, measure: paired, arm: b, "
                           "control: a, command: kgreason experiment x}\n")
    (tmp_path / "docs" / "results").mkdir(parents=True)
    exp = tmp_path / "experiments" / "exp"
    exp.mkdir(parents=True)
    (exp / "results.json").write_text(json.dumps(results(arm("a", 0.6, "sft"), arm("b", 0.67, "a", (0.07, 0.02, 0.12)))))
    args = ["findings", "--claims", str(claims_file), "--root", str(tmp_path), "--experiments", str(tmp_path / "experiments")]
    assert main([*args, "--check"]) == 1, "no page yet"
    assert main([*args, "--collect"]) == 0
    page = (tmp_path / "docs" / "findings.md").read_text()
    row = rows(page)[0]
    assert row["verdict"] == "supported" and "+7.0 points [+2.0, +12.0]" in row["kgreason's measurement [95% interval]"]
    assert "AMD EPYC (AVX2), 2.0 h" in row["experiment (CPU, wall time)"]
    assert main([*args, "--check"]) == 0
    (tmp_path / "docs" / "findings.md").write_text(page.replace("+7.0 points", "+9.0 points"))
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    assert "differs" in capsys.readouterr().out
    assert main([*args, "--check", "--collect"]) == 2
    assert rows("no table here") == []


def test_copied_arm_seeds_name_the_experiment_that_trained_them(tmp_path):
    """A grid whose arm-seeds were all copied from another experiment spent no hours of its own: the
    row says where they were trained rather than leaving "0.0 h" unexplained."""
    (tmp_path / "docs" / "results").mkdir(parents=True)
    copied = results(arm("a", 0.6, "sft"), arm("b", 0.67, "a", (0.07, 0.02, 0.12)))
    copied["wall_seconds_arms"] = 0.0
    for a in copied["arms"]:
        a["copied"] = {str(s): f"/elsewhere/experiments/reward-quick-open/runs/{a['name']}-s{s}" for s in (0, 1, 2)}
    (tmp_path / "docs" / "results" / "exp.json").write_text(json.dumps(copied))
    (row,) = rows(render([claim(measure="paired")], tmp_path))
    assert row["experiment (CPU, wall time)"].endswith(
        "0.0 h of arm-seeds (and 9 arm-seed(s) copied from reward-quick-open, trained there)")
    del copied["arms"][1]["copied"], copied["arms"][2]["copied"]  # sft alone copied
    (tmp_path / "docs" / "results" / "exp.json").write_text(json.dumps(copied))
    assert "(and 3 arm-seed(s) copied" in rows(render([claim(measure="paired")], tmp_path))[0]["experiment (CPU, wall time)"]
    copied["arms"][0]["copied"] = {"0": "sft-s0"}  # a path without an experiment folder is named whole
    (tmp_path / "docs" / "results" / "exp.json").write_text(json.dumps(copied))
    assert "copied from sft-s0, trained there" in rows(render([claim(measure="paired")], tmp_path))[0]["experiment (CPU, wall time)"]


def test_the_repository_page_is_what_its_claims_and_results_say():
    assert (REPO / "docs" / "findings.md").read_text() == render(load_claims(), REPO)


def test_every_bundled_claim_names_arms_of_its_grid():
    for c in load_claims():
        grid = load_grid(c.results.split("-")[0])
        for name in (c.arm, c.control):
            if name:
                assert name in grid.arm_names, (c.id, name)


@pytest.mark.parametrize("body, message", [
    ("claims:\n  - {id: a, claim: x, source: s, results: r, command: c, arm: b, colour: red}\n", "unknown keys"),
    ("claims:\n  - {id: a, claim: x, source: s, results: r, command: c, arm: b, measure: vibes}\n", "measure must be"),
    ("claims:\n  - {id: a, claim: x, source: s, results: r, command: c}\n", "names its arm"),
    ("claims:\n  - {id: a, claim: x, source: s, results: r, command: c, arm: b}\n"
     "  - {id: a, claim: y, source: s, results: r, command: c, arm: b}\n", "unique"),
])
def test_bad_claims_files_are_refused(tmp_path, body, message):
    path = tmp_path / "claims.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=message):
        load_claims(path)
