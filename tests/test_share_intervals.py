"""Share intervals that are right at the edges: Wilson for 0/1 values (accuracy, faithful share,
format failures, per-hop accuracy, shortcut baselines), the percentile bootstrap for other means,
and old run folders' collapsed [0, 0] / [1, 1] shown as Wilson intervals. Torch-free, fast."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kgreason.evaluate.bootstrap import bootstrap_mean, bootstrap_ratio
from kgreason.io import atomic_write_json
from kgreason.runs.folder import Run
from kgreason.runs.listing import list_runs
from kgreason.stats import mean_interval, share_interval_from_record, wilson_interval
from kgreason.tasks.baselines import bootstrap_interval

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def _wilson_by_quadratic(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's bounds as the two roots of (p̂ - x)² = z² x (1 - x) / n, solved here with the
    quadratic formula: a derivation independent of the centre ± half-width form in kgreason.stats."""
    p = successes / n
    a = 1 + z * z / n
    b = -(2 * p + z * z / n)
    c = p * p
    root = math.sqrt(b * b - 4 * a * c)
    return ((-b - root) / (2 * a), (-b + root) / (2 * a))


# --- the Wilson interval itself ------------------------------------------------------------------
def test_wilson_at_zero_of_n_starts_at_zero_and_reaches_about_two_and_a_half_points() -> None:
    low, high = wilson_interval(0, 150)
    assert low == 0.0
    assert 0.02 < high < 0.03
    assert high == pytest.approx(Z95**2 / (150 + Z95**2), rel=1e-12)  # the closed form at 0/n


def test_wilson_at_n_of_n_mirrors_zero_of_n() -> None:
    low0, high0 = wilson_interval(0, 150)
    low, high = wilson_interval(150, 150)
    assert high == 1.0
    assert low == pytest.approx(1.0 - high0, abs=1e-12)
    assert (low, high) != (1.0, 1.0)


@pytest.mark.parametrize(
    ("successes", "n"), [(1, 2), (3, 7), (45, 150), (1, 150), (149, 150), (0, 1), (1, 1)]
)
def test_wilson_matches_the_quadratic_roots(successes: int, n: int) -> None:
    low, high = wilson_interval(successes, n)
    ref_low, ref_high = _wilson_by_quadratic(successes, n)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)


def test_wilson_matches_published_values() -> None:
    # Textbook 95% Wilson intervals (e.g. Newcombe 1998, Brown, Cai & DasGupta 2001): 0/10, 5/10, 1/2.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    assert wilson_interval(1, 2) == pytest.approx((0.0945, 0.9055), abs=5e-5)


def test_wilson_edges_and_bad_input() -> None:
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    lo90, hi90 = wilson_interval(30, 100, confidence=0.90)
    lo95, hi95 = wilson_interval(30, 100)
    assert lo95 < lo90 < 0.3 < hi90 < hi95  # a lower confidence gives a narrower interval
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, -1)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


# --- bootstrap_mean: Wilson for shares, bootstrap for the rest -----------------------------------------
def test_bootstrap_mean_of_all_wrong_is_not_a_point() -> None:
    iv = bootstrap_mean([0] * 150, seed=0)
    assert (iv.mean, iv.low, iv.n) == (0.0, 0.0, 150)
    assert iv.high > 0
    assert (iv.low, iv.high) == wilson_interval(0, 150)
    ivb = bootstrap_mean([True] * 150)  # booleans (format_ok, faithful) are shares too
    assert (ivb.low, ivb.high) == wilson_interval(150, 150) and ivb.low < 1.0


def test_bootstrap_mean_of_a_share_is_wilson_and_ignores_the_seed() -> None:
    x = [1] * 45 + [0] * 105
    iv = bootstrap_mean(x, seed=0)
    assert (iv.low, iv.high) == wilson_interval(45, 150)
    assert bootstrap_mean(x, seed=7) == iv


def test_bootstrap_mean_of_non_binary_values_is_still_the_seeded_bootstrap() -> None:
    rng = np.random.default_rng(4)
    x = rng.random(200) * 0.6  # path coverage-like values, not 0/1
    iv = bootstrap_mean(x, seed=1, n_resamples=4000)
    assert iv.low < x.mean() < iv.high
    # seeded: the same seed gives the same bounds, another seed (slightly) different ones; Wilson has no seed
    assert bootstrap_mean(x, seed=1, n_resamples=4000) == iv
    assert bootstrap_mean(x, seed=2, n_resamples=4000) != iv
    # a plain-numpy percentile bootstrap agrees; Wilson on the sum (variance p(1 - p)) is much wider here
    means = x[np.random.default_rng(99).integers(0, x.size, size=(20000, x.size))].mean(axis=1)
    assert iv.low == pytest.approx(float(np.quantile(means, 0.025)), abs=0.005)
    assert iv.high == pytest.approx(float(np.quantile(means, 0.975)), abs=0.005)
    w_low, w_high = wilson_interval(float(x.sum()), x.size)
    assert (w_high - w_low) > 1.5 * (iv.high - iv.low)


