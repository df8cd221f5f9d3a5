"""The scenario of a simulated day of the line: who calls when, and who is on duty.

Everything random is drawn here, from the scenario's seed, before any policy runs, so
the four policies of one run see exactly the same callers (arrival time, home branch,
patience, talk time) and the same roster. Only the volunteers' accept delays are drawn
during a run, from a generator seeded the same way for every policy.

A scenario is plain data: flags of ``listenline simulate`` or a JSON file
(``Scenario.from_mapping``) fill it in; ``Scenario.as_dict()`` is printed with every
result so a figure can always be traced to what produced it.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

HOURS = 24
ACCEPT_DRAWS = 4  # accept delays drawn per caller (offers beyond reuse them in turn)

#: Share of a day's calls per hour, 00:00 first: quiet around 04:00, busiest in the
#: evening (the line's public figures: more than half outside office hours).
ARRIVAL_PROFILE: tuple[float, ...] = (
    4.6, 3.6, 2.7, 2.0, 1.7, 1.9, 2.4, 3.0, 3.6, 4.0, 4.2, 4.3,
    4.3, 4.3, 4.4, 4.5, 4.6, 4.8, 5.2, 5.8, 6.3, 6.5, 6.2, 5.3,
)  # fmt: skip

#: Relative number of volunteers on duty per hour: fewest at night (one night shift a
#: month each does not fill the night), most in the evening.
VOLUNTEER_PROFILE: tuple[float, ...] = (
    0.70, 0.60, 0.55, 0.50, 0.50, 0.55, 0.65, 0.80, 0.95, 1.05, 1.10, 1.10,
    1.10, 1.10, 1.10, 1.10, 1.15, 1.20, 1.30, 1.40, 1.45, 1.45, 1.30, 1.00,
)  # fmt: skip


class ScenarioError(ValueError):
    """A scenario value is refused; the message names the field and the reason."""


@dataclass(frozen=True)
class Branch:
    slug: str
    population: int
    neighbours: tuple[str, ...]


def branches_csv_path() -> Path:
    """The packaged ``branches.csv`` (same file ``volunteers.geography`` loads)."""
    return Path(str(resources.files("listenline") / "data" / "branches.csv"))


def branches_load(path: Path | None = None) -> list[Branch]:
    """Read branches without a database: slug, population, neighbours (made symmetric)."""
    with (path or branches_csv_path()).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    slugs = {row["slug"].strip() for row in rows}
    links: dict[str, set[str]] = {slug: set() for slug in slugs}
    for row in rows:
        for other in (row.get("neighbours") or "").split():
            if other in slugs and other != row["slug"].strip():
                links[row["slug"].strip()].add(other)
                links[other].add(row["slug"].strip())
    return [
        Branch(
            slug=row["slug"].strip(),
            population=int(row["population"]),
            neighbours=tuple(sorted(links[row["slug"].strip()])),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ExtraVolunteers:
    """A what-if: ``count`` more volunteers of ``branch`` ("*" = spread by population)
    on duty in the given hours of the day."""

    branch: str
    hours: tuple[int, ...]
    count: int

    @classmethod
    def parse(cls, text: str) -> ExtraVolunteers:
        """``BRANCH:HOURS:N``; HOURS is ``20-24``, ``22-6`` (past midnight), ``3,4,5``
        or ``all``. Example: ``utrecht:0-6:5`` (five more in Utrecht at night)."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ScenarioError(f"extra volunteers {text!r}: expected BRANCH:HOURS:N")
        branch, hours_text, count_text = parts
        try:
            count = int(count_text)
        except ValueError:
            raise ScenarioError(f"extra volunteers {text!r}: N must be a whole number") from None
        return cls(branch=branch.strip(), hours=parse_hours(hours_text), count=count)

    def label(self) -> str:
        return f"{self.branch}:{format_hours(self.hours)}:{self.count:+d}"


def parse_hours(text: str) -> tuple[int, ...]:
    text = text.strip().lower()
    if text in ("all", "*", ""):
        return tuple(range(HOURS))
    hours: set[int] = set()
    for part in text.split(","):
        try:
            if "-" in part:
                start_text, end_text = part.split("-", 1)
                start, end = int(start_text), int(end_text)
                if not (0 <= start < HOURS and 0 <= end <= HOURS):
                    raise ValueError
                span = range(start, end) if start < end else [*range(start, HOURS), *range(end)]
                hours.update(span)
            else:
                hour = int(part)
                if not 0 <= hour < HOURS:
                    raise ValueError
                hours.add(hour)
        except ValueError:
            raise ScenarioError(
                f"hours {text!r}: use 20-24, 22-6, 3,4,5 or all (hours 0-23)"
            ) from None
    return tuple(sorted(hours))


def format_hours(hours: Sequence[int]) -> str:
    if len(hours) == HOURS:
        return "all"
    return ",".join(str(h) for h in hours)


