"""Metrics, bootstrap intervals and the 2x2 table against hand-built episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest_eval import make_episode, make_task
from kgreason.evaluate.bootstrap import bootstrap_mean, bootstrap_ratio, paired_bootstrap_difference
from kgreason.evaluate.metrics import (
    accuracy_by_hop,
    confusion_2x2,
    confusion_rates,
    format_failure_rate,
    join_episodes,
    letter_accuracy,
    summarize,
    trace_length_by_hop,
    trace_metrics,
)


def test_all_correct_and_all_wrong_intervals_are_wilson_not_a_point():
    # Wilson at n/n: [n / (n + z²), 1]; at 0/n: [0, z² / (n + z²)] (a percentile bootstrap gives a point)
    z2 = 1.959963984540054**2
    iv = bootstrap_mean([1] * 50, seed=3)
    assert (iv.mean, iv.high, iv.n) == (1.0, 1.0, 50)
    assert iv.low == pytest.approx(50 / (50 + z2), rel=1e-12)
    iv0 = bootstrap_mean([0] * 7)
    assert iv0.low == 0.0 and iv0.high == pytest.approx(z2 / (7 + z2), rel=1e-12)


def _numpy_percentile_reference(x: np.ndarray, seed: int, b: int = 20000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(b, x.size))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def test_known_proportion_interval_brackets_and_matches_independent_references():
    x = np.array([1] * 60 + [0] * 140, dtype=float)  # p = 0.3, n = 200
    iv = bootstrap_mean(x, seed=0, n_resamples=5000)
    assert iv.low < 0.3 < iv.high
    assert iv.mean == pytest.approx(0.3)
    # a share gets the Wilson interval, which at this n is within a point of an independent
    # bootstrap written here with plain numpy
    lo, hi = _numpy_percentile_reference(x, seed=123)
    assert iv.low == pytest.approx(lo, abs=0.01)
    assert iv.high == pytest.approx(hi, abs=0.01)
    # and of the normal-approximation (Wald) interval, which both approach at this n
    half = 1.96 * math.sqrt(0.3 * 0.7 / 200)
    assert iv.low == pytest.approx(0.3 - half, abs=0.012)
    assert iv.high == pytest.approx(0.3 + half, abs=0.012)


def test_bootstrap_is_seeded():
    x = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    assert bootstrap_mean(x, seed=5) == bootstrap_mean(x, seed=5)
    y = [0.2, 0.5, 0.9, 0.0, 0.4, 0.7, 0.1, 0.3, 1.0, 0.6]  # not a share: the bootstrap's seed matters
    assert bootstrap_mean(y, seed=5) == bootstrap_mean(y, seed=5) != bootstrap_mean(y, seed=6)
    assert bootstrap_mean([]).n == 0 and math.isnan(bootstrap_mean([]).mean)


def test_paired_difference_identical_runs_is_zero_and_real_gap_excludes_zero():
    a = [1, 0, 1, 0, 1, 1, 0, 0] * 10
    same = paired_bootstrap_difference(a, a)
    assert (same.diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    rng = np.random.default_rng(1)
    base = rng.random(300) < 0.3
    better = base | (rng.random(300) < 0.3)  # b answers everything a does, plus more
    d = paired_bootstrap_difference(base, better, seed=2)
    assert d.diff == pytest.approx(better.mean() - base.mean())
    assert 0 < d.low <= d.diff <= d.high
    assert d.p_value < 0.01
    with pytest.raises(ValueError):
        paired_bootstrap_difference([1, 0], [1])


def test_paired_is_tighter_than_unpaired_when_items_correlate():
    rng = np.random.default_rng(0)
    easy = rng.random(400) < 0.5
    a = easy & (rng.random(400) < 0.9)
    b = easy & (rng.random(400) < 0.95)
    d = paired_bootstrap_difference(a, b, seed=0)
    ia, ib = bootstrap_mean(a), bootstrap_mean(b)
    assert (d.high - d.low) < (ia.high - ia.low) + (ib.high - ib.low)


def test_ratio_interval():
    iv = bootstrap_ratio([1, 2, 0, 3], [2, 2, 0, 4])  # item with 0 claimed hops is not counted
    assert iv.n == 3
    assert iv.mean == pytest.approx(6 / 8)
    assert iv.low <= iv.mean <= iv.high


def _items():
    tasks = [make_task(i, hop=1 + (i % 2)) for i in range(8)]
    eps = [
        make_episode(tasks[0], "A", faithful=True, coverage=1.0, claimed=2, valid=2),
        make_episode(tasks[1], "A", faithful=False, coverage=0.5, claimed=2, valid=1),
        make_episode(tasks[2], "B", faithful=True, coverage=0.0, claimed=1, valid=1),
        make_episode(tasks[3], "B", faithful=False, claimed=3, valid=0),
        make_episode(tasks[4], None, format_ok=False),
        make_episode(tasks[5], "A", faithful=True, coverage=1.0, claimed=1, valid=1),
        make_episode(tasks[6], "C"),
        # tasks[7] has no episode
    ]
    return tasks, eps


def test_join_keeps_first_sample_and_task_order():
    tasks, eps = _items()
    extra = make_episode(tasks[0], "B")
    extra.sample_index = 1
    items = join_episodes(tasks, [extra, *eps])
    assert [it.task.id for it in items] == [f"t{i}" for i in range(7)]
    assert items[0].episode.reward.answer == "A"


def test_accuracy_by_hop_format_failures_and_trace_metrics():
    tasks, eps = _items()
    items = join_episodes(tasks, eps)
    by_hop = accuracy_by_hop(items)
    # hop 1: t0 (A ok), t2 (B wrong), t4 (unparsed), t6 (C wrong) -> 1/4; hop 2: t1 ok, t3 wrong, t5 ok -> 2/3
    assert by_hop[1].mean == pytest.approx(0.25) and by_hop[1].n == 4
    assert by_hop[2].mean == pytest.approx(2 / 3) and by_hop[2].n == 3
    assert format_failure_rate(items).mean == pytest.approx(1 / 7)
    tm = trace_metrics(items)
    assert tm["path_coverage"].mean == pytest.approx((1 + 0.5 + 0 + 0 + 0 + 1 + 0) / 7)
    assert tm["valid_hop_share"].mean == pytest.approx((2 + 1 + 1 + 0 + 1) / (2 + 2 + 1 + 3 + 1))
    assert tm["faithful_share"].mean == pytest.approx(3 / 7)


def test_confusion_table_counts_each_cell():
    tasks, eps = _items()
    items = join_episodes(tasks, eps)
    c = confusion_2x2(items)
    assert c == {"correct_faithful": 2, "correct_unfaithful": 1, "wrong_faithful": 1, "wrong_unfaithful": 3}
    r = confusion_rates(c)
    assert r["p_correct_given_faithful"] == pytest.approx(2 / 3)
    assert r["p_faithful_given_correct"] == pytest.approx(2 / 3)
    assert r["p_correct_given_unfaithful"] == pytest.approx(1 / 4)


def test_summarize_and_letter_accuracy():
    tasks, eps = _items()
    s = summarize(join_episodes(tasks, eps))
    assert s["n_items"] == 7
    assert s["accuracy"]["mean"] == pytest.approx(3 / 7)
    assert set(s["by_hop"]) == {"1", "2"}
    preds = {t.id: t.answer_star for t in tasks}
    preds["t0"] = "D"
    la = letter_accuracy(tasks, preds)
    assert la["accuracy"]["mean"] == pytest.approx(7 / 8)
    assert la["by_hop"]["2"]["mean"] == 1.0


def test_trace_length_against_the_hops_asked():
    """Claimed hops per answer against hop_len (issue 28): counted by hand from _items()."""
    tasks, eps = _items()
    lengths = trace_length_by_hop(join_episodes(tasks, eps))
    # hop 1: t0 claims 2, t2 1, t4 0 (unparsed), t6 0 -> exact 1/4, fewer 2/4, more 1/4, median 0.5
    one, two = lengths["1"], lengths["2"]
    assert (one["n"], one["exact"]["mean"], one["short"], one["long"], one["median"]) == (4, 0.25, 0.5, 0.25, 0.5)
    assert one["exact"]["low"] > 0  # a Wilson interval, not a point
    # hop 2: t1 claims 2, t3 3, t5 1 -> exact 1/3, fewer 1/3, more 1/3, median 2
    assert (two["n"], two["exact"]["mean"], two["short"], two["long"], two["median"]) == (3, pytest.approx(1 / 3),
                                                                                          pytest.approx(1 / 3),
                                                                                          pytest.approx(1 / 3), 2.0)
