"""Monte Carlo of the A/B decision code (no HTTP, no database), seeded.

    python bench/abtest_sim.py [--campaigns 2000] [--seed 7] [--cap-multiple 4]

What it measures, with the default ``StatsConfig`` (alpha 0.05, MDE 0.2 sd, warm-up 50 per arm):

1. A/A metric campaigns (both arms identical; scalar N(0,1) values and bool values at p=0.1):
   every campaign is checked after *every* observation once both arms are warm, up to the horizon
   cap.  Printed: the share that ever declared a winner (target <= 5%), beside a naive Welch test at
   the 5% level peeked at the same moments, and the same naive test looked at once, at the cap.
2. A/B metric campaigns at effects of 0.5x, 1x and 2x the MDE: mean observations per arm until the
   decision, against the fixed-horizon sample size per arm for 80% power (target: below it at 1x
   and 2x).  Campaigns that have not decided at the cap count with the cap (so the mean is a lower
   bound at 0.5x, where many do not finish); the share decided and the median are printed too.
3. Preference campaigns (duels with 20% ties): A/A false-positive rate and the duels to a decision
   at a 0.6 win rate (= the preference MDE) against the fixed-horizon binomial test's size.

Horizon cap: each campaign sees at most ``cap_multiple`` x (the fixed-horizon size per arm) x 2
observations (default 4x: 3,144 observations for the metric campaigns).  Assignments are a fair coin
per observation, as the router does.

The metric test is run through the decision code's own vectorisable core (``arm_variance``,
``mixture_log_lr``: the functions ``evaluate_metric`` calls), and a sample of campaign states is
re-evaluated with ``evaluate_metric`` itself to check that both give the same decisions.  The
preference test uses ``win_rate_log_lr`` (exact lookup table over (wins, losses)).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adaptive_engine.server.domains.ab_tests.statistics import (  # noqa: E402
    Decision,
    DuelCounts,
    MetricArm,
    StatsConfig,
    arm_variance,
    chi_square_sf,
    cluster_mean_variance,
    evaluate_metric,
    evaluate_preference,
    fixed_horizon_sample_size,
    mixture_log_lr,
    win_rate_log_lr,
)

Z_975 = NormalDist().inv_cdf(0.975)


def metric_paths(rng, campaigns, horizon, effect_sd, boolean, base_p=0.1):
    """Cumulative per-arm sufficient statistics after each observation: arrays (campaigns, horizon)."""
    to_b = rng.random((campaigns, horizon)) < 0.5
    if boolean:
        lift = effect_sd * math.sqrt(base_p * (1 - base_p))
        p = np.where(to_b, base_p + lift, base_p)
        values = (rng.random((campaigns, horizon)) < p).astype(np.float64)
    else:
        values = rng.standard_normal((campaigns, horizon)) + np.where(to_b, effect_sd, 0.0)
    n_b = np.cumsum(to_b, axis=1, dtype=np.float64)
    n_a = np.arange(1, horizon + 1, dtype=np.float64) - n_b
    in_b = values * to_b
    in_a = values - in_b
    return (
        n_a,
        np.cumsum(in_a, axis=1),
        np.cumsum(in_a * values, axis=1),
        n_b,
        np.cumsum(in_b, axis=1),
        np.cumsum(in_b * values, axis=1),
    )


def metric_checks(stats, boolean, config):
    """(our test rejects, naive Welch test rejects) at every observation; warm-up applied to both."""
    n_a, s_a, q_a, n_b, s_b, q_b = stats
    with np.errstate(divide="ignore", invalid="ignore"):
        v_a = arm_variance(n_a, s_a, q_a, boolean)
        v_b = arm_variance(n_b, s_b, q_b, boolean)
        diff = s_b / n_b - s_a / n_a
        var = v_a / n_a + v_b / n_b
        center = config.mde * np.sqrt(0.5 * (v_a + v_b))
        tau2 = (config.mixture_width * center) ** 2
        log_lr = mixture_log_lr(diff, var, center, tau2)
        warm = (n_a >= config.min_observations_per_arm) & (n_b >= config.min_observations_per_arm)
        ours = warm & (log_lr >= math.log(1.0 / config.alpha))
        naive = warm & (np.abs(diff) / np.sqrt(var) > Z_975)
    return ours, naive


def first_true(mask):
    """Index (1-based observation count) of the first True per row, or 0 when none."""
    hit = mask.any(axis=1)
    return np.where(hit, mask.argmax(axis=1) + 1, 0)


def scalar_agreement(stats, ours, boolean, config, rng, samples):
    """Re-evaluate random (campaign, moment) states with evaluate_metric; count matching decisions."""
    n_a, s_a, q_a, n_b, s_b, q_b = stats
    rows = rng.integers(0, n_a.shape[0], samples)
    # half of the samples at the first rejection of a campaign (the delicate moments), half anywhere
    firsts = first_true(ours)
    cols = rng.integers(0, n_a.shape[1], samples)
    for i in range(samples // 2):
        if firsts[rows[i]]:
            cols[i] = firsts[rows[i]] - 1
    agree = 0
    for r, c in zip(rows, cols, strict=True):
        if min(n_a[r, c], n_b[r, c]) < 2:
            agree += not ours[r, c]
            continue
        result = evaluate_metric(
            [
                MetricArm("a", int(n_a[r, c]), float(s_a[r, c]), float(q_a[r, c])),
                MetricArm("b", int(n_b[r, c]), float(s_b[r, c]), float(q_b[r, c])),
            ],
            boolean=boolean,
            config=config,
        )
        agree += (result.decision is Decision.WINNER) == bool(ours[r, c])
    return agree, samples


def run_metric(name, effect_mult, args, config, rng, n_fix, boolean=False):
    horizon = 2 * args.cap_multiple * n_fix
    effect = effect_mult * config.mde
    decided = naive_peek = naive_once = srm_alarms = 0
    stop_obs = []
    agree = total = 0
    for start in range(0, args.campaigns, args.chunk):
        size = min(args.chunk, args.campaigns - start)
        stats = metric_paths(rng, size, horizon, effect, boolean)
        ours, naive = metric_checks(stats, boolean, config)
        first = first_true(ours)
        decided += int((first > 0).sum())
        naive_peek += int(naive.any(axis=1).sum())
        naive_once += int(naive[:, -1].sum())
        srm_alarms += int(srm_flags(stats, config).any(axis=1).sum())
        stop_obs.append(np.where(first > 0, first, horizon) / 2.0)
        if start == 0:
            agree, total = scalar_agreement(stats, ours, boolean, config, rng, args.agreement_samples)
    stop = np.concatenate(stop_obs)
    return {
        "name": name,
        "decided": decided / args.campaigns,
        "naive_peek": naive_peek / args.campaigns,
        "naive_once": naive_once / args.campaigns,
        "mean_obs": float(stop.mean()),
        "median_obs": float(np.median(stop)),
        "agree": (agree, total),
        "srm_alarms": srm_alarms / args.campaigns,
    }


def srm_critical_value(config):
    """The chi-square (1 dof) statistic above which sample_ratio_mismatch flags: chi_square_sf(x) = srm_alpha."""
    low, high = 0.0, 100.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if chi_square_sf(mid, 1) > config.srm_alpha:
            low = mid
        else:
            high = mid
    return high


def srm_flags(stats, config):
    """Where the sample-ratio check would flag a fair 50/50 assignment (checked at every observation)."""
    n_a, n_b = stats[0], stats[3]
    total = n_a + n_b
    checked = total / 2 >= config.srm_min_expected
    statistic = (n_a - n_b) ** 2 / total
    return checked & (statistic > srm_critical_value(config))


def run_clustered_aa(args, config, rng, n_fix, per_session=5, icc=0.5):
    """A/A with sticky sessions: each session gives ``per_session`` correlated values (intra-session
    correlation ``icc``). Checked after every session; the per-value variance vs the session-clustered
    (delta-method) variance that evaluate_metric uses when the server passes session statistics."""
    sessions = 2 * args.cap_multiple * n_fix // per_session
    fp_iid = fp_cluster = 0
    for start in range(0, args.campaigns, args.chunk):
        size = min(args.chunk, args.campaigns - start)
        to_b = rng.random((size, sessions)) < 0.5
        shared = rng.standard_normal((size, sessions, 1)) * math.sqrt(icc)
        values = shared + rng.standard_normal((size, sessions, per_session)) * math.sqrt(1 - icc)
        s_i = values.sum(axis=2)
        q_i = (values * values).sum(axis=2)
        flags = []
        for mask in (~to_b, to_b):
            k = np.cumsum(mask, axis=1, dtype=np.float64)
            flags.append(
                (
                    k * per_session,  # count
                    np.cumsum(s_i * mask, axis=1),  # sum
                    np.cumsum(q_i * mask, axis=1),  # sum of squares
                    k,  # clusters
                    np.cumsum(s_i * s_i * mask, axis=1),
                    np.cumsum(mask * float(per_session**2), axis=1),
                    np.cumsum(s_i * per_session * mask, axis=1),
                )
            )
        (n_a, s_a, q_a, k_a, ss_a, nn_a, sn_a), (n_b, s_b, q_b, k_b, ss_b, nn_b, sn_b) = flags
        with np.errstate(divide="ignore", invalid="ignore"):
            v_a = arm_variance(n_a, s_a, q_a, False)
            v_b = arm_variance(n_b, s_b, q_b, False)
            diff = s_b / n_b - s_a / n_a
            center = config.mde * np.sqrt(0.5 * (v_a + v_b))
            tau2 = (config.mixture_width * center) ** 2
            warm = (n_a >= config.min_observations_per_arm) & (n_b >= config.min_observations_per_arm)
            threshold = math.log(1.0 / config.alpha)
            iid = v_a / n_a + v_b / n_b
            clustered = np.maximum(v_a / n_a, cluster_mean_variance(n_a, s_a, k_a, ss_a, nn_a, sn_a)) + np.maximum(
                v_b / n_b, cluster_mean_variance(n_b, s_b, k_b, ss_b, nn_b, sn_b)
            )
            fp_iid += int((warm & (mixture_log_lr(diff, iid, center, tau2) >= threshold)).any(axis=1).sum())
            fp_cluster += int((warm & (mixture_log_lr(diff, clustered, center, tau2) >= threshold)).any(axis=1).sum())
    return fp_iid / args.campaigns, fp_cluster / args.campaigns


def preference_tables(max_duels, config):
    """reject[wins, losses]: whether evaluate_preference's pair test rejects "win rate 1/2" at (wins, losses)."""
    reject = np.zeros((max_duels + 1, max_duels + 1), dtype=bool)
    threshold = math.log(1.0 / config.alpha)
    for wins in range(max_duels + 1):
        for losses in range(max_duels + 1 - wins):
            reject[wins, losses] = win_rate_log_lr(wins, losses, 0.5, config) >= threshold
    return reject