@dataclass(frozen=True)
class Scenario:
    """What a simulated day looks like. Times in seconds; the day starts at 00:00."""

    seed: int = 1
    arrivals_per_day: float = 1700.0
    #: Mean number of volunteers on duty over the day (before what-ifs).
    volunteers: float = 45.0
    talk_mean_s: float = 1200.0
    patience_mean_s: float = 180.0
    wrapup_s: float = 60.0
    accept_delay_min_s: float = 2.0
    accept_delay_max_s: float = 8.0
    #: Strict-locality rings: home only until the first, neighbours until the second.
    strict_rings_s: tuple[float, float] = (30.0, 90.0)
    #: Hours simulated (24 = a day; tests use less). Arrivals stop then; contacts
    #: already there are followed to their end.
    hours: float = 24.0
    #: A warm-up before 00:00 (arrivals at the 23:00 rate) so the day does not start
    #: with an empty line; its callers are not counted.
    warmup_s: float = 3600.0
    arrival_profile: tuple[float, ...] = ARRIVAL_PROFILE
    volunteer_profile: tuple[float, ...] = VOLUNTEER_PROFILE
    #: Absolute volunteers on duty per hour (24 numbers); overrides ``volunteers`` and
    #: ``volunteer_profile`` when given.
    volunteers_by_hour: tuple[float, ...] | None = None
    #: Multiplier on a branch's share of the volunteers (1.0 = by population).
    branch_scale: Mapping[str, float] = field(default_factory=dict)
    extra_volunteers: tuple[ExtraVolunteers, ...] = ()

    def __post_init__(self) -> None:
        checks = {
            "arrivals_per_day": self.arrivals_per_day >= 0,
            "volunteers": self.volunteers >= 0,
            "talk_mean_s": self.talk_mean_s > 0,
            "patience_mean_s": self.patience_mean_s > 0,
            "wrapup_s": self.wrapup_s >= 0,
            "accept_delay_min_s": 0 <= self.accept_delay_min_s <= self.accept_delay_max_s,
            "strict_rings_s": 0 <= self.strict_rings_s[0] <= self.strict_rings_s[1],
            "hours": 0 < self.hours <= HOURS,
            "warmup_s": self.warmup_s >= 0,
            "arrival_profile": len(self.arrival_profile) == HOURS
            and min(self.arrival_profile) >= 0
            and sum(self.arrival_profile) > 0,
            "volunteer_profile": len(self.volunteer_profile) == HOURS
            and min(self.volunteer_profile) >= 0,
            "volunteers_by_hour": self.volunteers_by_hour is None
            or (len(self.volunteers_by_hour) == HOURS and min(self.volunteers_by_hour) >= 0),
            "branch_scale": all(v >= 0 for v in self.branch_scale.values()),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ScenarioError(f"scenario: invalid {', '.join(bad)}")

    # --- building from flags or a file -------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Scenario | None = None) -> Scenario:
        """A scenario from a JSON object; unknown keys are refused, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ScenarioError(f"scenario: unknown key(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        try:
            for name, raw in data.items():
                if name == "extra_volunteers":
                    values[name] = tuple(
                        ExtraVolunteers.parse(item)
                        if isinstance(item, str)
                        else ExtraVolunteers(
                            branch=str(item["branch"]),
                            hours=parse_hours(str(item.get("hours", "all")))
                            if not isinstance(item.get("hours"), list)
                            else tuple(int(h) for h in item["hours"]),
                            count=int(item["count"]),
                        )
                        for item in raw
                    )
                elif name in ("arrival_profile", "volunteer_profile", "strict_rings_s"):
                    values[name] = tuple(float(v) for v in raw)
                elif name == "volunteers_by_hour":
                    values[name] = None if raw is None else tuple(float(v) for v in raw)
                elif name == "branch_scale":
                    values[name] = {str(k): float(v) for k, v in raw.items()}
                elif name == "seed":
                    values[name] = int(raw)
                else:
                    values[name] = float(raw)
        except (TypeError, KeyError, ValueError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            raise ScenarioError(f"scenario: bad value ({exc})") from None
        return replace(base or cls(), **values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra_volunteers"] = [extra.label() for extra in self.extra_volunteers]
        data["strict_rings_s"] = list(self.strict_rings_s)
        data["arrival_profile"] = list(self.arrival_profile)
        data["volunteer_profile"] = list(self.volunteer_profile)
        if self.volunteers_by_hour is not None:
            data["volunteers_by_hour"] = list(self.volunteers_by_hour)
        data["branch_scale"] = dict(self.branch_scale)
        return data

    # --- the derived day ---------------------------------------------------------------

    def volunteers_per_hour(self) -> list[float]:
        """Expected volunteers on duty per hour, before what-ifs."""
        if self.volunteers_by_hour is not None:
            return list(self.volunteers_by_hour)
        mean = sum(self.volunteer_profile) / HOURS
        if mean == 0:
            return [0.0] * HOURS
        return [self.volunteers * w / mean for w in self.volunteer_profile]


@dataclass(frozen=True)
class Caller:
    """One offered contact: everything about it that does not depend on the policy."""

    index: int
    arrival_s: float
    home: str
    patience_s: float
    talk_s: float
    counted: bool  # False during the warm-up
    #: How long the volunteer takes to accept the 1st, 2nd, ... offer of this caller:
    #: drawn with the caller so a what-if changes who answers, not how fast.
    accept_delays_s: tuple[float, ...] = ()


@dataclass
class Day:
    """The drawn day: callers in arrival order and the roster (volunteers on duty per
    branch per hour, hour -1 being the warm-up)."""

    scenario: Scenario
    branches: list[Branch]
    callers: list[Caller]
    roster: dict[int, dict[str, int]]

    def on_duty(self, hour: int) -> dict[str, int]:
        """Volunteers on duty per branch in ``hour`` (hours past the end keep the last)."""
        last = max(self.roster)
        return self.roster[min(hour, last)]


def day_draw(scenario: Scenario, branches: Sequence[Branch] | None = None) -> Day:
    """Draw the callers and the roster of one day from the scenario's seed."""
    branch_list = list(branches) if branches is not None else branches_load()
    slugs = {b.slug for b in branch_list}
    for extra in scenario.extra_volunteers:
        if extra.branch not in slugs and extra.branch not in ("*", "all"):
            raise ScenarioError(f"extra volunteers: unknown branch {extra.branch!r}")
    unknown = sorted(set(scenario.branch_scale) - slugs)
    if unknown:
        raise ScenarioError(f"branch_scale: unknown branch(es) {', '.join(unknown)}")
    rng = random.Random(f"listenline-sim:{scenario.seed}:callers")  # noqa: S311 - a simulation
    delays = random.Random(f"listenline-sim:{scenario.seed}:accept")  # noqa: S311
    low, high = scenario.accept_delay_min_s, scenario.accept_delay_max_s
    total_profile = sum(scenario.arrival_profile)
    weights = [b.population for b in branch_list]
    callers: list[Caller] = []

    def draw_hour(start: float, length: float, profile_hour: int, counted: bool) -> None:
        rate = scenario.arrivals_per_day * scenario.arrival_profile[profile_hour] / total_profile
        if rate <= 0:
            return
        t = start
        while True:
            t += rng.expovariate(rate / 3600.0)
            if t >= start + length:
                return
            home = rng.choices(branch_list, weights=weights)[0].slug
            callers.append(
                Caller(
                    index=len(callers),
                    arrival_s=t,
                    home=home,
                    patience_s=rng.expovariate(1.0 / scenario.patience_mean_s),
                    talk_s=rng.expovariate(1.0 / scenario.talk_mean_s),
                    counted=counted,
                    accept_delays_s=tuple(delays.uniform(low, high) for _ in range(ACCEPT_DRAWS)),
                )
            )

    if scenario.warmup_s > 0:
        draw_hour(-scenario.warmup_s, scenario.warmup_s, HOURS - 1, counted=False)
    full_hours = math.ceil(scenario.hours)
    for hour in range(full_hours):
        length = min(3600.0, scenario.hours * 3600.0 - hour * 3600.0)
        draw_hour(hour * 3600.0, length, hour % HOURS, counted=True)

    roster = _roster(scenario, branch_list, full_hours)
    return Day(scenario=scenario, branches=branch_list, callers=callers, roster=roster)


def _roster(scenario: Scenario, branches: list[Branch], hours: int) -> dict[int, dict[str, int]]:
    """Volunteers on duty per branch and hour.

    A branch's expected number is its population share (times ``branch_scale``) of the
    hour's total; it is made whole by ``floor(x + u)`` with one seeded ``u`` per branch,
    which is exact on average, changes smoothly from hour to hour and keeps the total
    close to the hour's target.
    """
    rng = random.Random(f"listenline-sim:{scenario.seed}:roster")  # noqa: S311
    offsets = {b.slug: rng.random() for b in branches}
    scaled = {b.slug: b.population * scenario.branch_scale.get(b.slug, 1.0) for b in branches}
    total_weight = sum(scaled.values()) or 1.0
    per_hour = scenario.volunteers_per_hour()
    population = sum(b.population for b in branches) or 1
    roster: dict[int, dict[str, int]] = {}
    for hour in range(-1, hours):
        h = hour % HOURS
        expected = {slug: per_hour[h] * weight / total_weight for slug, weight in scaled.items()}
        for extra in scenario.extra_volunteers:
            if h in extra.hours:
                if extra.branch in ("*", "all"):
                    for b in branches:
                        expected[b.slug] += extra.count * b.population / population
                else:
                    expected[extra.branch] += extra.count
        counts = {slug: math.floor(x + offsets[slug]) for slug, x in expected.items()}
        roster[hour] = {slug: max(0, n) for slug, n in counts.items()}
    return roster
