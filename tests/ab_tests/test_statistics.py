"""The A/B decision statistics, pinned against hand-computed numbers and independent integrals.

Expected values are computed here from the formulas written out explicitly (or by numerical
integration of the mixture), never by calling the code under test.
"""

from __future__ import annotations

import math

import pytest

from adaptive_engine.server.domains.ab_tests.statistics import (
    CampaignPhase,
    Decision,
    DuelCounts,
    InvalidStatisticsInput,
    MetricArm,
    ScoringType,
    StatsConfig,
    arm_variance,
    chi_square_sf,
    cluster_mean_variance,
    evaluate_metric,
    evaluate_preference,
    fixed_horizon_sample_size,
    mixture_log_lr,
    mixture_radius,
    sample_ratio_mismatch,
    win_rate_interval,
    win_rate_log_lr,
)

CONFIG = StatsConfig()


def arm_of(name: str, values: list[float]) -> MetricArm:
    return MetricArm(name, len(values), float(sum(values)), float(sum(v * v for v in values)))


def normal_pdf(x: float, mean: float, var: float) -> float:
    return math.exp(-((x - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)


def mixture_integral(x: float, var: float, center: float, tau2: float, steps: int = 40001) -> float:
    """Lambda by brute force: integrate the Gaussian likelihood ratio against the mixing density."""
    width = center + 12 * math.sqrt(tau2)
    total = 0.0
    h = 2 * width / (steps - 1)
    for i in range(steps):
        theta = -width + i * h
        lr = math.exp(theta * x / var - theta * theta / (2 * var))
        density = 0.5 * normal_pdf(theta, center, tau2) + 0.5 * normal_pdf(theta, -center, tau2)
        weight = 0.5 if i in (0, steps - 1) else 1.0
        total += weight * lr * density
    return total * h


# ----------------------------------------------------------------------------- core formulas


def test_zero_center_is_the_jkpw_normal_mixture() -> None:
    # V = 1, tau^2 = 3, x = 2: 0.5 log(1/4) + 3 * 4 / (2 * 1 * 4) = -0.6931471805599453 + 1.5
    assert mixture_log_lr(2.0, 1.0, 0.0, 3.0) == pytest.approx(0.8068528194400547, rel=1e-12)


def test_mixture_closed_form_matches_numerical_integral() -> None:
    for x, var, center, tau2 in [(0.3, 0.01, 0.2, 0.0025), (-0.05, 0.004, 0.1, 0.001), (0.0, 0.02, 0.15, 0.01)]:
        expected = mixture_integral(x, var, center, tau2)
        assert math.exp(mixture_log_lr(x, var, center, tau2)) == pytest.approx(expected, rel=1e-6)


def test_hand_computed_two_arm_scalar_campaign() -> None:
    # Arm a: n=100, sum=50, sum_sq=125 -> mean 0.5, s^2 = (125 - 2500/100)/99 = 100/99
    # Arm b: n=120, sum=90, sum_sq=207.5 -> mean 0.75, s^2 = (207.5 - 8100/120)/119 = 140/119
    a = MetricArm("a", 100, 50.0, 125.0)
    b = MetricArm("b", 120, 90.0, 207.5)
    var_a, var_b = 100 / 99, 140 / 119
    diff = 0.25
    v = var_a / 100 + var_b / 120
    sigma = math.sqrt((var_a + var_b) / 2)
    m = 0.2 * sigma
    tau2 = (0.25 * m) ** 2
    lam = (
        math.sqrt(v / (v + tau2))
        * math.exp(diff**2 * tau2 / (2 * v * (v + tau2)) - m**2 / (2 * (v + tau2)))
        * math.cosh(diff * m / (v + tau2))
    )
    result = evaluate_metric([a, b], boolean=False, assignments=[100, 120])
    assert result.phase is CampaignPhase.IN_PROGRESS
    assert result.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-9)
    pair = result.pairs[0]
    assert (pair.arm_a, pair.arm_b) == ("a", "b")
    assert pair.estimate == pytest.approx(0.25)
    # the interval edge r solves Lambda(r) = 1/alpha, checked with the explicit formula
    r = pair.ci_high - diff
    assert diff - pair.ci_low == pytest.approx(r)
    lam_r = (
        math.sqrt(v / (v + tau2))
        * math.exp(r**2 * tau2 / (2 * v * (v + tau2)) - m**2 / (2 * (v + tau2)))
        * math.cosh(r * m / (v + tau2))
    )
    assert lam_r == pytest.approx(20.0, rel=1e-9)
    arm_a = result.arm("a")
    assert (arm_a.count, arm_a.mean) == (100, 0.5)
    # per-arm interval: same mixture on one mean, V = s^2/n
    r_a = arm_a.ci_high - 0.5
    va = var_a / 100
    ma = 0.2 * math.sqrt(var_a)
    ta = (0.25 * ma) ** 2
    lam_a = (
        math.sqrt(va / (va + ta))
        * math.exp(r_a**2 * ta / (2 * va * (va + ta)) - ma**2 / (2 * (va + ta)))
        * math.cosh(r_a * ma / (va + ta))
    )
    assert lam_a == pytest.approx(20.0, rel=1e-9)


def test_mixture_radius_inverts_the_test() -> None:
    var, center, tau2 = 0.01, 0.02, 0.000025
    r = mixture_radius(var, center, tau2, 0.05)
    assert math.exp(mixture_log_lr(r, var, center, tau2)) == pytest.approx(20.0, rel=1e-9)
    assert mixture_log_lr(0.999 * r, var, center, tau2) < math.log(20.0)


def test_bool_variance_uses_laplace_smoothed_rate() -> None:
    # 30 successes of 100: p~ = 31/102
    assert arm_variance(100, 30, 30, True) == pytest.approx((31 / 102) * (71 / 102))
    # all zeros still gives a positive variance: p~ = 1/52
    assert arm_variance(50, 0, 0, True) == pytest.approx((1 / 52) * (51 / 52))
    # scalar: unbiased sample variance of [1, 2, 3, 4] = 5/3
    assert arm_variance(4, 10.0, 30.0, False) == pytest.approx(5 / 3)


def test_bool_campaign_pins_rates_and_clips_intervals() -> None:
    a = MetricArm("a", 200, 20, 20)  # 10%
    b = MetricArm("b", 200, 0, 0)  # 0%
    result = evaluate_metric([a, b], boolean=True)
    assert result.arm("a").mean == pytest.approx(0.1)
    assert result.arm("b").ci_low == 0.0
    assert 0.0 <= result.arm("b").ci_high < 0.1
    pa, pb = 21 / 202, 1 / 202
    v = pa * (1 - pa) / 200 + pb * (1 - pb) / 200
    sigma = math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
    m, diff = 0.2 * sigma, -0.1
    tau2 = (0.25 * m) ** 2
    lam = (
        math.sqrt(v / (v + tau2))
        * math.exp(diff**2 * tau2 / (2 * v * (v + tau2)) - m**2 / (2 * (v + tau2)))
        * math.cosh(diff * m / (v + tau2))
    )
    assert result.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-9)
    assert result.winner == "a"


