"""The stated test (selfy_lab.core.stats): Welch's t-test against scipy's and a direct computation, its false-positive
rate and family-wise error by simulation under the null, its power at a stated effect, and the rows it must never
separate."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from selfy_lab.core import stats

SIMULATIONS = 2000


def _direct(a, b):
    """Welch's statistic written out: t, Welch-Satterthwaite degrees of freedom."""
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1) / na
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1) / nb
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    return t, df


@pytest.mark.parametrize("a,b", [([71.2, 68.4, 75.0], [60.1, 66.3, 58.8]),
                                 ([52.0, 80.1, 24.3, 61.7, 42.0], [78.4, 69.0, 88.2]),
                                 ([10.0, 10.5], [11.0, 9.0, 12.5, 10.2])])
def test_welch_equals_scipy_and_the_direct_formula(a, b):
    d = stats.welch_samples(a, b)
    t, df = _direct(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert d.t == pytest.approx(t) and d.df == pytest.approx(df)
    assert d.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (d.ci_low, d.ci_high) == pytest.approx((ci.low, ci.high))
    # the summary form the tables use (mean, sample std, n) gives the same test
    s = stats.welch(np.mean(a), np.std(a, ddof=1), len(a), np.mean(b), np.std(b, ddof=1), len(b))
    assert s.p == pytest.approx(d.p) and s.diff == pytest.approx(d.diff)


def test_a_row_of_one_seed_is_never_separated():
    d = stats.welch_samples([90.0], [10.0, 11.0, 12.0])
    assert not d.testable and math.isnan(d.p)
    f = stats.family([d, stats.welch_samples([1.0, 2.0, 1.5], [9.0, 9.5, 10.0])])
    assert f[0]["separated"] is False and math.isnan(f[0]["p_holm"])
    assert f[1]["separated"] is True  # the NaN does not count in the family's size either
    assert stats.ordering_verdict(1.0, 80.0, f[0]["p_holm"]) == stats.CANNOT_SEPARATE


def test_holm_against_its_definition():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    adj = stats.holm(p)
    # sorted 0.005, 0.01, 0.03, 0.04 over m = 4: 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    assert adj[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(adj[4])
    assert stats.holm([0.5, 0.6, 0.9]).max() <= 1.0


def _null_pairs(rng, n, sd_ratio=1.0):
    a = rng.normal(50.0, 5.0, size=(SIMULATIONS, n))
    b = rng.normal(50.0, 5.0 * sd_ratio, size=(SIMULATIONS, n))
    return a, b


@pytest.mark.parametrize("n", [3, 5])
def test_false_positive_rate_at_most_alpha(n):
    """2,000 pairs of rows drawn alike (two runs of one method: equal means and spreads): the rule separates
    at most 5% of them (about 3.4% at 3 seeds and 4.4% at 5 by 200,000 draws: Welch's test is conservative
    when the spreads are equal)."""
    rng = np.random.default_rng(1000 + n)
    a, b = _null_pairs(rng, n)
    hits = [stats.separated(stats.welch_samples(x, y).p) for x, y in zip(a, b)]
    assert np.mean(hits) <= stats.ALPHA


@pytest.mark.parametrize("n", [3, 5])
def test_false_positive_rate_with_unequal_spreads(n):
    """Equal means, one row three times as spread (a stable method beside an unstable one): Welch's test is
    then slightly liberal at so few seeds (5.2% at 3 and at 5 seeds by 200,000 draws), so 2,000 draws stay
    within 6%; the README's verdicts state the rule, not a rate below its alpha."""
    rng = np.random.default_rng(1100 + n)
    a, b = _null_pairs(rng, n, sd_ratio=3.0)
    hits = [stats.separated(stats.welch_samples(x, y).p) for x, y in zip(a, b)]
    assert np.mean(hits) <= 0.06


def test_the_sum_of_spreads_rule_it_replaces_was_looser():
    """The rule the tables used before (a gap larger than the sum of the two standard deviations) separates
    null pairs at 3 seeds more often than the stated test: why it was replaced."""
    rng = np.random.default_rng(7)
    a, b = _null_pairs(rng, 3)
    gap = np.abs(a.mean(1) - b.mean(1))
    old = np.mean(gap > a.std(1, ddof=1) + b.std(1, ddof=1))
    new = np.mean([stats.separated(stats.welch_samples(x, y).p) for x, y in zip(a, b)])
    assert old > new


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 5])
def test_holm_keeps_the_family_wise_error(n):
    """2,000 families of 10 null comparisons: at most 5% of families have any comparison separated."""
    rng = np.random.default_rng(2000 + n)
    any_hit = []
    for _ in range(SIMULATIONS):
        x = rng.normal(50.0, 5.0, size=(10, 2, n))
        f = stats.family([stats.welch_samples(r[0], r[1]) for r in x])
        any_hit.append(any(c["separated"] for c in f))
    assert np.mean(any_hit) <= stats.ALPHA


def test_power_at_a_stated_effect():
    """The stated effect: a difference of two seed standard deviations. At 5 seeds a row pair is separated in at
    least 70% of 2,000 draws (about 0.76 by theory); at 3 seeds in far fewer, which is why the verdicts that
    matter use 5."""
    rng = np.random.default_rng(3)
    power = {}
    for n in (3, 5):
        a = rng.normal(60.0, 5.0, size=(SIMULATIONS, n))
        b = rng.normal(50.0, 5.0, size=(SIMULATIONS, n))
        power[n] = np.mean([stats.separated(stats.welch_samples(x, y).p) for x, y in zip(a, b)])
    assert power[5] >= 0.70
    assert power[3] < power[5] - 0.2


def test_ordering_and_direction_words():
    assert stats.ordering_verdict(1.0, 3.0, 0.01) == "reproduced"
    assert stats.ordering_verdict(1.0, -3.0, 0.01) == "contradicted"
    assert stats.ordering_verdict(1.0, 3.0, 0.2) == stats.CANNOT_SEPARATE
    assert stats.direction(2.0, 0.01, "leads", "trails") == "leads"
    assert stats.direction(-2.0, 0.01, "leads", "trails") == "trails"
    assert stats.direction(-2.0, float("nan")) == stats.CANNOT_SEPARATE
