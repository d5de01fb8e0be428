"""Always-valid statistics for A/B campaigns (pure Python, no server imports).

The server computes sufficient statistics in SQL (per arm: count, sum, sum of squares of the feedback
values; per pair of arms: wins, losses, ties of the preference duels) and calls this module to decide.
Every test here can be evaluated after every single observation without inflating the false-positive
rate: each p-value is ``1 / Lambda_t`` for a test martingale ``Lambda_t`` (a mixture of likelihood
ratios) and Ville's inequality gives ``P(exists t: Lambda_t >= 1/alpha) <= alpha`` under the null.

Metric campaigns: two-sided mixture SPRT on the difference of means
-------------------------------------------------------------------
For two arms A, B with ``n_A, n_B`` observations, means ``mean_A, mean_B`` and sample variances
``s_A^2, s_B^2`` (bool keys: ``p~(1-p~)`` with ``p~ = (successes+1)/(n+2)`` so that an arm whose
observations are all equal still has a positive variance), the difference ``D = mean_B - mean_A`` is
approximately ``N(theta, V)`` with ``V = s_A^2/n_A + s_B^2/n_B``.  The likelihood ratio of ``theta``
against ``theta_0`` is ``exp((theta-theta_0)(D-theta_0)/V - (theta-theta_0)^2/(2V))``.  We mix it over the
symmetric two-component normal distribution ``0.5 N(+m, tau^2) + 0.5 N(-m, tau^2)`` for
``theta - theta_0``, which integrates in closed form (``x = D - theta_0``)::

    Lambda(x) = sqrt(V / (V + tau^2))
                * exp( x^2 tau^2 / (2 V (V + tau^2)) - m^2 / (2 (V + tau^2)) )
                * cosh( x m / (V + tau^2) )

With ``m = 0`` this is exactly the normal-mixture mSPRT of Johari, Koomen, Pekelis & Walsh,
"Always Valid Inference: Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022
(eq. for ``Lambda_n`` with mixing ``N(0, tau^2)``); mixture martingales go back to Robbins (1970),
"Statistical methods related to the law of the iterated logarithm".  Centering the two components on
the minimum detectable effect puts the mixing weight where the campaign must be sensitive: in our
simulation (``bench/abtest_sim.py``) it reaches a decision at 1x the MDE in fewer observations than
the fixed-horizon test with 80% power, where the ``N(0, tau^2)`` mixture needs about 10% more.

Choice of the mixing scale (the "tau^2" question): ``m = mde * sigma`` and ``tau = mixture_width * m``
with ``sigma^2 = (s_A^2 + s_B^2) / 2`` and ``mde`` the standardized minimum detectable effect (Cohen's
d, default 0.2).  Both are in units of the data, so the test is scale free.

* p-value for ``theta = 0``: ``min(1, 1 / Lambda(D))``.
* Confidence sequence for ``theta``: ``{theta_0 : Lambda(D - theta_0) < 1/alpha}``.  ``Lambda`` increases
  with ``|x|``, so this is the interval ``D +/- r`` where ``Lambda(r) = 1/alpha`` (solved by bisection).
* Per-arm intervals use the same mixture on a single mean (``V = s^2/n``, ``sigma = s``).

Sessions: assignment is sticky per session, and one session may rate several answers, whose values
are correlated.  When the server passes per-session statistics, ``Var(mean)`` is the delta-method
variance of the ratio of session totals (``cluster_mean_variance``), never below ``s^2/n``; treating
the values as independent would inflate the false-positive rate (52% instead of 4% in the benchmark,
with 5 values per session and an intra-session correlation of 0.5).

The variances are estimated from the data (plug-in), so the guarantee is asymptotic: it holds as
the counts grow (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit theory
and asymptotic confidence sequences", Annals of Statistics 2024).  The warm-up minimum keeps the
plug-in variance from deciding on a handful of points.

Preference campaigns: exact mixture test on the win rate
--------------------------------------------------------
A duel between arms a and b ends in a win for a, a loss for a, or a tie.  **Ties are excluded** from
the test (as in the sign test): they carry no information on which arm is better, and without them,
under the null "no preference", each decisive duel is a fair coin, so the test is exact, not
asymptotic.  With ``w`` wins and ``l`` losses of a against b, the win rate ``q`` gets the prior
``(1-u)/2 Beta(k(1/2+d), k(1/2-d)) + (1-u)/2 Beta(k(1/2-d), k(1/2+d)) + u Beta(1, 1)``: two bumps at
``1/2 +/- d`` (``d = preference_mde``, ``k`` chosen so each has standard deviation ``mixture_width * d``)
tuned to the effect the campaign must detect, plus a uniform component of weight
``u = preference_broad_weight`` (0.2) so that a large preference is not penalised for lying far from the
bumps (22 wins / 3 losses: p = 0.008 with it, 0.056 without).  Then::

    Lambda(q0) = [ (1-u)/2 B(k1 + w, k2 + l) / B(k1, k2) + (1-u)/2 B(k2 + w, k1 + l) / B(k2, k1)
                   + u B(1 + w, 1 + l) ] / (q0^w (1 - q0)^l)

p-value for "win rate = 1/2": ``min(1, 1 / Lambda(1/2))``; confidence sequence for the win rate:
``{q0 : Lambda(q0) < 1/alpha}``, an interval because ``-log(q0^w (1-q0)^l)`` is convex.  The win rate
reported is ``w / (w + l)``; ties are counted and reported but not tested.

More than two arms
------------------
All ``K(K-1)/2`` pairs are tested, each at ``alpha / (K(K-1)/2)`` (Bonferroni; always-valid tests stay
valid under a union bound, so the family-wise error is at most ``alpha`` at every moment).  An arm
wins when it is significantly better than *every* other arm.  Pair p-values are reported
Bonferroni-adjusted; the campaign p-value is the smallest level at which some arm would win:
``min_w max_{j != w} p_adj(w beats j)`` (a pair where ``w`` is not ahead counts as 1).  Per-arm
intervals are marginal, at ``alpha``.

Warm-up and sample-ratio mismatch
---------------------------------
No decision is made until every arm has ``min_observations_per_arm`` observations (WARMUP, then
IN_PROGRESS).  The sample-ratio-mismatch check is Pearson's chi-square of the assignment counts
against the configured split (equal by default) with ``K-1`` degrees of freedom at the strict level
``srm_alpha = 0.001`` (Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments", KDD 2019).  A flagged mismatch withholds the decision: a broken assignment must not
promote a model.

The core functions (``arm_variance``, ``mixture_log_lr``) accept floats or numpy arrays, so the
benchmark runs this very code vectorised over thousands of campaigns; the module itself only needs
the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations
from statistics import NormalDist
from typing import Any

__all__ = [
    "ArmResult",
    "CampaignPhase",
    "CampaignResult",
    "Decision",
    "DuelCounts",
    "InvalidStatisticsInput",
    "MetricArm",
    "PairResult",
    "ScoringType",
    "SrmResult",
    "StatsConfig",
    "arm_variance",
    "chi_square_sf",
    "cluster_mean_variance",
    "evaluate_metric",
    "evaluate_preference",
    "fixed_horizon_sample_size",
    "mixture_log_lr",
    "mixture_radius",
    "sample_ratio_mismatch",
    "win_rate_log_lr",
    "win_rate_interval",
]


class InvalidStatisticsInput(ValueError):
    """Sufficient statistics or a configuration that cannot describe real data."""


class ScoringType(StrEnum):
    HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
    LOWER_IS_BETTER = "LOWER_IS_BETTER"


class CampaignPhase(StrEnum):
    WARMUP = "WARMUP"
    IN_PROGRESS = "IN_PROGRESS"


class Decision(StrEnum):
    CONTINUE = "continue"
    WINNER = "winner"


@dataclass(frozen=True)
class StatsConfig:
    alpha: float = 0.05
    min_observations_per_arm: int = 50
    mde: float = 0.2
    """Standardized minimum detectable effect of metric campaigns (difference of means / sd)."""
    mixture_width: float = 0.25
    """Standard deviation of each mixture component, as a fraction of its center."""
    preference_mde: float = 0.1
    """Win-rate distance from 1/2 that preference campaigns are tuned to detect."""
    preference_broad_weight: float = 0.2
    """Weight of the uniform Beta(1, 1) component of the win-rate mixture (robustness to large effects)."""
    srm_alpha: float = 0.001
    srm_min_expected: float = 10.0
    """The SRM check runs once every arm expects at least this many assignments."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InvalidStatisticsInput(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 < self.srm_alpha < 1.0:
            raise InvalidStatisticsInput(f"srm_alpha must be in (0, 1), got {self.srm_alpha}")
        if self.min_observations_per_arm < 2:
            raise InvalidStatisticsInput("min_observations_per_arm must be at least 2")
        if not self.mde > 0.0:
            raise InvalidStatisticsInput(f"mde must be positive, got {self.mde}")
        if not self.mixture_width > 0.0:
            raise InvalidStatisticsInput(f"mixture_width must be positive, got {self.mixture_width}")
        if not 0.0 < self.preference_mde < 0.5:
            raise InvalidStatisticsInput(f"preference_mde must be in (0, 0.5), got {self.preference_mde}")
        if not 0.0 <= self.preference_broad_weight < 1.0:
            raise InvalidStatisticsInput(
                f"preference_broad_weight must be in [0, 1), got {self.preference_broad_weight}"
            )
        if self.srm_min_expected <= 0:
            raise InvalidStatisticsInput("srm_min_expected must be positive")


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class MetricArm:
    """Sufficient statistics of one arm's feedback values.

    Optional cluster statistics (the unit of assignment is a session, and a session may give several
    feedback values): ``clusters`` = K sessions, and with ``S_i`` / ``N_i`` the sum / count of session i:
    ``cluster_sum_sq`` = sum S_i^2, ``cluster_count_sq`` = sum N_i^2, ``cluster_cross`` = sum S_i N_i.
    """

    arm: str
    count: int
    sum: float
    sum_sq: float
    clusters: int | None = None
    cluster_sum_sq: float | None = None
    cluster_count_sq: float | None = None
    cluster_cross: float | None = None