def test_beta_mixture_matches_numerical_integral_and_hand_formula() -> None:
    wins, losses = 60, 40
    # components: mean 0.6 and 0.4, sd 0.025 -> concentration k = 0.24 / 0.025^2 - 1 = 383
    k = 0.24 / 0.025**2 - 1
    a1, b1 = 0.6 * k, 0.4 * k

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    # weights 0.4 / 0.4 on the bumps and 0.2 on the uniform Beta(1, 1)
    marginal = (
        0.4 * math.exp(log_beta(a1 + wins, b1 + losses) - log_beta(a1, b1))
        + 0.4 * math.exp(log_beta(b1 + wins, a1 + losses) - log_beta(b1, a1))
        + 0.2 * math.exp(log_beta(1 + wins, 1 + losses))
    )
    hand = marginal / 0.5**100
    # independent: integrate q^w (1-q)^l against the mixture density on a fine grid
    steps = 200001
    total = 0.0
    for i in range(1, steps - 1):
        q = i / (steps - 1)
        dens = 0.4 * math.exp((a1 - 1) * math.log(q) + (b1 - 1) * math.log(1 - q) - log_beta(a1, b1))
        dens += 0.4 * math.exp((b1 - 1) * math.log(q) + (a1 - 1) * math.log(1 - q) - log_beta(b1, a1))
        dens += 0.2
        total += dens * math.exp(wins * math.log(q) + losses * math.log(1 - q))
    integral = total / (steps - 1) / 0.5**100
    assert hand == pytest.approx(integral, rel=1e-6)
    assert math.exp(win_rate_log_lr(wins, losses, 0.5, CONFIG)) == pytest.approx(hand, rel=1e-9)
    low, high = win_rate_interval(wins, losses, 0.05, CONFIG)
    for edge in (low, high):
        assert marginal / (edge**wins * (1 - edge) ** losses) == pytest.approx(20.0, rel=1e-6)
    assert low < 0.6 < high


