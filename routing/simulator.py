"""A seeded discrete-event simulation of a day of the line, on the real routing engine.

The simulator owns only the world around the engine: callers arriving and hanging up,
volunteers coming on and going off duty by the roster, taking a few seconds to accept an
offer, talking and wrapping up. Every routing decision (who is offered to whom, when a
strict ring opens, when an offer expires) is made by ``routing.services`` over the
in-process store on a ``ManualClock``, exactly as in production.

Time jumps from event to event: the clock is set to the next event's time, the engine
is called, and the offers it makes are turned into future events (an accept after the
volunteer's delay, an expiry tick). The engine's ``tick`` is called at every time-based
boundary it could care about: offer deadlines and the strict rings of every caller.

The same drawn day (``routing.scenario.day_draw``) is replayed under each policy, so the
policies differ only in routing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.policy import Ring, RoutingPolicy, Topology
from routing.scenario import Day, Scenario, day_draw
from routing.store.memory import MemoryStore
from routing.trail import CollectingSink

#: The four policies compared, in the order printed: most local first.
POLICIES: tuple[str, ...] = ("isolated", "strict", "default", "national")
POLICY_LABELS = {
    "isolated": "isolated branches",
    "strict": "strict locality (rings)",
    "default": "default (locality-first)",
    "national": "one national pool",
}
ANSWERED_WITHIN_S = 60.0
_EPS = 1e-3  # ticks land just after a boundary, so "waited >= N" holds

# Event kinds, in the order they are handled when they fall on the same instant.
_SHIFT, _WRAPUP_DONE, _END, _ACCEPT, _ABANDON, _ARRIVAL, _TICK = range(7)


#: 2024-01-01 00:00 UTC: the simulated day's midnight on the engine's clock.
EPOCH = 1_704_067_200.0


@dataclass(frozen=True)
class OfferMade:
    contact_id: str  # the simulator's id of the caller
    volunteer_id: str
    expires_at: float  # simulated seconds since 00:00


class EngineDriver:
    """The real engine (``routing.engine.Engine``) over a fresh in-process store, a
    ``ManualClock`` and a collecting sink, driven through its public methods.

    The engine names contacts itself; the driver maps them to the simulator's ids. What
    the engine decided is read back from the events it emitted (``offer.made``, and
    ``offer.withdrawn`` with reason ``expired``), as a console would see them.
    """

    def __init__(self, *, day: Day, policy: str) -> None:
        scenario = day.scenario
        if policy == "strict":
            home_only, until = scenario.strict_rings_s
            routing_policy = RoutingPolicy(strict_everywhere=Ring(home_only, until))
        else:
            routing_policy = RoutingPolicy.named(policy)
        topology = Topology.from_dicts({b.slug: b.neighbours for b in day.branches})
        self.clock = ManualClock(EPOCH - scenario.warmup_s)
        self.sink = CollectingSink()
        self.store = MemoryStore()
        self.engine = Engine(
            store=self.store,
            clock=self.clock,
            policy=routing_policy,
            topology=topology,
            sink=self.sink,
        )
        self.offer_timeout_s = routing_policy.offer_timeout_s
        self.calls = 0
        self._to_sim: dict[str, str] = {}
        self._to_engine: dict[str, str] = {}

    def clock_set(self, at: float) -> None:
        self.clock.set(EPOCH + at)

    async def start(self, *, at: float) -> None:
        self.clock_set(at)

    async def close(self) -> None:
        await self.store.close()

    def _offers(self) -> list[OfferMade]:
        made = []
        for event in self.sink.events:
            if event.type == "offer.made":
                p = event.payload
                made.append(
                    OfferMade(
                        self._to_sim[p["contact_id"]], p["volunteer_id"], p["expires_at"] - EPOCH
                    )
                )
        self.sink.events.clear()
        self.sink.trail.clear()
        return made

    async def volunteer_register(self, *, volunteer_id: str, branch: str) -> None:
        self.calls += 1
        await self.engine.volunteer_register(
            volunteer_id=volunteer_id, branch=branch, channels=("phone",), chat_limit=1
        )

    async def available(self, *, volunteer_id: str) -> list[OfferMade]:
        self.calls += 1
        await self.engine.volunteer_presence_set(
            volunteer_id=volunteer_id, channel="phone", state="available"
        )
        return self._offers()

    async def off_duty(self, *, volunteer_id: str) -> list[OfferMade]:
        self.calls += 1
        await self.engine.volunteer_presence_set(
            volunteer_id=volunteer_id, channel="phone", state="off_duty"
        )
        return self._offers()

    async def enqueue(self, *, contact_id: str, home: str) -> list[OfferMade]:
        self.calls += 1
        # Offers made inside this call name the new contact: map it before reading them.
        self.sink.events.clear()
        ticket = await self.engine.contact_enqueue(channel="phone", home_branch=home)
        self._to_sim[ticket.contact_id] = contact_id
        self._to_engine[contact_id] = ticket.contact_id
        return self._offers()

    async def accept(self, *, contact_id: str, volunteer_id: str) -> bool:
        self.calls += 1
        try:
            await self.engine.offer_accept(
                contact_id=self._to_engine[contact_id], volunteer_id=volunteer_id
            )
        except TransitionRefused:
            return False
        finally:
            self._offers()
        return True

    async def end(self, *, contact_id: str) -> list[OfferMade]:
        self.calls += 1
        await self.engine.contact_end(contact_id=self._to_engine[contact_id], by="caller")
        return self._offers()

    async def wrapup_done(self, *, contact_id: str, volunteer_id: str) -> list[OfferMade]:
        self.calls += 1
        await self.engine.contact_wrapup_done(
            contact_id=self._to_engine.pop(contact_id), volunteer_id=volunteer_id
        )
        return self._offers()

    async def abandon(self, *, contact_id: str) -> list[OfferMade]:
        self.calls += 1
        await self.engine.contact_abandon(contact_id=self._to_engine.pop(contact_id))
        return self._offers()

    async def tick(self) -> tuple[list[tuple[str, str]], list[OfferMade]]:
        """Run the engine's ticker once; returns (expired offers, new offers)."""
        self.calls += 1
        await self.engine.tick()
        expired = [
            (self._to_sim[e.payload["contact_id"]], e.payload["volunteer_id"])
            for e in self.sink.events
            if e.type == "offer.withdrawn" and e.payload["reason"] == "expired"
        ]
        return expired, self._offers()