@dataclass(frozen=True)
class DuelCounts:
    """Preference duels between two arms: ``wins`` = a preferred over b, ``losses`` = b over a."""

    arm_a: str
    arm_b: str
    wins: int
    losses: int
    ties: int = 0


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class ArmResult:
    arm: str
    count: int
    """Metric: feedback values. Preference: duels involving the arm (ties included)."""
    mean: float | None
    """Metric: mean value. Preference: win rate over decisive duels. None without data."""
    ci_low: float | None
    ci_high: float | None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None


@dataclass(frozen=True)
class PairResult:
    arm_a: str
    arm_b: str
    estimate: float | None
    """Metric: mean_b - mean_a. Preference: win rate of a against b (ties excluded)."""
    ci_low: float | None
    ci_high: float | None
    p_value: float
    """Always-valid, Bonferroni-adjusted over the campaign's pairs."""


@dataclass(frozen=True)
class SrmResult:
    checked: bool
    statistic: float | None
    p_value: float | None
    flagged: bool


@dataclass(frozen=True)
class CampaignResult:
    phase: CampaignPhase
    decision: Decision
    winner: str | None
    p_value: float
    arms: list[ArmResult]
    pairs: list[PairResult]
    srm: SrmResult
    notes: list[str] = field(default_factory=list)

    def arm(self, name: str) -> ArmResult:
        for result in self.arms:
            if result.arm == name:
                return result
        raise KeyError(name)


