"""``listenline simulate``: a simulated day of the line under four routing policies.

For branch managers' what-if questions: ``--extra-volunteers utrecht:20-24:5`` runs the
day with and without five more Utrecht volunteers in the evening and prints both. The
simulation uses the real routing engine on an in-process store and a simulated clock;
it needs neither the database nor Redis.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.scenario import ExtraVolunteers, Scenario, ScenarioError, day_draw
from routing.simulator import POLICIES, POLICY_LABELS, results_mean, simulate_seeds


def _floats(text: str, count: int | None = None) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.replace(";", ",").split(","))
    if count is not None and len(values) != count:
        raise ValueError(f"expected {count} numbers, got {len(values)}")
    return values


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # needs no database, Redis or Twilio
    help = (
        "Simulate a day of the line (seeded) under four routing policies: isolated "
        "branches, strict locality, the default and one national pool; print the share "
        "answered, answered within 60 s and answered by the home branch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", metavar="FILE", help="a JSON scenario (flags win)")
        parser.add_argument("--seed", type=int, help="random seed (default 1)")
        parser.add_argument(
            "--seeds",
            type=int,
            default=1,
            metavar="N",
            help="average over N consecutive seeds (default 1)",
        )
        parser.add_argument("--arrivals", type=float, help="calls offered per day (1700)")
        parser.add_argument(
            "--volunteers", type=float, help="volunteers on duty on average over the day (45)"
        )
        parser.add_argument(
            "--volunteers-by-hour",
            metavar="N0,...,N23",
            help="volunteers on duty per hour, 24 numbers (overrides --volunteers)",
        )
        parser.add_argument(
            "--branch-scale",
            action="append",
            default=[],
            metavar="BRANCH=X",
            help="multiply a branch's share of the volunteers (repeatable)",
        )
        parser.add_argument(
            "--extra-volunteers",
            action="append",
            default=[],
            metavar="BRANCH:HOURS:N",
            help="what-if: N more volunteers of BRANCH ('*' = all, by "
            "population) in HOURS (20-24, 22-6, 3,4,5, all); repeatable",
        )
        parser.add_argument("--talk-minutes", type=float, help="mean talk time (20)")
        parser.add_argument(
            "--patience-minutes", type=float, help="mean time a caller waits before hanging up (3)"
        )
        parser.add_argument("--wrapup-minutes", type=float, help="wrap-up after a call (1)")
        parser.add_argument(
            "--rings", metavar="HOME,ALL", help="strict-locality rings in seconds (30,90)"
        )
        parser.add_argument("--hours", type=float, help="hours to simulate (24)")
        parser.add_argument(
            "--policies",
            default=",".join(POLICIES),
            help=f"comma-separated subset of {','.join(POLICIES)}",
        )
        parser.add_argument(
            "--by-branch",
            action="store_true",
            help="also print each branch's figures under the default policy",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            scenario = self._scenario(options)
        except (ScenarioError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        policies = [p.strip() for p in options["policies"].split(",") if p.strip()]
        unknown = [p for p in policies if p not in POLICIES]
        if unknown or not policies:
            raise CommandError(f"unknown policy {', '.join(unknown)}; use {', '.join(POLICIES)}")
        seeds = options["seeds"]
        if seeds < 1:
            raise CommandError("--seeds must be at least 1")
        try:
            day_draw(scenario)  # refuses unknown branches before the long part
        except ScenarioError as exc:
            raise CommandError(str(exc)) from exc

        runs = simulate_seeds(scenario, seeds, policies)
        baseline_runs = None
        if scenario.extra_volunteers:
            baseline_runs = simulate_seeds(replace(scenario, extra_volunteers=()), seeds, policies)
        means = results_mean(runs)
        base_means = results_mean(baseline_runs) if baseline_runs else None

        if options["json"]:
            payload: dict[str, Any] = {
                "seed": scenario.seed,
                "seeds": [scenario.seed + i for i in range(seeds)],
                "scenario": scenario.as_dict(),
                "policies": means,
            }
            if base_means is not None:
                payload["without_extra_volunteers"] = base_means
            if options["by_branch"] and "default" in policies:
                payload["default_by_branch"] = _by_branch(runs)
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self.stdout.write(_table(scenario, seeds, policies, means, base_means))
        if options["by_branch"] and "default" in policies:
            self.stdout.write("")
            self.stdout.write(_branch_table(runs, baseline_runs))

    def _scenario(self, options: dict[str, Any]) -> Scenario:
        scenario = Scenario()
        if options["scenario"]:
            data = json.loads(Path(options["scenario"]).read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ScenarioError("scenario file: expected a JSON object")
            scenario = Scenario.from_mapping(data)
        changes: dict[str, Any] = {}
        simple = {
            "seed": "seed",
            "arrivals": "arrivals_per_day",
            "volunteers": "volunteers",
            "hours": "hours",
        }
        for flag, name in simple.items():
            if options[flag] is not None:
                changes[name] = options[flag]
        for flag, name in (
            ("talk_minutes", "talk_mean_s"),
            ("patience_minutes", "patience_mean_s"),
            ("wrapup_minutes", "wrapup_s"),
        ):
            if options[flag] is not None:
                changes[name] = options[flag] * 60.0
        if options["volunteers_by_hour"]:
            changes["volunteers_by_hour"] = _floats(options["volunteers_by_hour"], 24)
        if options["rings"]:
            home_only, until = _floats(options["rings"], 2)
            changes["strict_rings_s"] = (home_only, until)
        if options["branch_scale"]:
            scale = dict(scenario.branch_scale)
            for item in options["branch_scale"]:
                branch, _, factor = item.partition("=")
                if not factor:
                    raise ScenarioError(f"--branch-scale {item!r}: expected BRANCH=X")
                scale[branch.strip()] = float(factor)
            changes["branch_scale"] = scale
        if options["extra_volunteers"]:
            changes["extra_volunteers"] = scenario.extra_volunteers + tuple(
                ExtraVolunteers.parse(item) for item in options["extra_volunteers"]
            )
        return replace(scenario, **changes) if changes else scenario


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def _table(
    scenario: Scenario,
    seeds: int,
    policies: list[str],
    means: dict[str, dict[str, float]],
    base: dict[str, dict[str, float]] | None,
) -> str:
    seed_text = (
        f"seed {scenario.seed}"
        if seeds == 1
        else (f"seeds {scenario.seed}-{scenario.seed + seeds - 1} (mean of {seeds} days)")
    )
    by_hour = "by hour as given" if scenario.volunteers_by_hour else "fewest at night"
    lines = [
        f"Simulated day of the line: {seed_text}",
        f"  {scenario.arrivals_per_day:,.0f} calls offered a day, spread by population; "
        f"{sum(scenario.volunteers_per_hour()) / 24:.0f} volunteers on duty on average "
        f"({by_hour})",
        f"  talk {scenario.talk_mean_s / 60:g} min, patience {scenario.patience_mean_s / 60:g} "
        f"min, wrap-up {scenario.wrapup_s / 60:g} min (means); strict rings "
        f"{scenario.strict_rings_s[0]:g} s / {scenario.strict_rings_s[1]:g} s",
    ]
    if scenario.extra_volunteers:
        extras = ", ".join(e.label() for e in scenario.extra_volunteers)
        lines.append(f"  what-if: extra volunteers {extras} (change against the same days without)")
    lines.append("")
    header = (
        f"{'policy':<26} {'offered':>8} {'answered':>9} {'in 60 s':>8} {'by home':>8} "
        f"{'wait p50':>9} {'wait p90':>9}"
    )
    if base:
        header += f" {'Δ answered':>11}"
    lines += [header, "-" * len(header)]
    for policy in policies:
        m = means[policy]
        row = (
            f"{POLICY_LABELS[policy]:<26} {m['offered']:>8.0f} {_pct(m['share_answered']):>9} "
            f"{_pct(m['share_answered_within_60s']):>8} {_pct(m['share_answered_home']):>8} "
            f"{m['wait_p50_s']:>7.0f} s {m['wait_p90_s']:>7.0f} s"
        )
        if base:
            delta = m["share_answered"] - base[policy]["share_answered"]
            row += f" {100 * delta:>+9.1f}pt"
        lines.append(row)
    lines += [
        "",
        "answered: share of callers offered who reached a volunteer; in 60 s: answered within "
        "a minute;",
        "by home: share of the answered calls taken by a volunteer of the caller's own branch.",
    ]
    return "\n".join(lines)


def _by_branch(runs: list[Any]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, int]] = {}
    for run in runs:
        for branch, counts in run.results["default"].by_branch.items():
            into = totals.setdefault(branch, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                into[key] += value
    return {
        branch: {
            "offered": c["offered"] / len(runs),
            "share_answered": round(c["answered"] / c["offered"], 4) if c["offered"] else 0.0,
            "share_answered_home": round(c["answered_home"] / c["answered"], 4)
            if c["answered"]
            else 0.0,
        }
        for branch, c in sorted(totals.items())
    }


def _branch_table(runs: list[Any], baseline_runs: list[Any] | None) -> str:
    now = _by_branch(runs)
    before = _by_branch(baseline_runs) if baseline_runs else None
    header = f"{'branch (default policy)':<24} {'offered':>8} {'answered':>9} {'by home':>8}"
    if before:
        header += f" {'Δ answered':>11}"
    lines = [header, "-" * len(header)]
    for branch, row in now.items():
        line = (
            f"{branch:<24} {row['offered']:>8.0f} {_pct(row['share_answered']):>9} "
            f"{_pct(row['share_answered_home']):>8}"
        )
        if before:
            delta = row["share_answered"] - before[branch]["share_answered"]
            line += f" {100 * delta:>+9.1f}pt"
        lines.append(line)
    return "\n".join(lines)
