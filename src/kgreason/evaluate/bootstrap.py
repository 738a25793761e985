"""Confidence intervals for one sample and for paired differences, seeded.

Why intervals at all: accuracy on a few hundred items has a sampling error of several points, and
the references reported single numbers from 20-30 items. Every mean kgreason reports carries an
interval; comparisons between two runs on the same items use the *paired* bootstrap, which
resamples items (not answers) so that item difficulty cancels out of the difference.

Why two methods: a share (accuracy, faithful share, format-failure share: every value 0 or 1) gets
the Wilson score interval (`kgreason.stats.wilson_interval`). The percentile bootstrap collapses at
the edges: 0/150 correct only ever resamples zeros, so its interval is [0, 0] (and n/n gives
[1, 1]), a certainty 150 items cannot give; Wilson is right at 0/n and n/n (0/150 gives
[0, 0.025]) and within about a point of the bootstrap elsewhere. Means of other values (path
coverage, rewards) and paired differences keep the seeded percentile bootstrap
(scipy.stats.bootstrap, percentile method). The one-sample math lives in `kgreason.stats`, which
the torch-free `tasks` package shares.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from kgreason.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    mean_interval,
    percentile_interval,
    wilson_interval,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "Interval",
    "PairedDifference",
    "bootstrap_mean",
    "bootstrap_ratio",
    "paired_bootstrap_difference",
    "wilson_interval",
]


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% interval (Wilson for a 0/1 share, else percentile bootstrap). `n` is the
    number of items it rests on."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Interval:
        return cls(mean=float(d["mean"]), low=float(d["low"]), high=float(d["high"]), n=int(d["n"]))

    def fmt(self, percent: bool = True, digits: int = 1) -> str:
        """'37.5% [30.1, 44.9] (n=120)' — the form every table uses."""
        if self.n == 0 or math.isnan(self.mean):
            return "n/a (n=0)"
        k = 100.0 if percent else 1.0
        unit = "%" if percent else ""
        return f"{self.mean * k:.{digits}f}{unit} [{self.low * k:.{digits}f}, {self.high * k:.{digits}f}] (n={self.n})"


@dataclass(frozen=True)
class PairedDifference:
    """mean(b) - mean(a) over the items both runs answered, with a paired-bootstrap interval.

    `p_value` is the two-sided bootstrap p-value of "no difference": twice the smaller share of
    resampled differences on either side of zero (capped at 1).
    """

    diff: float
    low: float
    high: float
    n: int
    mean_a: float
    mean_b: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def _empty_interval() -> Interval:
    return Interval(mean=float("nan"), low=float("nan"), high=float("nan"), n=0)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """Mean of `values` with its interval: Wilson when every value is 0 or 1 (a share such as
    accuracy), else a seeded percentile bootstrap (see the module docstring for why).

    The name stays for its callers and for the `Interval` JSON they write; `seed` and
    `n_resamples` matter only to non-0/1 values.
    """
    mean, low, high, n = mean_interval(values, seed=seed, n_resamples=n_resamples, confidence=confidence)
    return Interval(mean=mean, low=low, high=high, n=n)


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def paired_bootstrap_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> PairedDifference:
    """mean(b) - mean(a) where a[i] and b[i] are the two runs' scores on the same item i."""
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples need equal lengths, got {xa.size} and {xb.size}")
    n = int(xa.size)
    if n == 0:
        nan = float("nan")
        return PairedDifference(diff=nan, low=nan, high=nan, n=0, mean_a=nan, mean_b=nan, p_value=nan)
    d = xb - xa
    diff = float(d.mean())
    if n == 1 or float(np.ptp(d)) == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        return PairedDifference(diff, diff, diff, n, float(xa.mean()), float(xb.mean()), p)
    from scipy.stats import bootstrap

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the resampled distribution is kept; degenerate cases are handled above
        res = bootstrap(
            (xa, xb),
            _mean_diff,
            paired=True,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            axis=-1,
            rng=rng,
        )
    dist = np.asarray(res.bootstrap_distribution)
    p = min(1.0, 2.0 * min(float((dist <= 0).mean()), float((dist >= 0).mean())))
    ci = res.confidence_interval
    return PairedDifference(
        diff=diff,
        low=float(ci.low),
        high=float(ci.high),
        n=n,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        p_value=p,
    )


def _ratio_of_sums(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    total = np.sum(den, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.sum(num, axis=axis) / np.where(total > 0, total, 1), np.nan)


def bootstrap_ratio(
    numerators: Sequence[float] | np.ndarray,
    denominators: Sequence[float] | np.ndarray,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval:
    """sum(num) / sum(den) with items resampled as units (e.g. valid hops / claimed hops per item).

    `n` is the number of items with a non-zero denominator, the items the ratio rests on.
    When every item's ratio is 0 (or every one is 1) the bootstrap has nothing to resample and
    would give [0, 0] ([1, 1]); the Wilson interval over the items is given instead. Items, not
    hops, are the count because hops of one item are not independent: that is the cautious choice.
    """
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.size == 0:
        return _empty_interval()
    point = float(num.sum() / den.sum())
    per_item = num / den
    if point in (0.0, 1.0) and float(np.ptp(per_item)) == 0.0:
        low, high = wilson_interval(point * den.size, int(den.size), confidence)
        return Interval(mean=point, low=low, high=high, n=int(den.size))
    if den.size == 1 or float(np.ptp(per_item)) == 0.0:
        return Interval(mean=point, low=point, high=point, n=int(den.size))
    low, high = percentile_interval((num, den), _ratio_of_sums, seed, n_resamples, confidence, paired=True)
    return Interval(mean=point, low=low, high=high, n=int(den.size))
