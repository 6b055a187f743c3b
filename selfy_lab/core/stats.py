"""The one stated test behind every word that claims a difference ("separated", "reproduced", "leads").

Two rows of a table (each a method's accuracy over its seeds) differ when **Welch's t-test**, two-sided, rejects
equal means at **alpha 0.05** after **Holm-Bonferroni** adjustment over the table's family of comparisons (the
comparisons it shows together: a paper table's orderings, a reference method against every other, ...). Every
difference is shown with its 95% confidence interval (Welch's, unadjusted) and the adjusted p-value. A row with
fewer than two seeds has no spread to test against, so it is never separated from anything.

Welch's test is used rather than a paired test over seeds. Runs of one seed share their data order and
augmentation draws, but their initial weights agree only where two models have the same parameters in the same
order, which different blocks do not; that the shared part carries enough of the noise to pair on has not been
shown, and the unpaired test is the conservative choice when it would.

``tests/test_stats.py`` checks the rule's false-positive rate and family-wise error by simulation (null pairs at
3 and 5 seeds) and its power at a stated effect, and the statistic against a direct computation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import special

ALPHA = 0.05
CONFIDENCE = 0.95
RULE = "Welch's t-test, two-sided, Holm-adjusted over the table's comparisons, alpha 0.05"
SEPARATED, CANNOT_SEPARATE = "separated", "cannot separate"


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its Welch test: 95% confidence interval, t, degrees of freedom, two-sided p (NaN
    where a row has fewer than two values)."""

    diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float
    n_a: int
    n_b: int

    @property
    def testable(self) -> bool:
        return self.n_a >= 2 and self.n_b >= 2 and self.p == self.p


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> Difference:
    """Welch's two-sample t-test from each row's mean, sample standard deviation (ddof 1) and count."""
    diff = float(mean_a - mean_b)
    n_a, n_b = int(n_a), int(n_b)
    if n_a < 2 or n_b < 2 or not (sd_a == sd_a and sd_b == sd_b):
        nan = float("nan")
        return Difference(diff, nan, nan, nan, nan, nan, n_a, n_b)
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = math.sqrt(va + vb)
    if se == 0:  # both rows without spread: a difference is certain, equality is certain
        return Difference(diff, diff, diff, math.copysign(math.inf, diff) if diff else 0.0, n_a + n_b - 2,
                          0.0 if diff else 1.0, n_a, n_b)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    t = diff / se
    # Student's t distribution through its special functions, as scipy.stats.t's sf and ppf compute it (the
    # same values, without the distribution object's per-call checks: the simulations call this 10^4 times)
    p = float(2 * special.stdtr(df, -abs(t)))
    half = float(special.stdtrit(df, 0.5 + CONFIDENCE / 2)) * se
    return Difference(diff, diff - half, diff + half, t, df, p, n_a, n_b)


def welch_samples(a: Iterable[float], b: Iterable[float]) -> Difference:
    """:func:`welch` of two samples (e.g. a method's top-1 on each seed)."""
    a, b = np.asarray(list(a), float), np.asarray(list(b), float)
    sd = lambda x: float(x.std(ddof=1)) if len(x) > 1 else float("nan")  # noqa: E731
    return welch(float(a.mean()) if len(a) else float("nan"), sd(a), len(a),
                 float(b.mean()) if len(b) else float("nan"), sd(b), len(b))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of a family; NaN (an untestable comparison) stays NaN and is not
    counted in the family's size."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def separated(p_adjusted: float, alpha: float = ALPHA) -> bool:
    """Does an adjusted p-value separate two rows? (NaN, an untestable comparison, never does.)"""
    return bool(p_adjusted == p_adjusted and p_adjusted < alpha)


def family(diffs: Sequence[Difference]) -> list[dict]:
    """The columns a table shows for each comparison of one family: difference, its 95% CI, n of each row,
    p, Holm-adjusted p and whether the rule separates the two rows."""
    adj = holm([d.p for d in diffs])
    return [{"diff": d.diff, "ci_low": d.ci_low, "ci_high": d.ci_high, "n_a": d.n_a, "n_b": d.n_b, "p": d.p,
             "p_holm": float(q), "separated": separated(q)} for d, q in zip(diffs, adj)]


def ordering_verdict(expected_sign: float, diff: float, p_adjusted: float) -> str:
    """A paper's ordering judged by the rule: ``reproduced`` (separated, the paper's sign), ``contradicted``
    (separated, the other sign) or ``cannot separate``."""
    if not separated(p_adjusted):
        return CANNOT_SEPARATE
    return "reproduced" if diff * expected_sign > 0 else "contradicted"


def direction(diff: float, p_adjusted: float, higher: str = "higher", lower: str = "lower") -> str:
    """``higher`` / ``lower`` when the rule separates the rows (by the difference's sign), else
    ``cannot separate``."""
    if not separated(p_adjusted):
        return CANNOT_SEPARATE
    return higher if diff > 0 else lower