def test_chi_square_survival_function_table_values() -> None:
    # 95th percentiles of chi-square with 1..4 degrees of freedom
    for dof, q95 in [(1, 3.841458820694124), (2, 5.991464547107979), (3, 7.814727903251179), (4, 9.487729036781154)]:
        assert chi_square_sf(q95, dof) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_sf(2.0, 2) == pytest.approx(math.exp(-1.0))
    assert chi_square_sf(0.0, 3) == 1.0


def test_fixed_horizon_size() -> None:
    # 2 (1.959964 + 0.841621)^2 / 0.2^2 = 392.4 -> 393
    assert fixed_horizon_sample_size(0.2) == 393


# ----------------------------------------------------------------------------- behaviour


def test_no_decision_before_warm_up() -> None:
    a = arm_of("a", [0.0, 0.1] * 5)
    b = arm_of("b", [10.0, 10.1] * 5)
    result = evaluate_metric([a, b], boolean=False)
    assert result.phase is CampaignPhase.WARMUP
    assert result.decision is Decision.CONTINUE and result.winner is None
    assert result.p_value < 1e-6  # the evidence is reported, the decision waits


def test_clear_winner_is_decided_and_lower_is_better_flips_it() -> None:
    a = arm_of("a", [0.4 + 0.01 * (i % 21) for i in range(200)])
    b = arm_of("b", [0.6 + 0.01 * (i % 21) for i in range(200)])
    higher = evaluate_metric([a, b], boolean=False, assignments=[200, 200])
    assert higher.decision is Decision.WINNER and higher.winner == "b"
    assert higher.p_value < 0.05
    lower = evaluate_metric([a, b], boolean=False, scoring_type=ScoringType.LOWER_IS_BETTER)
    assert lower.winner == "a"
    assert lower.p_value == pytest.approx(higher.p_value)


def test_no_winner_without_evidence() -> None:
    a = arm_of("a", [float(i % 7) for i in range(300)])
    b = arm_of("b", [float((i + 3) % 7) for i in range(300)])
    result = evaluate_metric([a, b], boolean=False)
    assert result.phase is CampaignPhase.IN_PROGRESS
    assert result.decision is Decision.CONTINUE and result.winner is None


def test_sample_ratio_mismatch_flags_a_90_10_split_and_withholds_the_decision() -> None:
    srm = sample_ratio_mismatch([900, 100])
    # chi2 = 2 * 400^2 / 500 = 640, p = erfc(sqrt(320))
    assert srm.statistic == pytest.approx(640.0)
    assert srm.p_value == pytest.approx(math.erfc(math.sqrt(320.0)), rel=1e-9)
    assert srm.flagged
    a = arm_of("a", [0.4 + 0.01 * (i % 21) for i in range(200)])
    b = arm_of("b", [0.6 + 0.01 * (i % 21) for i in range(200)])
    result = evaluate_metric([a, b], boolean=False, assignments=[900, 100])
    assert result.srm.flagged and result.winner is None and result.decision is Decision.CONTINUE
    assert any("sample-ratio" in note for note in result.notes)


def test_balanced_assignment_passes_and_small_counts_are_not_checked() -> None:
    # chi2 = 2 * 5^2 / 500 = 0.1 -> p = erfc(sqrt(0.05))
    ok = sample_ratio_mismatch([505, 495])
    assert ok.p_value == pytest.approx(math.erfc(math.sqrt(0.05)), rel=1e-9) and not ok.flagged
    assert not sample_ratio_mismatch([9, 1]).checked
    three = sample_ratio_mismatch([100, 100, 130])
    # expected 110 each: chi2 = (100 + 100 + 400) / 110, 2 dof -> exp(-chi2/2)
    assert three.p_value == pytest.approx(math.exp(-600 / 220), rel=1e-9)


