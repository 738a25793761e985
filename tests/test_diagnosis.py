"""The product notices failure (issue 28): a run whose trained phase falls below the strongest
shortcut, or whose RSFT kept no winners, says what happened, why (from measured signals) and
what to try — in the headline record, `kgreason run`'s last lines, report.md and the demo's list.

The failing run (conftest_serve.write_failed_run) is written the way a failed run on a lexical KG
looked, its answers scored by the real KG reward."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

import conftest_serve as fx
from kgreason.evaluate.diagnosis import DIAGNOSIS_SCHEMA, answer_signals, name_signals
from kgreason.evaluate.headline import HEADLINE_SCHEMA, run_headline
from kgreason.io import atomic_write_json
from kgreason.records import Episode


def test_a_healthy_run_has_no_diagnosis(tmp_path: Path) -> None:
    h = run_headline(fx.write_run(tmp_path))
    assert h.diagnosis is None


def test_a_failed_run_says_what_why_and_what_to_try(tmp_path: Path) -> None:
    h = run_headline(fx.write_failed_run(tmp_path))
    jsonschema.validate(h.to_dict(), HEADLINE_SCHEMA)
    d = h.diagnosis
    assert d is not None
    jsonschema.validate(d, DIAGNOSIS_SCHEMA)
    # 0 of 6 right: the Wilson upper bound (39%) is above chance (25%), so "below chance" is not claimed
    assert [p["code"] for p in d["problems"]] == ["below_shortcut", "no_winners"]
    assert {c["code"] for c in d["causes"]} == {"unreadable_answers", "short_traces", "odd_names", "unfaithful_passes"}
    s = d["signals"]
    # every answer claims one hop where the items ask 2 or 3; half have no option letter on the answer line
    assert s["short_traces"] == 1.0 and s["median_hops_written"] == 1 and s["median_hops_asked"] == 2.5
    assert s["unreadable"] == 0.5 and s["answer_line_without_option"] == 0.5 and s["no_answer_line"] == 0.0
    assert s["odd_names"] == 1.0
    text = d["paragraph"]
    assert text.startswith("RSFT scores 0.0% on the held-out items, below the strongest shortcut baseline")
    assert "RSFT kept no winners in rounds 1, 2 of 2" in text and "mean pass rate 0.16, 0.23" in text
    assert "--no-rsft-faithful-only" in text and "--sft-material easy,hard" in text and "Try: " in text
    assert "50.0% of the final answers have no readable answer line" in text


def test_data_written_with_allow_shortcuts_is_named_even_in_a_healthy_run(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path)
    manifest = run / "data" / "manifest.json"
    record = json.loads(manifest.read_text()) if manifest.is_file() else {}
    check = {"limit": 0.35, "passed": False, "allowed": True,
             "held_out": {"eval": {"items": 6, "strongest": {"baseline": "chain_from_other_entities", "accuracy": 0.95},
                                   "over": {"chain_from_other_entities": {"accuracy": 0.95, "interval": [0.6, 1.0]}}}}}
    atomic_write_json(manifest, {**record, "shortcut_check": check})
    d = run_headline(run).diagnosis
    assert d is not None and [p["code"] for p in d["problems"]] == ["shortcuts_allowed"]
    assert "--allow-shortcuts (eval: chain_from_other_entities 95.0% [60.0, 100.0])" in d["paragraph"]
    atomic_write_json(manifest, {**record, "shortcut_check": {**check, "allowed": False, "passed": True}})
    assert run_headline(run).diagnosis is None


def test_rsft_that_never_passed_is_told_apart_from_unfaithful_passes(tmp_path: Path) -> None:
    run = fx.write_failed_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    for r in summary["phases"]["rsft"]["rounds"]:
        r["mean_pass_rate"] = 0.0
    atomic_write_json(run / "summary.json", summary)
    causes = {c["code"]: c["text"] for c in run_headline(run).diagnosis["causes"]}
    assert "no_passes" in causes and "unfaithful_passes" not in causes


def test_signals_recomputed_independently(tmp_path: Path) -> None:
    """The signals from the files alone, without the diagnosis module's helpers' reading of them."""
    run = fx.write_failed_run(tmp_path)
    preds = [json.loads(line) for line in (run / "eval" / "rsft" / "predictions.jsonl").read_text().splitlines()]
    items = {json.loads(line)["id"]: json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines()}
    short = sum(len(p["reward"]["claimed_hops"]) < items[p["task_id"]]["hop_len"] for p in preds) / len(preds)
    unreadable = sum(not p["reward"]["format_ok"] for p in preds) / len(preds)
    d = run_headline(run).diagnosis["signals"]
    assert (d["short_traces"], d["unreadable"]) == (short, unreadable)
    episodes = [Episode.from_dict(p) for p in preds]
    assert answer_signals(episodes, {})["short_traces"] == 0.0  # no hop counts known: nothing claimed short
    assert name_signals([{"options": {"A": "x" * 41, "B": "ok", "C": "a, b", "D": "fine"}}])["odd_names"] == 0.5


def test_report_and_demo_flag_the_run(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from kgreason.serve.app import create_app

    run = fx.write_failed_run(tmp_path)

    client = TestClient(create_app(tmp_path))
    runs = client.get("/api/runs").json()["runs"]
    flagged = {r["name"]: [p["code"] for p in r["problems"]] for r in runs}
    assert flagged[run.name] == ["below_shortcut", "no_winners"]
    detail = client.get("/api/run", params={"run": run.name}).json()
    assert detail["headline"]["diagnosis"]["paragraph"].startswith("RSFT scores 0.0%")


def test_below_chance_and_lowers_need_their_upper_bounds_below(tmp_path: Path) -> None:
    """The lexical-KG run of issue 28: SFT 16.7% [11.3, 22.7] against chance 25%; a phase whose
    paired interval lies below 0 lowers accuracy; one whose interval includes 0 does not."""
    from kgreason.evaluate.diagnosis import diagnose
    from kgreason.evaluate.headline import Headline, PhaseFigures

    def iv(mean: float, low: float, high: float) -> dict:
        return {"mean": mean, "low": low, "high": high, "n": 150}

    def headline(acc: dict, gain: dict) -> Headline:
        sft = PhaseFigures("sft", iv(0.3, 0.23, 0.38), iv(0.0, 0.0, 0.02), iv(0.26, 0.2, 0.33))
        rsft = PhaseFigures("rsft", acc, iv(0.0, 0.0, 0.02), iv(0.26, 0.2, 0.33))
        return Headline(run="r", phases=[sft, rsft], final="rsft", baseline_phase="sft", gain=gain, chance=0.25,
                        shortcut=None, oracle=None, hops=["4", "5"], sentence="")

    below = diagnose(tmp_path, headline(iv(0.167, 0.113, 0.227), {"diff": -0.13, "low": -0.2, "high": -0.06, "n": 150}),
                     [], {}, [])
    assert [p["code"] for p in below.problems] == ["below_chance", "lowers"]
    assert "is below chance (25.0%)" in below.paragraph and "paired -13.0 points [-20.0, -6.0]" in below.paragraph
    assert diagnose(tmp_path, headline(iv(0.2, 0.14, 0.27), {"diff": -0.1, "low": -0.2, "high": 0.01, "n": 150}),
                    [], {}, []) is None


def test_a_phase_warning_is_a_problem_of_its_own(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["phases"]["rsft"]["warning"] = "held-out probe accuracy fell from 53.1% to 28.1% (steps 0-14)"
    atomic_write_json(run / "summary.json", summary)
    d = run_headline(run).diagnosis
    assert [p["code"] for p in d["problems"]] == ["training_warning"]
    assert d["paragraph"].startswith("RSFT: held-out probe accuracy fell from 53.1% to 28.1%")


def test_unreadable_answers_are_sorted_by_the_parsers_own_reading() -> None:
    """The review's cases: no TRACE before a letter, a hedge, a line naming no letter, no line at all."""
    from kgreason.evaluate.diagnosis import unreadable_kind

    assert unreadable_kind("ANSWER: B") == unreadable_kind("ANSWER: jstat (D)") == "no_trace"
    assert unreadable_kind("TRACE: x\nANSWER: B or C") == "hedged"
    assert unreadable_kind("TRACE: x\nANSWER: ClockSkew is fixed by SyncNTP") == "answer_line_without_option"
    assert unreadable_kind("TRACE: a b c") == "no_answer_line"


def test_malformed_or_frontier_rounds_get_the_right_cause(tmp_path: Path) -> None:
    run = fx.write_failed_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    rounds = summary["phases"]["rsft"]["rounds"]
    rounds[0]["reasons"] = None  # a malformed file: no crash, no headline lost
    rounds[1]["reasons"] = {"below_frontier": 10, "above_frontier": 6}
    atomic_write_json(run / "summary.json", summary)
    h = run_headline(run)
    assert h.sentence and h.diagnosis is not None
    causes = {c["code"] for c in h.diagnosis["causes"]}
    assert "frontier_filtered" in causes and "no_passes" not in causes and "unfaithful_passes" not in causes
    assert "--rsft-frontier" in h.diagnosis["paragraph"]


def test_names_from_the_data_cannot_make_links_in_report_md(tmp_path: Path) -> None:
    run = fx.write_failed_run(tmp_path)
    items = [json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    for it in items:
        it["options"] = {k: f"[login](https://evil.example) `{v}`" for k, v in it["options"].items()}
    (run / "data" / "eval.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    text = run_headline(run).diagnosis["paragraph"]
    assert "[login]" not in text and "(login)(https://evil.example)" in text