def engine_driver(*, day: Day, policy: str) -> EngineDriver:
    return EngineDriver(day=day, policy=policy)


@dataclass
class PolicyResult:
    """What one policy did with the day. Shares are of the counted (non-warm-up) callers;
    the home share is of those answered."""

    policy: str
    offered: int = 0
    answered: int = 0
    answered_within_60s: int = 0
    answered_home: int = 0
    answered_neighbour: int = 0
    answered_far: int = 0
    abandoned: int = 0
    abandoned_while_offered: int = 0
    offers: int = 0
    offers_withdrawn: int = 0
    offers_expired: int = 0
    engine_calls: int = 0
    ticks: int = 0
    waits_s: list[float] = field(default_factory=list, repr=False)
    runtime_s: float = 0.0
    by_branch: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    by_hour: list[dict[str, int]] = field(default_factory=list, repr=False)

    @property
    def share_answered(self) -> float:
        return self.answered / self.offered if self.offered else 0.0

    @property
    def share_answered_within_60s(self) -> float:
        return self.answered_within_60s / self.offered if self.offered else 0.0

    @property
    def share_answered_home(self) -> float:
        return self.answered_home / self.answered if self.answered else 0.0

    def wait_percentile(self, q: float) -> float:
        if not self.waits_s:
            return 0.0
        ordered = sorted(self.waits_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_within_60s": self.answered_within_60s,
            "answered_home": self.answered_home,
            "answered_neighbour": self.answered_neighbour,
            "answered_far": self.answered_far,
            "abandoned": self.abandoned,
            "share_answered": round(self.share_answered, 4),
            "share_answered_within_60s": round(self.share_answered_within_60s, 4),
            "share_answered_home": round(self.share_answered_home, 4),
            "wait_p50_s": round(self.wait_percentile(0.5), 1),
            "wait_p90_s": round(self.wait_percentile(0.9), 1),
            "offers": self.offers,
            "offers_withdrawn": self.offers_withdrawn,
            "offers_expired": self.offers_expired,
            "engine_calls": self.engine_calls,
            "runtime_s": round(self.runtime_s, 2),
        }


