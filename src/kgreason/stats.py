"""Intervals for shares and means, torch-free, for every layer that reports one.

Why this module sits at the package top: `kg`, `tasks` and `reward` may not import `evaluate`
(tests/test_config.py), yet `tasks audit` reports shortcut-baseline accuracies with an interval just
as `kgreason eval` reports model accuracies; both must compute it the same way, so the math lives
here and `evaluate/bootstrap.py` and `tasks/baselines.py` both call it.

Why Wilson for shares: a percentile bootstrap resamples the observed items, so a sample of 0/150
correct only ever resamples zeros and its interval collapses to [0, 0] (and n/n to [1, 1]), which
claims a certainty 150 items cannot give. The Wilson score interval inverts the binomial score
test: at 0/n it runs from 0 to about z²/(n + z²) (0.0250 at n=150, 95%), it never leaves [0, 1], and
away from the edges it is within a point or so of the bootstrap at the sample sizes kgreason uses.
Values that are not all 0 or 1 (path coverage, rewards, shortcut hits with ties split as 1/k,
per-item correctness averaged over seeds) are not binomial counts and keep the seeded percentile
bootstrap; so do paired differences (`evaluate/bootstrap.py`).

numpy and scipy are imported inside the functions that need them, so importing this module is as
cheap as importing `math` (the `tasks` commands and `runs list` stay fast to start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: float, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial share `successes / n`; (nan, nan) when n == 0.

    `successes` may be a float (a mean times n) but must lie in [0, n]. At 0/n the low end is
    exactly 0 and at n/n the high end exactly 1 (set, not computed, so rounding cannot leave
    them a hair off the edge).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return (float("nan"), float("nan"))
    if not -1e-9 <= successes <= n + 1e-9:
        raise ValueError(f"successes must lie in [0, {n}], got {successes}")
    p = min(1.0, max(0.0, successes / n))
    z = _z(confidence)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return (low, high)


def is_share(values: np.ndarray) -> bool:
    """True when every value is exactly 0 or 1: a sample of successes whose mean is a binomial share."""
    import numpy as np

    return bool(np.all((values == 0.0) | (values == 1.0)))


def mean_interval(
    values: Sequence[float] | np.ndarray,
    seed: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of `values`: Wilson when every value is 0 or 1, else a seeded
    percentile bootstrap of the mean (scipy.stats.bootstrap). Empty input gives (nan, nan, nan, 0).

    A constant sample that is not 0/1 (e.g. every shortcut hit 0.25) has no spread for the
    bootstrap to resample and gets the point itself as its interval, as the percentile method
    would; we return it directly because scipy warns on degenerate samples.
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return (nan, nan, nan, 0)
    mean = float(x.mean())
    if is_share(x):
        low, high = wilson_interval(float(x.sum()), n, confidence)
        return (mean, low, high, n)
    if n == 1 or float(np.ptp(x)) == 0.0:
        return (mean, mean, mean, n)
    low, high = percentile_interval((x,), np.mean, seed, n_resamples, confidence)
    return (mean, low, high, n)


def percentile_interval(data: tuple, statistic: Any, seed: int, n_resamples: int, confidence: float,
                        paired: bool = False) -> tuple[float, float]:
    """scipy.stats.bootstrap's seeded percentile interval of `statistic` over `data` (vectorised,
    resampling along the last axis; `paired` resamples the samples' items together)."""
    import numpy as np
    from scipy.stats import bootstrap

    res = bootstrap(data, statistic, paired=paired, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", vectorized=True, axis=-1, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def share_record(iv: Any) -> Any:
    """A stored share interval record ({"mean", "low", "high", "n"}) with its bounds as they should
    read (share_interval_from_record); anything that is not a dict comes back as it is."""
    if not isinstance(iv, dict):
        return iv
    low, high = share_interval_from_record(iv.get("mean"), iv.get("low"), iv.get("high"), iv.get("n"))
    return {**iv, "low": low, "high": high}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def share_interval_from_record(
    mean: Any, low: Any, high: Any, n: Any, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[Any, Any]:
    """(low, high) to show for a share read back from an old metrics.json / summary.json.

    Runs written before shares got Wilson intervals stored the percentile bootstrap's collapsed
    [0, 0] at 0/n and [1, 1] at n/n. A stored interval with low == high, n > 0 and a mean of 0 or
    1 can only be that collapse (a 0/1 sample with any spread has a mean strictly inside (0, 1)),
    so it is replaced by the Wilson interval; anything else (a real interval, missing bounds,
    n unknown) is returned as stored. The caller decides that the record is a share (accuracy,
    faithful share, format-failure share); do not pass means of non-0/1 values (rewards, coverage).
    """
    m, lo, hi = _number(mean), _number(low), _number(high)
    count = n if isinstance(n, int) and not isinstance(n, bool) else None
    if m is None or lo is None or hi is None or count is None or count <= 0 or lo != hi:
        return (low, high)
    # Stored means are float sums / n; allow rounding, but only at the edges (see the docstring).
    if abs(m) <= 1e-9:
        return wilson_interval(0.0, count, confidence)
    if abs(m - 1.0) <= 1e-9:
        return wilson_interval(float(count), count, confidence)
    return (low, high)
