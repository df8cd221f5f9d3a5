"""Answer rate under four routing policies: a simulated day of the line, several seeds.

Runs ``routing.simulator`` (the real policy and services over the in-process store, on a
simulated clock; no PostgreSQL or Redis needed) for isolated branches, strict locality
(30 s / 90 s rings), the default (locality-first, work-conserving) and one national pool,
on the same drawn days. One day has ~1,700 callers, so a single day's difference of a
few callers is noise: the goals are computed on the totals over ``--seeds`` days.

Goals (issue 3): the default answers at least 99.5% as many callers as one national
pool (the baseline), with at least 50% of them answered by their home branch.

    python benchmarks/answer_rate.py [--seeds 5] [--seed 1] [--scenario FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import django_setup, goal, machine, result_print  # noqa: E402

PER_SEED_KEYS = (
    "offered",
    "answered",
    "share_answered",
    "share_answered_within_60s",
    "share_answered_home",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="days (seeds) to average over")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--scenario", help="a JSON scenario file (see docs/ROUTING.md)")
    args = parser.parse_args()

    django_setup(embedded=True)
    from routing.scenario import Scenario
    from routing.simulator import POLICIES, POLICY_LABELS, results_mean, simulate_seeds

    scenario = Scenario(seed=args.seed)
    if args.scenario:
        scenario = Scenario.from_mapping(
            json.loads(Path(args.scenario).read_text(encoding="utf-8")), base=scenario
        )
    started = time.perf_counter()
    runs = simulate_seeds(scenario, args.seeds, POLICIES)
    elapsed = time.perf_counter() - started

    totals = {
        policy: {
            key: sum(getattr(run.results[policy], key) for run in runs)
            for key in ("offered", "answered", "answered_within_60s", "answered_home")
        }
        for policy in POLICIES
    }
    for t in totals.values():
        t["share_answered"] = round(t["answered"] / t["offered"], 4)
        t["share_answered_within_60s"] = round(t["answered_within_60s"] / t["offered"], 4)
        t["share_answered_home"] = round(t["answered_home"] / t["answered"], 4)

    print(
        f"answer_rate: {args.seeds} simulated days, seeds {scenario.seed}.."
        f"{scenario.seed + args.seeds - 1}, {elapsed:.1f} s"
    )
    print(f"{'policy':<26} {'answered':>9} {'in 60 s':>8} {'by home':>8}")
    for policy in POLICIES:
        t = totals[policy]
        print(
            f"{POLICY_LABELS[policy]:<26} {100 * t['share_answered']:>8.1f}% "
            f"{100 * t['share_answered_within_60s']:>7.1f}% "
            f"{100 * t['share_answered_home']:>7.1f}%"
        )

    ratio = totals["default"]["answered"] / totals["national"]["answered"]
    per_seed_ratio = [
        round(run.results["default"].answered / run.results["national"].answered, 4) for run in runs
    ]
    figures = {
        "seeds": [run.scenario.seed for run in runs],
        "averaging": f"totals over {len(runs)} simulated days (one per seed); per-seed "
        "figures under per_seed",
        "scenario": {k: v for k, v in scenario.as_dict().items() if k != "seed"},
        "totals": totals,
        "mean_of_days": results_mean(runs),
        "default_vs_national_answered_ratio_per_seed": per_seed_ratio,
        "baseline": "national (one national pool)",
        "per_seed": {
            str(run.scenario.seed): {
                p: {k: r.summary()[k] for k in PER_SEED_KEYS} for p, r in run.results.items()
            }
            for run in runs
        },
        "runtime_s": round(elapsed, 2),
        "runtime_per_day_4_policies_s": round(elapsed / len(runs), 2),
        "machine": machine(),
    }
    goals = [
        goal("default_vs_national_answered_ratio", round(ratio, 4), ">=", 0.995),
        goal("default_home_branch_share", totals["default"]["share_answered_home"], ">=", 0.5),
    ]
    result_print("answer_rate", figures, goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
