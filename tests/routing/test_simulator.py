"""The simulator of a day of the line: seeded, complete, and sensible in its ordering.

Short scenarios (a few hours) keep this fast; the full day is the answer_rate benchmark.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from routing.scenario import (
    ExtraVolunteers,
    Scenario,
    ScenarioError,
    branches_load,
    day_draw,
    parse_hours,
)
from routing.simulator import POLICIES, simulate

# The six night hours from 00:00, when few volunteers are on duty and many branches have
# nobody: ~300 callers, enough for the ordering to show, and quick to run.
NIGHT = Scenario(seed=7, hours=6.0, warmup_s=1800.0, arrivals_per_day=2400.0, volunteers=30.0)


@pytest.fixture(scope="module")
def night() -> dict[str, dict]:
    return simulate(NIGHT).as_dict()["policies"]


def test_the_four_policies_run_on_the_same_callers(night: dict[str, dict]) -> None:
    assert list(night) == list(POLICIES)
    offered = {r["offered"] for r in night.values()}
    assert len(offered) == 1 and offered.pop() > 200
    for result in night.values():
        # every counted caller is answered or abandoned, nobody lost
        assert result["answered"] + result["abandoned"] == result["offered"]
        assert (
            result["answered_home"] + result["answered_neighbour"] + result["answered_far"]
            == (result["answered"])
        )


def test_the_ordering_is_sensible(night: dict[str, dict]) -> None:
    isolated, strict = night["isolated"], night["strict"]
    default, national = night["default"], night["national"]
    assert national["answered"] >= isolated["answered"]
    assert default["answered"] >= isolated["answered"]
    assert default["answered"] >= strict["answered"]
    assert isolated["share_answered_home"] == 1.0
    assert isolated["answered_neighbour"] == isolated["answered_far"] == 0
    assert default["share_answered_home"] > national["share_answered_home"]
    # strict rings: nobody beyond the neighbours before 90 s, so fewer far answers
    assert strict["answered_far"] <= default["answered_far"]


def test_same_seed_same_figures_other_seed_other_day(night: dict[str, dict]) -> None:
    short = Scenario(seed=7, hours=2.0, warmup_s=600.0, arrivals_per_day=2400.0, volunteers=30.0)
    again = simulate(short, ["default", "strict"]).as_dict()
    twice = simulate(short, ["default", "strict"]).as_dict()
    for result in (again, twice):
        for figures in result["policies"].values():
            figures.pop("runtime_s")
    assert again == twice
    other = day_draw(Scenario(seed=8, hours=2.0))
    assert [c.arrival_s for c in other.callers] != [
        c.arrival_s for c in day_draw(Scenario(seed=7, hours=2.0)).callers
    ]


def test_a_day_follows_the_profiles_and_the_population() -> None:
    day = day_draw(Scenario(seed=3))
    counted = [c for c in day.callers if c.counted]
    assert 1500 < len(counted) < 1900
    per_hour = [0] * 24
    for caller in counted:
        per_hour[int(caller.arrival_s // 3600)] += 1
    assert sum(per_hour[19:23]) > 2 * sum(per_hour[2:6])  # evening busiest, night quietest
    on_duty = [sum(day.on_duty(h).values()) for h in range(24)]
    assert 40 <= sum(on_duty) / 24 <= 50
    assert min(on_duty) == min(on_duty[0:7])
    amsterdam = sum(c.home == "amsterdam" for c in counted)
    delft = sum(c.home == "delft-westland" for c in counted)
    assert amsterdam > 2 * delft  # 903k inhabitants against 237k


def test_extra_volunteers_are_added_where_and_when_asked() -> None:
    base = day_draw(Scenario(seed=3))
    extra = ExtraVolunteers.parse("utrecht:22-2:5")
    assert extra.hours == (0, 1, 22, 23)
    more = day_draw(Scenario(seed=3, extra_volunteers=(extra,)))
    assert more.on_duty(23)["utrecht"] == base.on_duty(23)["utrecht"] + 5
    assert more.on_duty(12)["utrecht"] == base.on_duty(12)["utrecht"]
    assert [c.arrival_s for c in more.callers] == [c.arrival_s for c in base.callers]
    with pytest.raises(ScenarioError):
        day_draw(Scenario(extra_volunteers=(ExtraVolunteers.parse("atlantis:all:1"),)))
    with pytest.raises(ScenarioError):
        parse_hours("25-3")


def test_scenario_file_refuses_unknown_keys() -> None:
    scenario = Scenario.from_mapping(
        {"seed": 4, "talk_mean_s": 900, "extra_volunteers": ["*:all:3"]}
    )
    assert scenario.seed == 4 and scenario.talk_mean_s == 900.0
    assert scenario.extra_volunteers[0].hours == tuple(range(24))
    with pytest.raises(ScenarioError, match="unknown key"):
        Scenario.from_mapping({"arrivals": 10})
    with pytest.raises(ScenarioError, match="patience_mean_s"):
        Scenario(patience_mean_s=0)


def test_branches_come_from_the_packaged_csv() -> None:
    branches = branches_load()
    assert len(branches) == 30
    by_slug = {b.slug: b for b in branches}
    assert "eemland" in by_slug["utrecht"].neighbours
    assert "utrecht" in by_slug["eemland"].neighbours


def test_the_command_prints_a_table_and_json(tmp_path: Path) -> None:
    scenario = tmp_path / "hour.json"
    scenario.write_text(json.dumps({"hours": 1, "warmup_s": 600, "arrivals_per_day": 2400}))
    out = StringIO()
    call_command(
        "simulate",
        "--scenario",
        str(scenario),
        "--seed",
        "2",
        "--policies",
        "default,national",
        "--extra-volunteers",
        "utrecht:0-1:3",
        stdout=out,
    )
    text = out.getvalue()
    assert "default (locality-first)" in text and "one national pool" in text
    assert "utrecht:0:+3" in text and "Δ answered" in text
    out = StringIO()
    call_command(
        "simulate", "--scenario", str(scenario), "--json", "--policies", "isolated", stdout=out
    )
    data = json.loads(out.getvalue())
    assert data["scenario"]["hours"] == 1.0 and set(data["policies"]) == {"isolated"}
    with pytest.raises(CommandError, match="unknown policy"):
        call_command("simulate", "--policies", "anarchy", stdout=StringIO())
    with pytest.raises(CommandError, match="unknown branch"):
        call_command("simulate", "--extra-volunteers", "atlantis:1:1", stdout=StringIO())