def run_preference(win_rate, tie_rate, args, config, rng, reject, max_duels):
    """Each duel: tie with tie_rate, else a win for arm a with win_rate. Warm-up on duels per arm."""
    campaigns = args.campaigns
    outcome = rng.random((campaigns, max_duels))
    ties = outcome < tie_rate
    wins_step = (~ties) & (rng.random((campaigns, max_duels)) < win_rate)
    wins = np.cumsum(wins_step, axis=1)
    decisive = np.cumsum(~ties, axis=1)
    losses = decisive - wins
    duels = np.arange(1, max_duels + 1)
    warm = duels >= config.min_observations_per_arm  # both arms take part in every duel
    hits = warm & reject[wins, losses]
    first = first_true(hits)
    stop = np.where(first > 0, first, max_duels)
    # spot-check the table against evaluate_preference on a few final states
    agree = 0
    for r in range(min(50, campaigns)):
        c = max_duels - 1
        result = evaluate_preference(
            ["a", "b"],
            [DuelCounts("a", "b", int(wins[r, c]), int(losses[r, c]), int(c + 1 - decisive[r, c]))],
            config=config,
        )
        agree += (result.decision is Decision.WINNER) == bool(hits[r, c])
    return (first > 0).mean(), float(stop.mean()), float(np.median(stop)), (agree, min(50, campaigns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cap-multiple", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--agreement-samples", type=int, default=200)
    args = parser.parse_args()
    config = StatsConfig()
    rng = np.random.default_rng(args.seed)
    n_fix = fixed_horizon_sample_size(config.mde, config.alpha, 0.8)
    started = time.perf_counter()
    print(
        f"config: alpha={config.alpha} mde={config.mde} sd mixture_width={config.mixture_width} "
        f"warm-up={config.min_observations_per_arm}/arm; fixed-horizon n for 80% power = {n_fix}/arm; "
        f"horizon cap = {args.cap_multiple * n_fix}/arm; {args.campaigns} campaigns each; seed {args.seed}"
    )

    print("\nA/A metric campaigns, checked after every observation (false-positive rate)")
    print(
        f"{'data':<22}{'ours (always-valid)':>22}{'naive t peeked':>17}{'naive t once':>15}{'scalar=vector':>16}"
        f"{'SRM false alarms':>19}"
    )
    for label, boolean in (("scalar N(0,1)", False), ("bool p=0.1", True)):
        r = run_metric(label, 0.0, args, config, rng, n_fix, boolean=boolean)
        print(
            f"{label:<22}{r['decided']:>22.2%}{r['naive_peek']:>17.2%}{r['naive_once']:>15.2%}"
            f"{r['agree'][0]:>11}/{r['agree'][1]}{r['srm_alarms']:>19.2%}"
        )

    iid, clustered = run_clustered_aa(args, config, rng, n_fix)
    print(
        f"sticky sessions (5 values each, intra-session correlation 0.5): per-value variance {iid:.2%}, "
        f"session-clustered variance {clustered:.2%}"
    )

    print("\nA/B metric campaigns (scalar N(0,1) + effect): observations per arm to a decision")
    print(f"{'effect':<14}{'decided':>9}{'mean obs/arm':>14}{'median':>9}{'fixed n (80%)':>15}{'mean/fixed':>12}")
    for mult in (0.5, 1.0, 2.0):
        r = run_metric(f"{mult}x MDE", mult, args, config, rng, n_fix)
        print(
            f"{r['name']:<14}{r['decided']:>9.1%}{r['mean_obs']:>14.1f}{r['median_obs']:>9.1f}"
            f"{n_fix:>15}{r['mean_obs'] / n_fix:>12.2f}"
        )

    d = config.preference_mde
    z = NormalDist().inv_cdf(1 - config.alpha / 2) * 0.5 + NormalDist().inv_cdf(0.8) * math.sqrt((0.5 + d) * (0.5 - d))
    fixed_decisive = math.ceil((z / d) ** 2)
    tie_rate = 0.2
    fixed_duels = math.ceil(fixed_decisive / (1 - tie_rate))
    max_duels = args.cap_multiple * fixed_duels
    reject = preference_tables(max_duels, config)
    print(f"\nPreference campaigns ({tie_rate:.0%} ties, ties excluded from the test; cap {max_duels} duels)")
    rate, mean, median, agree = run_preference(0.5, tie_rate, args, config, rng, reject, max_duels)
    print(f"A/A false-positive rate: {rate:.2%}   (table = evaluate_preference: {agree[0]}/{agree[1]})")
    rate, mean, median, agree = run_preference(0.5 + d, tie_rate, args, config, rng, reject, max_duels)
    print(
        f"win rate {0.5 + d:.2f}: decided {rate:.1%}, mean duels {mean:.1f}, median {median:.0f}; "
        f"fixed-horizon binomial test (80% power): {fixed_duels} duels; mean/fixed {mean / fixed_duels:.2f}"
    )
    rate, mean, median, agree = run_preference(0.8, tie_rate, args, config, rng, reject, max_duels)
    print(
        f"win rate 0.80: decided {rate:.1%}, mean duels {mean:.1f}, median {median:.0f} (warm-up"
        f" {config.min_observations_per_arm})"
    )
    print(f"\nelapsed {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