# ----------------------------------------------------------------------------- vectorisable core


def _xp(*values: Any) -> Any:
    """``math`` for Python numbers, numpy when any value is an array (imported only then)."""
    for value in values:
        if hasattr(value, "__array__"):
            import numpy

            return numpy
    return math


def arm_variance(count: Any, total: Any, total_sq: Any, boolean: bool) -> Any:
    """Variance estimate of one arm from (count, sum, sum of squares); floats or numpy arrays.

    Bool keys: ``p~ (1 - p~)`` with ``p~ = (sum + 1) / (count + 2)``.  Scalar keys: the unbiased sample
    variance ``(sum_sq - sum^2 / n) / (n - 1)`` clamped at 0 (needs ``n >= 2``).
    """
    if boolean:
        p = (total + 1.0) / (count + 2.0)
        return p * (1.0 - p)
    xp = _xp(count, total, total_sq)
    centered = total_sq - total * total / count
    if xp is math:
        return max(centered, 0.0) / (count - 1)
    return xp.maximum(centered, 0.0) / (count - 1)


def cluster_mean_variance(
    count: Any, total: Any, clusters: Any, cluster_sum_sq: Any, cluster_count_sq: Any, cluster_cross: Any
) -> Any:
    """Variance of an arm's mean ``sum S_i / sum N_i`` when observations come in clusters (sessions).

    Delta method for a ratio of cluster totals (Deng, Knoblich & Lu, "Applying the Delta Method in
    Metric Analytics", KDD 2018), with ``K`` clusters, ``r`` the mean and ``N = count / K``::

        Var = (s_S^2 - 2 r s_SN + r^2 s_N^2) / (K N^2)

    where ``s_S^2``, ``s_N^2``, ``s_SN`` are the sample (co)variances of the cluster sums and counts.
    Floats or numpy arrays; needs ``K >= 2``.
    """
    k = clusters
    r = total / count
    s_ss = (cluster_sum_sq - total * total / k) / (k - 1)
    s_nn = (cluster_count_sq - count * count / k) / (k - 1)
    s_sn = (cluster_cross - total * count / k) / (k - 1)
    n_bar = count / k
    return (s_ss - 2.0 * r * s_sn + r * r * s_nn) / (k * n_bar * n_bar)