@dataclass
class SimulationResult:
    scenario: Scenario
    results: dict[str, PolicyResult]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.scenario.seed,
            "scenario": self.scenario.as_dict(),
            "policies": {name: r.summary() for name, r in self.results.items()},
        }


@dataclass
class _Caller:
    index: int
    arrival_s: float
    home: str
    talk_s: float
    counted: bool
    state: str = "waiting"  # waiting | offered | active | wrap_up | done | abandoned
    volunteer: str = ""
    offers: int = 0


@dataclass
class _Volunteer:
    volunteer_id: str
    branch: str
    state: str = "off"  # off | idle | offered | busy
    leaving: bool = False


class _DaySimulation:
    """One policy over one drawn day. Not reusable."""

    def __init__(self, day: Day, policy: str, driver: EngineDriver) -> None:
        self.day = day
        self.scenario = day.scenario
        self.policy = policy
        self.driver = driver
        self.result = PolicyResult(policy=policy)
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = itertools.count()
        self.ticks_scheduled: set[float] = set()
        self.callers: dict[str, _Caller] = {}
        self.volunteers: dict[str, _Volunteer] = {}
        self.neighbours = {b.slug: set(b.neighbours) for b in day.branches}
        self.result.by_branch = {
            b.slug: {"offered": 0, "answered": 0, "answered_home": 0} for b in day.branches
        }
        self.result.by_hour = [{"offered": 0, "answered": 0} for _ in range(24)]

    # --- scheduling ------------------------------------------------------------------------

    def push(self, at: float, kind: int, payload: Any = None) -> None:
        heapq.heappush(self.events, (at, kind, next(self.seq), payload))

    def tick_at(self, at: float) -> None:
        key = round(at, 3)
        if key not in self.ticks_scheduled:
            self.ticks_scheduled.add(key)
            self.push(key, _TICK)

    def handle_offers(self, now: float, offers: Iterable[OfferMade]) -> None:
        for offer in offers:
            caller = self.callers[offer.contact_id]
            volunteer = self.volunteers[offer.volunteer_id]
            caller.state, caller.volunteer = "offered", offer.volunteer_id
            volunteer.state = "offered"
            self.result.offers += 1
            delays = self.day.callers[caller.index].accept_delays_s
            delay = delays[caller.offers % len(delays)] if delays else 0.0
            caller.offers += 1
            if now + delay < offer.expires_at:
                self.push(now + delay, _ACCEPT, (offer.contact_id, offer.volunteer_id))
            self.tick_at(offer.expires_at + _EPS)

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> PolicyResult:
        started = time.perf_counter()
        scenario = self.scenario
        first_hour = -1 if scenario.warmup_s > 0 else 0
        for hour in sorted(h for h in self.day.roster if h >= first_hour):
            self.push(max(hour * 3600.0, -scenario.warmup_s), _SHIFT, hour)
        rings = scenario.strict_rings_s if self.policy == "strict" else ()
        for caller in self.day.callers:
            contact_id = f"c{caller.index}"
            self.callers[contact_id] = _Caller(
                index=caller.index,
                arrival_s=caller.arrival_s,
                home=caller.home,
                talk_s=caller.talk_s,
                counted=caller.counted,
            )
            self.push(caller.arrival_s, _ARRIVAL, contact_id)
            self.push(caller.arrival_s + caller.patience_s, _ABANDON, contact_id)
            for ring in rings:
                self.tick_at(caller.arrival_s + ring + _EPS)

        handlers: dict[int, Callable[[float, Any], Awaitable[None]]] = {
            _SHIFT: self.on_shift,
            _WRAPUP_DONE: self.on_wrapup_done,
            _END: self.on_end,
            _ACCEPT: self.on_accept,
            _ABANDON: self.on_abandon,
            _ARRIVAL: self.on_arrival,
            _TICK: self.on_tick,
        }
        start = -scenario.warmup_s
        await self.driver.start(at=start)
        while self.events:
            at, kind, _, payload = heapq.heappop(self.events)
            self.driver.clock_set(at)
            await handlers[kind](at, payload)
        self.result.engine_calls = self.driver.calls
        self.result.runtime_s = time.perf_counter() - started
        return self.result

    # --- the world's events ------------------------------------------------------------------

    async def on_shift(self, now: float, hour: int) -> None:
        """Bring the roster of ``hour`` on duty: newcomers become available; those whose
        shift ended go off duty now if idle, else after their contact."""
        for branch, wanted in self.day.on_duty(hour).items():
            for i in itertools.count():
                vid = f"{branch}#{i}"
                volunteer = self.volunteers.get(vid)
                if volunteer is None:
                    if i >= wanted:
                        break
                    volunteer = self.volunteers[vid] = _Volunteer(vid, branch)
                    await self.driver.volunteer_register(volunteer_id=vid, branch=branch)
                if i < wanted:
                    volunteer.leaving = False
                    if volunteer.state == "off":
                        volunteer.state = "idle"
                        self.handle_offers(now, await self.driver.available(volunteer_id=vid))
                elif volunteer.state == "idle":
                    volunteer.state = "off"
                    self.handle_offers(now, await self.driver.off_duty(volunteer_id=vid))
                elif volunteer.state != "off":
                    volunteer.leaving = True

    async def on_arrival(self, now: float, contact_id: str) -> None:
        caller = self.callers[contact_id]
        if caller.counted:
            self.result.offered += 1
            self.result.by_branch[caller.home]["offered"] += 1
            self.result.by_hour[int(now // 3600) % 24]["offered"] += 1
        self.handle_offers(now, await self.driver.enqueue(contact_id=contact_id, home=caller.home))

    async def on_abandon(self, now: float, contact_id: str) -> None:
        caller = self.callers[contact_id]
        if caller.state not in ("waiting", "offered"):
            return
        if caller.state == "offered":
            self.result.offers_withdrawn += 1
            if caller.counted:
                self.result.abandoned_while_offered += 1
            volunteer = self.volunteers[caller.volunteer]
            volunteer.state = "idle"
        caller.state = "abandoned"
        if caller.counted:
            self.result.abandoned += 1
        self.handle_offers(now, await self.driver.abandon(contact_id=contact_id))
        if caller.volunteer:
            await self._maybe_leave(self.volunteers[caller.volunteer])

    async def on_accept(self, now: float, payload: tuple[str, str]) -> None:
        contact_id, vid = payload
        caller = self.callers[contact_id]
        if caller.state != "offered" or caller.volunteer != vid:
            return  # the caller hung up or the offer expired meanwhile
        if not await self.driver.accept(contact_id=contact_id, volunteer_id=vid):
            return
        volunteer = self.volunteers[vid]
        caller.state, volunteer.state = "active", "busy"
        if caller.counted:
            r = self.result
            waited = now - caller.arrival_s
            r.answered += 1
            r.waits_s.append(waited)
            r.answered_within_60s += waited <= ANSWERED_WITHIN_S
            if volunteer.branch == caller.home:
                r.answered_home += 1
                r.by_branch[caller.home]["answered_home"] += 1
            elif volunteer.branch in self.neighbours[caller.home]:
                r.answered_neighbour += 1
            else:
                r.answered_far += 1
            r.by_branch[caller.home]["answered"] += 1
            r.by_hour[int(caller.arrival_s // 3600) % 24]["answered"] += 1
        self.push(now + caller.talk_s, _END, contact_id)

    async def on_end(self, now: float, contact_id: str) -> None:
        caller = self.callers[contact_id]
        caller.state = "wrap_up"
        self.handle_offers(now, await self.driver.end(contact_id=contact_id))
        self.push(now + self.scenario.wrapup_s, _WRAPUP_DONE, contact_id)

    async def on_wrapup_done(self, now: float, contact_id: str) -> None:
        caller = self.callers[contact_id]
        volunteer = self.volunteers[caller.volunteer]
        caller.state = "done"
        if volunteer.leaving:
            volunteer.state, volunteer.leaving = "off", False
            await self.driver.off_duty(volunteer_id=volunteer.volunteer_id)
            await self.driver.wrapup_done(contact_id=contact_id, volunteer_id=caller.volunteer)
            return
        volunteer.state = "idle"
        self.handle_offers(
            now,
            await self.driver.wrapup_done(contact_id=contact_id, volunteer_id=caller.volunteer),
        )

    async def on_tick(self, now: float, _: Any) -> None:
        self.ticks_scheduled.discard(round(now, 3))
        self.result.ticks += 1
        expired, offers = await self.driver.tick()
        for contact_id, vid in expired:
            self.result.offers_expired += 1
            caller = self.callers[contact_id]
            if caller.state == "offered" and caller.volunteer == vid:
                caller.state, caller.volunteer = "waiting", ""
            volunteer = self.volunteers[vid]
            if volunteer.state == "offered":
                volunteer.state = "idle"
        self.handle_offers(now, offers)
        for _, vid in expired:
            await self._maybe_leave(self.volunteers[vid])

    async def _maybe_leave(self, volunteer: _Volunteer) -> None:
        """A volunteer whose shift has ended goes off duty once free of contacts."""
        if volunteer.leaving and volunteer.state == "idle":
            volunteer.state, volunteer.leaving = "off", False
            await self.driver.off_duty(volunteer_id=volunteer.volunteer_id)


async def simulate_async(
    scenario: Scenario, policies: Sequence[str] = POLICIES, day: Day | None = None
) -> SimulationResult:
    """Run ``policies`` over the same drawn day; one fresh engine (memory store) each."""
    day = day or day_draw(scenario)
    results: dict[str, PolicyResult] = {}
    for policy in policies:
        driver = engine_driver(day=day, policy=policy)
        try:
            results[policy] = await _DaySimulation(day, policy, driver).run()
        finally:
            await driver.close()
    return SimulationResult(scenario=scenario, results=results)


def simulate(scenario: Scenario, policies: Sequence[str] = POLICIES) -> SimulationResult:
    return asyncio.run(simulate_async(scenario, policies))


def simulate_seeds(
    scenario: Scenario, seeds: int, policies: Sequence[str] = POLICIES
) -> list[SimulationResult]:
    """The same scenario on ``seeds`` consecutive seeds from ``scenario.seed``: one day is
    noisy (a few hundred answered calls per policy), so what-ifs compare means."""

    async def run_all() -> list[SimulationResult]:
        runs = []
        for i in range(seeds):
            runs.append(await simulate_async(replace(scenario, seed=scenario.seed + i), policies))
        return runs

    return asyncio.run(run_all())


def results_mean(runs: Sequence[SimulationResult]) -> dict[str, dict[str, float]]:
    """Per policy, the mean over runs of every number in ``PolicyResult.summary()``; shares
    are means of the daily shares."""
    policies = list(runs[0].results)
    means: dict[str, dict[str, float]] = {}
    for policy in policies:
        summaries = [run.results[policy].summary() for run in runs]
        means[policy] = {
            key: round(sum(s[key] for s in summaries) / len(summaries), 4) for key in summaries[0]
        }
    return means