def test_constant_non_binary_sample_keeps_the_point() -> None:
    assert mean_interval([0.25] * 8) == (0.25, 0.25, 0.25, 8)


def test_ratio_at_the_edge_gets_a_wilson_interval_over_items() -> None:
    iv = bootstrap_ratio([2, 3, 1, 4] * 10, [2, 3, 1, 4] * 10)  # every claimed hop valid, 40 items
    assert iv.mean == 1.0 and iv.high == 1.0 and iv.n == 40
    assert (iv.low, iv.high) == wilson_interval(40, 40)
    iv0 = bootstrap_ratio([0] * 40, [3] * 40)
    assert (iv0.low, iv0.high) == wilson_interval(0, 40) and iv0.high > 0


# --- tasks' interval is evaluate's ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "hits",
    [
        [0.0] * 150,  # a shortcut that never wins
        [1.0] * 60,
        [1.0, 0.0, 0.0, 1.0, 0.0] * 30,
        [0.25, 0.0, 1.0, 0.5, 0.0, 1 / 3] * 25,  # ties split as 1/k: the bootstrap path
    ],
)
def test_tasks_interval_equals_evaluate_interval(hits: list[float]) -> None:
    iv = bootstrap_mean(hits, seed=3, n_resamples=1000)
    assert bootstrap_interval(hits, seed=3, resamples=1000) == (iv.low, iv.high)
    assert iv.low < iv.high


def test_audit_row_of_a_shortcut_at_zero_has_an_upper_bound() -> None:
    from kgreason.tasks.audit import _shortcut_row

    row = _shortcut_row("most_common_letter", [0.0] * 150, seed=0)
    assert row["accuracy"] == 0.0 and row["ci95"][0] == 0.0 and 0.02 < row["ci95"][1] < 0.03


# --- old files' collapsed intervals ---------------------------------------------------------------------
def test_share_interval_from_record_replaces_only_the_collapse() -> None:
    assert share_interval_from_record(0.0, 0.0, 0.0, 150) == wilson_interval(0, 150)
    assert share_interval_from_record(1.0, 1.0, 1.0, 150) == wilson_interval(150, 150)
    assert share_interval_from_record(1, 1, 1, 20) == wilson_interval(20, 20)
    # a real interval, missing bounds, unknown or zero n, a degenerate non-edge mean: as stored
    assert share_interval_from_record(0.3, 0.24, 0.37, 150) == (0.24, 0.37)
    assert share_interval_from_record(0.0, None, None, 40) == (None, None)
    assert share_interval_from_record(0.0, 0.0, 0.0, None) == (0.0, 0.0)
    assert share_interval_from_record(0.0, 0.0, 0.0, 0) == (0.0, 0.0)
    assert share_interval_from_record(0.25, 0.25, 0.25, 8) == (0.25, 0.25)


def test_runs_list_shows_old_collapsed_intervals_as_wilson(tmp_path: Path) -> None:
    run = Run(tmp_path / "runs" / "quick")
    atomic_write_json(run.config_path, {"run": "quick", "created": "2026-01-01T10:00:00+00:00"})
    # base: only summary.json, as runs/quick holds it (accuracy 0/150 with the bootstrap's [0, 0])
    run.mark_done(
        "base_eval",
        {
            "kind": "eval",
            "n": 150,
            "accuracy": 0.0,
            "accuracy_ci": [0.0, 0.0],
            "faithful": 0.0,
            "eval_dir": "eval/base",
        },
    )
    # sft: metrics.json with an old [1, 1] faithful share and a real accuracy interval
    run.mark_done(
        "sft_eval",
        {
            "kind": "eval",
            "n": 150,
            "accuracy": 0.56,
            "accuracy_ci": [0.48, 0.64],
            "faithful": 1.0,
            "eval_dir": "eval/sft",
        },
    )
    atomic_write_json(
        run.eval_dir("sft") / "metrics.json",
        {
            "accuracy": {"mean": 0.56, "low": 0.48, "high": 0.64, "n": 150},
            "trace": {"faithful_share": {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 150}},
        },
    )
    runs, _ = list_runs([tmp_path / "runs"])
    base, sft = runs[0].evals
    assert (base.accuracy["low"], base.accuracy["high"]) == wilson_interval(0, 150)
    assert base.faithful == {"mean": 0.0, "low": None, "high": None, "n": 150}  # no interval was stored
    assert (sft.accuracy["low"], sft.accuracy["high"]) == (0.48, 0.64)
    assert (sft.faithful["low"], sft.faithful["high"]) == wilson_interval(150, 150)