def mixture_log_lr(x: Any, var: Any, center: Any, tau2: Any) -> Any:
    """``log Lambda(x)`` of the two-component normal mixture (see the module docstring).

    ``x``: observed minus hypothesised value; ``var``: its variance ``V``; ``center``: ``m``;
    ``tau2``: ``tau^2``.  Floats or numpy arrays (broadcast).
    """
    xp = _xp(x, var, center, tau2)
    total = var + tau2
    z = xp.fabs(x) * center / total
    log_cosh = z + xp.log1p(xp.exp(-2.0 * z)) - math.log(2.0)
    return 0.5 * xp.log(var / total) + x * x * tau2 / (2.0 * var * total) - center * center / (2.0 * total) + log_cosh


def mixture_radius(var: float, center: float, tau2: float, alpha: float) -> float:
    """Half-width ``r`` of the confidence sequence: the root of ``log Lambda(r) = log(1/alpha)``."""
    if var <= 0.0:
        return 0.0
    target = math.log(1.0 / alpha)
    low, high = 0.0, math.sqrt(var)
    while mixture_log_lr(high, var, center, tau2) < target:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mixture_log_lr(mid, var, center, tau2) < target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(high, 1e-300):
            break
    return high


def _metric_mixture(sigma2: float, config: StatsConfig) -> tuple[float, float]:
    center = config.mde * math.sqrt(sigma2)
    return center, (config.mixture_width * center) ** 2


# ----------------------------------------------------------------------------- preference core


def _beta_mixture_params(config: StatsConfig) -> tuple[float, float]:
    mean = 0.5 + config.preference_mde
    sd = config.mixture_width * config.preference_mde
    concentration = mean * (1.0 - mean) / (sd * sd) - 1.0
    return concentration * mean, concentration * (1.0 - mean)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _log_marginal(wins: int, losses: int, config: StatsConfig) -> float:
    """log of the mixture's marginal likelihood of the decisive duels (the numerator of Lambda)."""
    a, b = _beta_mixture_params(config)
    tuned = (1.0 - config.preference_broad_weight) / 2.0
    terms = [
        (tuned, _log_beta(a + wins, b + losses) - _log_beta(a, b)),
        (tuned, _log_beta(b + wins, a + losses) - _log_beta(b, a)),
        (config.preference_broad_weight, _log_beta(1.0 + wins, 1.0 + losses)),  # B(1, 1) = 1
    ]
    top = max(value for weight, value in terms if weight > 0)
    return top + math.log(sum(weight * math.exp(value - top) for weight, value in terms if weight > 0))


