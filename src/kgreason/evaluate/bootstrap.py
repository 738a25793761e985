"""Seeded percentile-bootstrap confidence intervals, for one sample and for paired differences.

Why the bootstrap: accuracy on a few hundred items has a sampling error of several points, and
the references reported single numbers from 20-30 items. Every mean kgreason reports carries an
interval; comparisons between two runs on the same items use the *paired* bootstrap, which
resamples items (not answers) so that item difficulty cancels out of the difference.

The resampling itself is scipy.stats.bootstrap (percentile method, seeded generator).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its percentile-bootstrap interval. `n` is the number of items it rests on."""

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
    """Mean of `values` (0/1 for accuracy) with a seeded percentile-bootstrap interval.

    A constant sample (e.g. all correct) has a degenerate bootstrap distribution: the interval is
    the point itself, [1, 1] for all correct, which is what the percentile method gives too; we
    return it directly because scipy warns on degenerate samples.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return _empty_interval()
    mean = float(x.mean())
    if x.size == 1 or float(np.ptp(x)) == 0.0:
        return Interval(mean=mean, low=mean, high=mean, n=int(x.size))
    from scipy.stats import bootstrap

    res = bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        axis=-1,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(mean=mean, low=float(ci.low), high=float(ci.high), n=int(x.size))


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
    """
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.size == 0:
        return _empty_interval()
    point = float(num.sum() / den.sum())
    per_item = num / den
    if den.size == 1 or float(np.ptp(per_item)) == 0.0:
        return Interval(mean=point, low=point, high=point, n=int(den.size))
    from scipy.stats import bootstrap

    res = bootstrap(
        (num, den),
        _ratio_of_sums,
        paired=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        axis=-1,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(mean=point, low=float(ci.low), high=float(ci.high), n=int(den.size))
