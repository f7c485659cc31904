"""How sure an accuracy is: confidence intervals and a paired test between two classifiers.

RVAA's test split holds 144 images, so one image is 0.7 points and a 95 % interval
around 87 % spans about ten points. These two functions say so next to every number:

* :func:`wilson_interval`: the Wilson score interval of an accuracy (well behaved near 0 and 1).
* :func:`mcnemar_exact`: the exact McNemar test of two classifiers judged on the same images; only
  the images on which they disagree carry information about which one is better.
* :func:`paired_mean_interval`: the mean of paired differences (a class's post-test minus pre-test
  score, one difference per student) with its Student-t 95 % interval.
"""
from __future__ import annotations

import math
from statistics import fmean, stdev

from scipy.stats import t as student_t

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95 % interval


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (lower, upper) of ``correct`` successes out of ``n``; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """:func:`wilson_interval` of an accuracy given as a fraction of ``n`` images."""
    return wilson_interval(round(accuracy * n), n)


def interval_text(low: float, high: float) -> str:
    """An interval in words, as every summary and caption shows it: ``95% interval 80.3% to 91.4%``."""
    return f"95% interval {low:.1%} to {high:.1%}"


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    ``only_first``: images the first classifier gets right and the second wrong;
    ``only_second`` the reverse. Under "equally good" each discordant image is a
    fair coin, so the p-value is a two-sided binomial tail (1.0 when they never disagree).
    """
    n = only_first + only_second
    tail = sum(math.comb(n, k) for k in range(min(only_first, only_second) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_mean_interval(differences: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper): the paired t interval of the mean difference (one difference per person).

    Paired t rather than a bootstrap: a class has 10 to 40 students, where a percentile bootstrap is too
    narrow, and differences of accuracies are bounded, so the t interval's normal assumption is mild.
    Needs two differences; with fewer the bounds are NaN. With no spread at all the interval is the mean.
    """
    if not differences:
        return math.nan, math.nan, math.nan
    mean = fmean(differences)
    if len(differences) < 2:
        return mean, math.nan, math.nan
    quantile = float(student_t.ppf(0.5 + level / 2, len(differences) - 1))
    half = quantile * stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half