def _log_bernoulli(wins: int, losses: int, rate: float) -> float:
    out = 0.0
    if wins:
        out += wins * math.log(rate) if rate > 0.0 else -math.inf
    if losses:
        out += losses * math.log1p(-rate) if rate < 1.0 else -math.inf
    return out


def win_rate_log_lr(wins: int, losses: int, rate: float, config: StatsConfig) -> float:
    """``log Lambda(q0)`` of the beta-mixture test of "win rate = q0" (exact; ties excluded)."""
    return _log_marginal(wins, losses, config) - _log_bernoulli(wins, losses, rate)


def win_rate_interval(wins: int, losses: int, alpha: float, config: StatsConfig) -> tuple[float, float]:
    """Confidence sequence for the win rate: ``{q0 : Lambda(q0) < 1/alpha}``, an interval."""
    n = wins + losses
    if n == 0:
        return 0.0, 1.0
    target = math.log(1.0 / alpha)
    marginal = _log_marginal(wins, losses, config)
    mle = wins / n

    def inside(rate: float) -> bool:
        return marginal - _log_bernoulli(wins, losses, rate) < target

    def edge(outer: float) -> float:
        if inside(outer):
            return outer
        good, bad = mle, outer
        for _ in range(200):
            mid = 0.5 * (good + bad)
            if inside(mid):
                good = mid
            else:
                bad = mid
            if abs(good - bad) <= 1e-13:
                break
        return good

    return edge(0.0), edge(1.0)


# ----------------------------------------------------------------------------- SRM