def test_three_arms_use_bonferroni_and_need_a_clear_best() -> None:
    a = arm_of("a", [0.0 + 0.01 * (i % 21) for i in range(300)])
    b = arm_of("b", [0.5 + 0.01 * (i % 21) for i in range(300)])
    c = arm_of("c", [0.5 + 0.01 * ((i + 5) % 21) for i in range(300)])
    result = evaluate_metric([a, b, c], boolean=False)
    assert result.winner is None  # b and c tie at the top
    two = evaluate_metric([a, b], boolean=False)
    (ab_three,) = [p for p in result.pairs if (p.arm_a, p.arm_b) == ("a", "b")]
    raw = two.pairs[0].p_value
    assert ab_three.p_value == pytest.approx(min(1.0, 3 * raw))
    d = arm_of("d", [1.0 + 0.01 * (i % 21) for i in range(300)])
    assert evaluate_metric([a, b, d], boolean=False).winner == "d"


def test_constant_scalar_arms() -> None:
    same = evaluate_metric([MetricArm("a", 60, 60.0, 60.0), MetricArm("b", 60, 60.0, 60.0)], boolean=False)
    assert same.p_value == 1.0 and same.winner is None
    apart = evaluate_metric([MetricArm("a", 60, 60.0, 60.0), MetricArm("b", 60, 120.0, 240.0)], boolean=False)
    assert apart.p_value == 0.0 and apart.winner == "b"


def test_preference_winner_and_ties_are_excluded() -> None:
    duels = [DuelCounts("x", "y", 70, 30, 0)]
    result = evaluate_preference(["x", "y"], duels)
    assert result.winner == "x"
    with_ties = evaluate_preference(["x", "y"], [DuelCounts("x", "y", 70, 30, 40)])
    assert with_ties.p_value == result.p_value
    assert with_ties.arm("x").count == 140 and with_ties.arm("x").ties == 40
    assert with_ties.arm("x").mean == pytest.approx(0.7)
    # the same duels given the other way round count the same
    flipped = evaluate_preference(["x", "y"], [DuelCounts("y", "x", 30, 70, 40)])
    assert flipped.p_value == with_ties.p_value and flipped.winner == "x"


def test_preference_warm_up_and_even_duels() -> None:
    early = evaluate_preference(["x", "y"], [DuelCounts("x", "y", 20, 0, 0)])
    assert early.phase is CampaignPhase.WARMUP and early.winner is None
    even = evaluate_preference(["x", "y"], [DuelCounts("x", "y", 50, 50, 10)])
    assert even.winner is None and even.p_value == 1.0


def test_three_arm_preference_needs_every_pair() -> None:
    partial = [DuelCounts("x", "y", 90, 10, 0)]
    result = evaluate_preference(["x", "y", "z"], partial)
    assert result.winner is None
    full = partial + [DuelCounts("x", "z", 90, 10, 0), DuelCounts("y", "z", 50, 50, 0)]
    assert evaluate_preference(["x", "y", "z"], full).winner == "x"


@pytest.mark.parametrize(
    "arms, boolean",
    [
        ([MetricArm("a", 10, 1, 1)], False),
        ([MetricArm("a", 10, 1, 1), MetricArm("a", 10, 1, 1)], False),
        ([MetricArm("a", -1, 0, 0), MetricArm("b", 10, 1, 1)], False),
        ([MetricArm("a", 10, 11, 11), MetricArm("b", 10, 1, 1)], True),
        ([MetricArm("a", 10, 10.0, 5.0), MetricArm("b", 10, 1, 1)], False),
        ([MetricArm("a", 0, 1.0, 1.0), MetricArm("b", 10, 1, 1)], False),
        ([MetricArm("a", 10, float("nan"), 1.0), MetricArm("b", 10, 1, 1)], False),
    ],
)
def test_bad_metric_inputs_raise(arms: list[MetricArm], boolean: bool) -> None:
    with pytest.raises(InvalidStatisticsInput):
        evaluate_metric(arms, boolean=boolean)


