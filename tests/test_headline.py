"""The headline of a run (kgreason.evaluate.headline): its figures, read from the run folder's files,
and the sentence built from them, in every case a run can end in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

import conftest_serve as fx
from kgreason.evaluate.headline import HEADLINE_SCHEMA, Headline, PhaseFigures, compose_sentence, run_headline


def _iv(mean: float, low: float, high: float, n: int = 150) -> dict:
    return {"mean": mean, "low": low, "high": high, "n": n}


def _headline(gain: tuple[float, float, float] | None, shortcut_mean: float = 0.35, final_low: float = 0.59) -> Headline:
    sft = PhaseFigures("sft", _iv(0.567, 0.487, 0.643), _iv(0.45, 0.37, 0.53), _iv(0.12, 0.08, 0.18))
    rsft = PhaseFigures("rsft", _iv(0.673, final_low, 0.745), _iv(0.56, 0.48, 0.64), _iv(0.02, 0.01, 0.06))
    return Headline(
        run="r", phases=[sft, rsft], final="rsft", baseline_phase="sft",
        gain=None if gain is None else {"diff": gain[0], "low": gain[1], "high": gain[2], "n": 150, "p_value": 0.01},
        chance=0.25, shortcut={"name": "reachable_in_k_hops", "description": "an option reachable in k hops",
                               "accuracy": _iv(shortcut_mean, shortcut_mean - 0.08, shortcut_mean + 0.08)},
        oracle=_iv(1.0, 0.975, 1.0), hops=["4", "5"], sentence="")


def test_the_sentence_says_lifts_only_when_the_paired_interval_is_above_zero() -> None:
    up = compose_sentence(_headline((0.107, 0.033, 0.187)))
    assert up.startswith("RSFT lifts held-out 4-5 hop accuracy from 56.7% [48.7, 64.3] after SFT to 67.3% [59.0, 74.5]")
    assert "(paired +10.7 points [+3.3, +18.7], n=150)" in up
    assert "its lower bound is 24.0 points above the strongest shortcut (an option reachable in k hops: 35.0%)" in up
    assert "chance is 25.0%" in up and "56.0% of its traces are faithful" in up and "KG oracle scores 100.0%" in up
    assert "readable" not in up  # 2% format failures are not worth a clause; 12% would be
    flat = compose_sentence(_headline((0.027, -0.06, 0.107)))
    assert flat.startswith("RSFT does not measurably change held-out 4-5 hop accuracy") and "includes 0" in flat
    down = compose_sentence(_headline((-0.08, -0.15, -0.01)))
    assert down.startswith("RSFT lowers held-out 4-5 hop accuracy")


def test_the_sentence_says_when_the_model_does_not_clear_the_shortcut() -> None:
    text = compose_sentence(_headline((0.107, 0.033, 0.187), shortcut_mean=0.62))
    assert "it does not clear the strongest shortcut (an option reachable in k hops: 62.0%)" in text


def test_a_run_with_only_the_base_model_evaluated() -> None:
    base = PhaseFigures("base", _iv(0.0, 0.0, 0.025), _iv(0.0, 0.0, 0.025), _iv(1.0, 0.975, 1.0))
    h = replace(_headline(None), phases=[base], final=None, baseline_phase=None)
    assert compose_sentence(h) == ("Only the base model has been evaluated so far: 0.0% [0.0, 2.5] on held-out "
                                   "4-5 hop items, 100.0% of them without a readable answer.")


def test_a_run_folder_without_evaluations(tmp_path: Path) -> None:
    h = run_headline(tmp_path)
    assert h.phases == [] and h.sentence == f"Run {tmp_path.name} has no held-out evaluation yet."


def test_headline_of_a_run_folder_reads_its_files(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path)
    h = run_headline(run)
    jsonschema.validate(h.to_dict(), HEADLINE_SCHEMA)
    assert [p.phase for p in h.phases] == ["base_eval", "sft", "rsft"]
    assert (h.final, h.baseline_phase, h.chance, h.hops) == ("rsft", "sft", 0.25, ["2", "3"])
    # the fixture's rsft answers 4 of 6, sft 2 of 6, base 0 of 6 (recomputed from predictions.jsonl)
    assert [round(p.accuracy["mean"], 4) for p in h.phases] == [0.0, 0.3333, 0.6667]
    assert h.phases[0].accuracy["high"] > 0.3  # Wilson at 0/6, not the bootstrap's collapsed [0, 0]
    assert h.gain["diff"] == pytest.approx(1 / 3) and h.gain["n"] == 6
    assert h.shortcut["name"] == "most_common_letter"
    assert h.shortcut["description"] == "always the letter most often correct in these items"
    assert h.oracle["mean"] == 1.0 and h.oracle["low"] < 1.0  # a stored n/n interval is made right too
    assert h.sentence.startswith("RSFT does not measurably change held-out 2-3 hop accuracy: 33.3%")


def test_found_by_an_independent_checker(tmp_path: Path) -> None:
    """Cases an independent re-computation from the raw files found wrong (issue 26's review)."""
    import json

    run = fx.write_run(tmp_path)
    # without summary.json, eval folders list alphabetically (rsft before sft): pipeline order still
    (run / "summary.json").unlink()
    h = run_headline(run)
    assert (h.final, h.baseline_phase) == ("rsft", "sft") and h.gain["diff"] == pytest.approx(1 / 3)
    # the final phase answered 4 of the 6 items: the accuracies beside the paired gain are over those 4
    preds = run / "eval" / "rsft" / "predictions.jsonl"
    lines = preds.read_text().splitlines()
    preds.write_text("\n".join(lines[:4]) + "\n")
    h = run_headline(run)
    assert h.shared is not None and h.shared["n"] == 4 and h.gain["n"] == 4
    assert "accuracy on the 4 items both answered: 50.0% [15.0, 85.0] after SFT, 100.0% [51.0, 100.0] after it" in h.sentence
    jsonschema.validate(h.to_dict(), HEADLINE_SCHEMA)
    # an evaluation with no answers yet is left out, not printed as nan
    preds.write_text("")
    h = run_headline(run)
    assert h.final == "sft" and "nan" not in h.sentence
    # chance is the mean of 1/options over the items, not the first item's
    items = [json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    del items[0]["options"]["D"]
    (run / "data" / "eval.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    assert run_headline(run).chance == pytest.approx((1 / 3 + 5 / 4) / 6)


def test_a_broken_eval_file_is_named_not_hidden(tmp_path: Path) -> None:
    run = fx.write_run(tmp_path)
    (run / "eval" / "sft" / "metrics.json").write_text("{bad")  # a file cut short
    h = run_headline(run)
    assert h.unreadable == ["sft"] and [p.phase for p in h.phases] == ["base_eval", "rsft"]
    assert h.baseline_phase == "base_eval"  # compared with what could be read
    assert h.sentence.endswith("not counted: eval/sft, whose files could not be read.")
    jsonschema.validate(h.to_dict(), HEADLINE_SCHEMA)
    for phase in ("base_eval", "rsft"):
        (run / "eval" / phase / "predictions.jsonl").write_text('{"task_id": "x"}\n{bad\n')
    assert run_headline(run).sentence.startswith("Run demo-run's evaluations could not be read: eval/")