def chi_square_sf(statistic: float, dof: int) -> float:
    """Survival function of the chi-square distribution with an integer ``dof`` (closed form).

    Even ``dof = 2j``: ``exp(-x/2) sum_{i<j} (x/2)^i / i!``.  Odd ``dof = 2j+1``:
    ``erfc(sqrt(x/2)) + exp(-x/2) sum_{i<j} (x/2)^(i+1/2) / Gamma(i+3/2)``.
    """
    if dof < 1:
        raise InvalidStatisticsInput("chi-square needs at least one degree of freedom")
    if statistic <= 0.0:
        return 1.0
    half = statistic / 2.0
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, dof // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(half) / math.gamma(1.5)
    series = 0.0
    for i in range(dof // 2):
        if i:
            term *= half / (i + 0.5)
        series += term
    return min(1.0, total + math.exp(-half) * series)


def sample_ratio_mismatch(
    assignments: Sequence[int],
    *,
    weights: Sequence[float] | None = None,
    config: StatsConfig | None = None,
) -> SrmResult:
    """Pearson chi-square of the assignment counts against the configured split."""
    config = config or StatsConfig()
    k = len(assignments)
    if k < 2:
        raise InvalidStatisticsInput("the sample-ratio check needs at least two arms")
    if any(int(c) != c or c < 0 for c in assignments):
        raise InvalidStatisticsInput("assignment counts must be non-negative integers")
    if weights is None:
        weights = [1.0] * k
    if len(weights) != k or any(not w > 0 for w in weights):
        raise InvalidStatisticsInput("one positive weight per arm is required")
    total = float(sum(assignments))
    norm = float(sum(weights))
    expected = [total * w / norm for w in weights]
    if min(expected) < config.srm_min_expected:
        return SrmResult(checked=False, statistic=None, p_value=None, flagged=False)
    statistic = sum((o - e) ** 2 / e for o, e in zip(assignments, expected, strict=True))
    p_value = chi_square_sf(statistic, k - 1)
    return SrmResult(checked=True, statistic=statistic, p_value=p_value, flagged=p_value < config.srm_alpha)


# ----------------------------------------------------------------------------- campaigns


def _check_names(names: Sequence[str]) -> None:
    if len(names) < 2:
        raise InvalidStatisticsInput("a campaign needs at least two arms")
    if len(set(names)) != len(names):
        raise InvalidStatisticsInput("arm names must be unique")


def _srm(assignments: Sequence[int] | None, k: int, config: StatsConfig) -> SrmResult:
    if assignments is None:
        return SrmResult(checked=False, statistic=None, p_value=None, flagged=False)
    if len(assignments) != k:
        raise InvalidStatisticsInput("one assignment count per arm is required")
    return sample_ratio_mismatch(assignments, config=config)


def _decide(
    names: Sequence[str],
    better: dict[tuple[str, str], bool],
    adjusted: dict[tuple[str, str], float],
    alpha: float,
) -> tuple[str | None, float]:
    """Winner (or None) and campaign p-value from pairwise "row beats column" tables."""
    best_arm, best_p = None, 1.0
    for w in names:
        worst = 0.0
        for j in names:
            if j == w:
                continue
            worst = max(worst, adjusted[(w, j)] if better[(w, j)] else 1.0)
        if best_arm is None or worst < best_p:
            best_arm, best_p = w, worst
    return (best_arm if best_p <= alpha else None), best_p


def _finish(
    phase: CampaignPhase,
    srm: SrmResult,
    candidate: str | None,
    p_value: float,
    arms: list[ArmResult],
    pairs: list[PairResult],
    notes: list[str],
) -> CampaignResult:
    winner = None
    if phase is CampaignPhase.WARMUP:
        notes.append("warm-up: some arm has fewer observations than the minimum")
    elif srm.flagged:
        notes.append("sample-ratio mismatch: assignment counts do not match the split; decision withheld")
    else:
        winner = candidate
    return CampaignResult(
        phase=phase,
        decision=Decision.WINNER if winner is not None else Decision.CONTINUE,
        winner=winner,
        p_value=p_value,
        arms=arms,
        pairs=pairs,
        srm=srm,
        notes=notes,
    )


def _mean_variance(arm: MetricArm, var: float) -> float:
    """Variance of the arm's mean: ``var / n`` for independent observations; with cluster statistics,
    the delta-method variance, never below ``var / n`` (a session's values are rarely anti-correlated,
    and the floor keeps a few sessions from claiming more precision than their values carry)."""
    independent = var / arm.count
    if arm.clusters is None or arm.clusters >= arm.count or arm.clusters < 2:
        return independent
    clustered = cluster_mean_variance(
        arm.count, arm.sum, arm.clusters, arm.cluster_sum_sq, arm.cluster_count_sq, arm.cluster_cross
    )
    return max(independent, clustered)


def evaluate_metric(
    arms: Sequence[MetricArm],
    *,
    boolean: bool,
    scoring_type: ScoringType | str = ScoringType.HIGHER_IS_BETTER,
    assignments: Sequence[int] | None = None,
    config: StatsConfig | None = None,
) -> CampaignResult:
    """Evaluate a metric campaign from per-arm (count, sum, sum of squares) of the feedback values.

    ``assignments``: requests routed to each arm (same order), for the sample-ratio check.
    """
    config = config or StatsConfig()
    try:
        scoring = ScoringType(scoring_type)
    except ValueError:
        raise InvalidStatisticsInput(f"unknown scoring type {scoring_type!r}") from None
    _check_names([a.arm for a in arms])
    for a in arms:
        if int(a.count) != a.count or a.count < 0:
            raise InvalidStatisticsInput(f"arm {a.arm!r}: count must be a non-negative integer")
        if not (math.isfinite(a.sum) and math.isfinite(a.sum_sq)):
            raise InvalidStatisticsInput(f"arm {a.arm!r}: sums must be finite")
        if boolean and not (0 <= a.sum <= a.count and a.sum_sq == a.sum):
            raise InvalidStatisticsInput(f"arm {a.arm!r}: bool values need 0 <= sum = sum_sq <= count")
        if a.count and a.sum_sq < a.sum * a.sum / a.count * (1 - 1e-9) - 1e-9:
            raise InvalidStatisticsInput(f"arm {a.arm!r}: sum of squares is below sum^2 / count")
        if a.count == 0 and (a.sum != 0 or a.sum_sq != 0):
            raise InvalidStatisticsInput(f"arm {a.arm!r}: an empty arm must have zero sums")
        if a.clusters is not None:
            extra = (a.cluster_sum_sq, a.cluster_count_sq, a.cluster_cross)
            if any(v is None or not math.isfinite(v) for v in extra):
                raise InvalidStatisticsInput(f"arm {a.arm!r}: cluster statistics come together (all finite)")
            if int(a.clusters) != a.clusters or not 0 <= a.clusters <= a.count or (a.count and not a.clusters):
                raise InvalidStatisticsInput(f"arm {a.arm!r}: clusters must be an integer in [1, count]")
    srm = _srm(assignments, len(arms), config)
    phase = (
        CampaignPhase.IN_PROGRESS
        if all(a.count >= config.min_observations_per_arm for a in arms)
        else CampaignPhase.WARMUP
    )
    notes: list[str] = []

    means: dict[str, float | None] = {}
    variances: dict[str, float | None] = {}
    mean_variances: dict[str, float | None] = {}
    arm_results = []
    for a in arms:
        if a.count == 0:
            means[a.arm], variances[a.arm], mean_variances[a.arm] = None, None, None
            arm_results.append(ArmResult(a.arm, 0, None, None, None))
            continue
        mean = a.sum / a.count
        var = arm_variance(a.count, a.sum, a.sum_sq, boolean) if (boolean or a.count >= 2) else None
        means[a.arm], variances[a.arm] = mean, var
        if var is None:
            mean_variances[a.arm] = None
            low = high = None
        else:
            mv = mean_variances[a.arm] = _mean_variance(a, var)
            center, tau2 = _metric_mixture(var, config)
            radius = mixture_radius(mv, center, tau2, config.alpha) if mv > 0 else 0.0
            low, high = mean - radius, mean + radius
            if boolean:
                low, high = max(low, 0.0), min(high, 1.0)
        arm_results.append(ArmResult(a.arm, a.count, mean, low, high))

    names = [a.arm for a in arms]
    n_pairs = len(names) * (len(names) - 1) // 2
    pair_alpha = config.alpha / n_pairs
    better: dict[tuple[str, str], bool] = {}
    adjusted: dict[tuple[str, str], float] = {}
    pair_results = []
    sign = 1.0 if scoring is ScoringType.HIGHER_IS_BETTER else -1.0
    for first, second in combinations(names, 2):
        m1, m2, v1, v2 = means[first], means[second], variances[first], variances[second]
        if m1 is None or m2 is None or v1 is None or v2 is None:
            diff, low, high, p = (None if m1 is None or m2 is None else m2 - m1), None, None, 1.0
        else:
            diff = m2 - m1
            mv1, mv2 = mean_variances[first], mean_variances[second]
            assert mv1 is not None and mv2 is not None  # set with the variances, which are known here
            var = mv1 + mv2
            if var <= 0.0:  # both arms constant (scalar keys only): the difference is exact
                p = 1.0 if diff == 0 else 0.0
                low = high = diff
            else:
                center, tau2 = _metric_mixture(0.5 * (v1 + v2), config)
                p = min(1.0, math.exp(-mixture_log_lr(diff, var, center, tau2)))
                radius = mixture_radius(var, center, tau2, pair_alpha)
                low, high = diff - radius, diff + radius
        p_adj = min(1.0, p * n_pairs)
        pair_results.append(PairResult(first, second, diff, low, high, p_adj))
        adjusted[(first, second)] = adjusted[(second, first)] = p_adj
        better[(second, first)] = diff is not None and sign * diff > 0
        better[(first, second)] = diff is not None and sign * diff < 0
    candidate, p_value = _decide(names, better, adjusted, config.alpha)
    return _finish(phase, srm, candidate, p_value, arm_results, pair_results, notes)


def evaluate_preference(
    arms: Sequence[str],
    duels: Sequence[DuelCounts],
    *,
    assignments: Sequence[int] | None = None,
    config: StatsConfig | None = None,
) -> CampaignResult:
    """Evaluate a preference campaign from duel counts between arms (any order, repeats summed)."""
    config = config or StatsConfig()
    names = list(arms)
    _check_names(names)
    index = {name: i for i, name in enumerate(names)}
    table: dict[tuple[str, str], list[int]] = {}
    for d in duels:
        if d.arm_a not in index or d.arm_b not in index:
            raise InvalidStatisticsInput(f"duel between unknown arms {d.arm_a!r} and {d.arm_b!r}")
        if d.arm_a == d.arm_b:
            raise InvalidStatisticsInput(f"a duel needs two different arms, got {d.arm_a!r} twice")
        for value in (d.wins, d.losses, d.ties):
            if int(value) != value or value < 0:
                raise InvalidStatisticsInput("wins, losses and ties must be non-negative integers")
        if index[d.arm_a] < index[d.arm_b]:
            key, wins, losses = (d.arm_a, d.arm_b), d.wins, d.losses
        else:
            key, wins, losses = (d.arm_b, d.arm_a), d.losses, d.wins
        row = table.setdefault(key, [0, 0, 0])
        row[0] += int(wins)
        row[1] += int(losses)
        row[2] += int(d.ties)
    srm = _srm(assignments, len(names), config)

    totals = {name: [0, 0, 0] for name in names}  # wins, losses, ties
    for (a, b), (wins, losses, ties) in table.items():
        totals[a][0] += wins
        totals[a][1] += losses
        totals[a][2] += ties
        totals[b][0] += losses
        totals[b][1] += wins
        totals[b][2] += ties
    arm_results = []
    for name in names:
        wins, losses, ties = totals[name]
        decisive = wins + losses
        low, high = win_rate_interval(wins, losses, config.alpha, config)
        rate = wins / decisive if decisive else None
        arm_results.append(
            ArmResult(
                name,
                decisive + ties,
                rate,
                low if decisive else None,
                high if decisive else None,
                wins=wins,
                losses=losses,
                ties=ties,
            )
        )
    phase = (
        CampaignPhase.IN_PROGRESS
        if all(r.count >= config.min_observations_per_arm for r in arm_results)
        else CampaignPhase.WARMUP
    )

    n_pairs = len(names) * (len(names) - 1) // 2
    pair_alpha = config.alpha / n_pairs
    better: dict[tuple[str, str], bool] = {}
    adjusted: dict[tuple[str, str], float] = {}
    pair_results = []
    for a, b in combinations(names, 2):
        wins, losses, _ties = table.get((a, b), [0, 0, 0])
        decisive = wins + losses
        p = min(1.0, math.exp(-win_rate_log_lr(wins, losses, 0.5, config)))
        p_adj = min(1.0, p * n_pairs)
        if decisive:
            low, high = win_rate_interval(wins, losses, pair_alpha, config)
            pair_results.append(PairResult(a, b, wins / decisive, low, high, p_adj))
        else:
            pair_results.append(PairResult(a, b, None, None, None, p_adj))
        adjusted[(a, b)] = adjusted[(b, a)] = p_adj
        better[(a, b)] = wins > losses
        better[(b, a)] = losses > wins
    candidate, p_value = _decide(names, better, adjusted, config.alpha)
    return _finish(phase, srm, candidate, p_value, arm_results, pair_results, [])


def fixed_horizon_sample_size(mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Per-arm size of the two-sided fixed-horizon z-test: ``2 (z_{1-alpha/2} + z_power)^2 / mde^2``
    (``mde`` standardized).  Used as the baseline of the benchmark."""
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)
    return math.ceil(2.0 * z * z / (mde * mde))