def test_bad_preference_and_config_inputs_raise() -> None:
    with pytest.raises(InvalidStatisticsInput):
        evaluate_preference(["x", "y"], [DuelCounts("x", "q", 1, 0, 0)])
    with pytest.raises(InvalidStatisticsInput):
        evaluate_preference(["x", "y"], [DuelCounts("x", "x", 1, 0, 0)])
    with pytest.raises(InvalidStatisticsInput):
        evaluate_preference(["x", "y"], [DuelCounts("x", "y", -1, 0, 0)])
    with pytest.raises(InvalidStatisticsInput):
        evaluate_metric([MetricArm("a", 10, 1, 1), MetricArm("b", 10, 1, 1)], boolean=True, assignments=[1])
    with pytest.raises(InvalidStatisticsInput):
        evaluate_metric([MetricArm("a", 10, 1, 1), MetricArm("b", 10, 1, 1)], boolean=True, scoring_type="BEST")
    for bad in ({"alpha": 0.0}, {"mde": 0.0}, {"min_observations_per_arm": 1}, {"preference_mde": 0.5}):
        with pytest.raises(InvalidStatisticsInput):
            StatsConfig(**bad)


def clustered_arm(name: str, sessions: list[list[float]]) -> MetricArm:
    values = [v for s in sessions for v in s]
    sums = [sum(s) for s in sessions]
    counts = [len(s) for s in sessions]
    return MetricArm(
        name,
        len(values),
        sum(values),
        sum(v * v for v in values),
        clusters=len(sessions),
        cluster_sum_sq=sum(x * x for x in sums),
        cluster_count_sq=sum(n * n for n in counts),
        cluster_cross=sum(x * n for x, n in zip(sums, counts, strict=True)),
    )


def test_cluster_variance_hand_computed() -> None:
    # sessions [1,2,3], [4], [5,6]: S = 6, 4, 11; N = 3, 1, 2; K = 3, r = 21/6 = 3.5, N-bar = 2
    # s_S^2 = (173 - 21^2/3)/2 = 13; s_N^2 = (14 - 6^2/3)/2 = 1; s_SN = (44 - 21*6/3)/2 = 1
    # Var = (13 - 2*3.5*1 + 3.5^2*1) / (3 * 2^2) = 18.25 / 12
    assert cluster_mean_variance(6, 21.0, 3, 173.0, 14.0, 44.0) == pytest.approx(18.25 / 12)
    arm = clustered_arm("a", [[1.0, 2.0, 3.0], [4.0], [5.0, 6.0]])
    assert (arm.cluster_sum_sq, arm.cluster_count_sq, arm.cluster_cross) == (173.0, 14.0, 44.0)
    other = MetricArm("b", 6, 30.0, 160.0)  # mean 5, s^2 = (160 - 150)/5 = 2
    result = evaluate_metric([arm, other], boolean=False, config=StatsConfig(min_observations_per_arm=2))
    v = 18.25 / 12 + 2 / 6  # the clustered variance (> 3.5/6, the independent one) plus b's
    sigma = math.sqrt((3.5 + 2) / 2)
    m, diff = 0.2 * sigma, 1.5
    tau2 = (0.25 * m) ** 2
    lam = (
        math.sqrt(v / (v + tau2))
        * math.exp(diff**2 * tau2 / (2 * v * (v + tau2)) - m**2 / (2 * (v + tau2)))
        * math.cosh(diff * m / (v + tau2))
    )
    assert result.p_value == pytest.approx(min(1.0, 1 / lam), rel=1e-9)


def test_one_value_per_session_is_the_independent_case() -> None:
    values_a = [float(i % 5) for i in range(80)]
    values_b = [float(i % 7) for i in range(80)]
    plain = evaluate_metric([arm_of("a", values_a), arm_of("b", values_b)], boolean=False)
    clustered = evaluate_metric(
        [clustered_arm("a", [[v] for v in values_a]), clustered_arm("b", [[v] for v in values_b])], boolean=False
    )
    assert clustered.p_value == plain.p_value and clustered.pairs == plain.pairs


def test_chatty_sessions_do_not_fake_precision() -> None:
    # 10 sessions of 10 identical thumbs per arm: 100 values but only 10 independent units each
    a = clustered_arm("a", [[1.0] * 10] * 5 + [[0.0] * 10] * 5)
    b = clustered_arm("b", [[1.0] * 10] * 8 + [[0.0] * 10] * 2)
    assert evaluate_metric([a, b], boolean=True).winner is None
    as_if_independent = [MetricArm(x.arm, x.count, x.sum, x.sum_sq) for x in (a, b)]
    assert evaluate_metric(as_if_independent, boolean=True).winner == "b"
