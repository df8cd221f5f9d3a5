"""Stateful property tests on both stores with a manual clock: random arrivals, presence
changes, accepts, declines, expiries, drops and reconnects, ends and wrap-ups. After every
step (and its matching) the invariants hold."""

from __future__ import annotations

import asyncio
import bisect
import math
import os
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.policy import (
    CHANNELS,
    NATIONAL,
    RoutingPolicy,
    Topology,
    strict_branches,
    volunteer_queues,
)
from routing.store.base import ContactState, VolunteerState
from routing.trail import CollectingSink
from tests.routing.conftest import START, line_topology, make_store

VOLUNTEERS = {
    "n1": ("north", ("phone", "chat"), 2),
    "n2": ("north", ("chat",), 1),
    "e1": ("east", ("phone",), 1),
    "s1": ("south", ("phone", "chat"), 3),
    "h1": ("harbour", ("phone", "chat"), 2),
    "w1": ("west", ("phone", "chat"), 2),
}
HOMES = ["north", "east", "south", "harbour", "west", None]


def _free(v: VolunteerState, ch: str) -> bool:
    if v.disconnected_at or ch not in v.channels or v.presence[ch] != "available":
        return False
    if v.load_phone:
        return False
    return v.load_chat == 0 if ch == "phone" else v.load_chat < v.chat_limit


class RoutingMachine(RuleBasedStateMachine):
    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(START)
        self.sink = BatchSink()
        self.store = self.run(make_store(self.store_kind))
        self.engine = Engine(
            store=self.store,
            clock=self.clock,
            policy=RoutingPolicy(),
            topology=line_topology(),
            sink=self.sink,
        )
        self.contacts: list[str] = []
        self.model: dict[str, _Modelled] = {}
        self.seen_events = 0
        for vid, (branch, channels, limit) in VOLUNTEERS.items():
            self.run(
                self.engine.volunteer_register(
                    volunteer_id=vid, branch=branch, channels=channels, chat_limit=limit
                )
            )
            if vid != "e1":
                self.run(
                    self.engine.volunteer_presence_set(
                        volunteer_id=vid, channel="all", state="available"
                    )
                )

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.clear())
        self.run(self.store.close())
        self.loop.close()

    def _try(self, coro: Any) -> Any:
        try:
            return self.run(coro)
        except TransitionRefused:
            return None

    def _pick(self, i: int, state: str | None = None) -> ContactState | None:
        live = [c for c in self._contacts() if state is None or c.state == state]
        return live[i % len(live)] if live else None

    def _contacts(self) -> list[ContactState]:
        got = [self.run(self.store.contact_get(contact_id=cid)) for cid in self.contacts]
        return [c for c in got if c is not None]

    def _volunteers(self) -> dict[str, VolunteerState]:
        return {vid: self.run(self.store.volunteer_get(volunteer_id=vid)) for vid in VOLUNTEERS}

    # --- rules -----------------------------------------------------------------------------
    @rule(channel=st.sampled_from(CHANNELS), home=st.sampled_from(HOMES))
    def arrive(self, channel: str, home: str | None) -> None:
        self.clock.advance(0.25)  # a real clock moves between arrivals: order is defined
        t = self.run(self.engine.contact_enqueue(channel=channel, home_branch=home))
        self.contacts.append(t.contact_id)

    @rule(
        channel=st.sampled_from(CHANNELS),
        homes=st.lists(st.sampled_from(["north", "east", None]), min_size=2, max_size=4),
    )
    def rush(self, channel: str, homes: list[str | None]) -> None:
        """Several callers in a row for nearby queues: queues build up, so the order in
        which they are served is put to the test."""
        for home in homes:
            self.arrive(channel, home)

    @rule(
        vid=st.sampled_from(sorted(VOLUNTEERS)),
        channel=st.sampled_from([*CHANNELS, "all"]),
        state=st.sampled_from(["available", "available", "paused", "off_duty"]),
    )
    def presence(self, vid: str, channel: str, state: str) -> None:
        self._try(
            self.engine.volunteer_presence_set(volunteer_id=vid, channel=channel, state=state)
        )

    @rule(i=st.integers(0, 99), wrong=st.booleans())
    def accept(self, i: int, wrong: bool) -> None:
        c = self._pick(i, "offered")
        if c is not None:
            vid = "w1" if wrong and c.offered_to != "w1" else c.offered_to
            self._try(self.engine.offer_accept(contact_id=c.contact_id, volunteer_id=vid))

    @rule(state=st.sampled_from(["offered", "active", "wrap_up"]))
    def everyone_moves_on(self, state: str) -> None:
        """Every open offer accepted / every conversation ended / every wrap-up done."""
        e = self.engine
        for c in [c for c in self._contacts() if c.state == state]:
            if state == "offered":
                self._try(e.offer_accept(contact_id=c.contact_id, volunteer_id=c.offered_to))
            elif state == "active":
                self._try(e.contact_end(contact_id=c.contact_id, by="volunteer"))
            else:
                self._try(e.contact_wrapup_done(contact_id=c.contact_id, volunteer_id=c.volunteer))

    @rule(i=st.integers(0, 99))
    def decline(self, i: int) -> None:
        c = self._pick(i, "offered")
        if c is not None:
            self._try(self.engine.offer_decline(contact_id=c.contact_id, volunteer_id=c.offered_to))

    @rule(seconds=st.sampled_from([1.0, 5.0, 19.5, 20.0, 30.0, 61.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run(self.engine.tick())

    @rule(i=st.integers(0, 99))
    def end(self, i: int) -> None:
        c = self._pick(i, "active")
        if c is not None:
            self._try(self.engine.contact_end(contact_id=c.contact_id, by="caller"))

    @rule(i=st.integers(0, 99))
    def wrap_up(self, i: int) -> None:
        c = self._pick(i, "wrap_up")
        if c is not None:
            self._try(
                self.engine.contact_wrapup_done(contact_id=c.contact_id, volunteer_id=c.volunteer)
            )

    @rule(i=st.integers(0, 99))
    def abandon(self, i: int) -> None:
        c = self._pick(i)
        if c is not None:
            self._try(self.engine.contact_abandon(contact_id=c.contact_id))

    @rule(i=st.integers(0, 99))
    def requeue(self, i: int) -> None:
        c = self._pick(i, "active")
        if c is not None:
            self._try(self.engine.contact_requeue(contact_id=c.contact_id))

    @rule(vid=st.sampled_from(sorted(VOLUNTEERS)), back=st.booleans())
    def connection(self, vid: str, back: bool) -> None:
        if back:
            self._try(self.engine.volunteer_reconnected(volunteer_id=vid))
        else:
            self._try(self.engine.volunteer_disconnected(volunteer_id=vid))

    # --- invariants ------------------------------------------------------------------------
    @invariant()
    def invariants(self) -> None:
        contacts = self._contacts()
        vols = self._volunteers()
        holders: dict[str, str] = {}
        for vid, v in vols.items():
            assert v.load_phone <= 1 and v.load_chat <= v.chat_limit, v
            assert not (v.load_phone and v.load_chat), v
            mine = [c for c in contacts if vid in (c.offered_to, c.volunteer)]
            assert sorted(c.contact_id for c in mine) == sorted(v.contacts), (v, mine)
            assert v.load_phone == sum(c.channel == "phone" for c in mine)
            for cid in v.contacts:
                assert cid not in holders, f"{cid} held by {holders[cid]} and {vid}"
                holders[cid] = vid
        for c in contacts:
            if c.state == "offered":
                assert c.offered_to and not c.volunteer
        self._work_conserving(contacts, vols)
        self._replay()
        self._model_matches_store(contacts)

    def _work_conserving(
        self, contacts: list[ContactState], vols: dict[str, VolunteerState]
    ) -> None:
        topo, now = line_topology(), self.clock.now()
        staffed = {
            b: any(v.branch == b and v.presence[ch] == "available" for v in vols.values())
            for b in topo.branches
            for ch in CHANNELS
        }
        for vid, v in vols.items():
            holds_offer = any(c.offered_to == vid for c in contacts)
            if holds_offer:
                continue
            for ch in CHANNELS:
                if not _free(v, ch):
                    continue
                specs = volunteer_queues(
                    topo,
                    self.engine.policy,
                    branch=v.branch,
                    channels=[ch],
                    now=now,
                    staffed={
                        b: any(
                            w.branch == b and w.presence[ch] == "available" for w in vols.values()
                        )
                        for b in strict_branches(topo, self.engine.policy)
                    },
                )
                for c in contacts:
                    if c.state != "waiting" or c.channel != ch:
                        continue
                    allowed = any(q.branch == c.home and c.score <= q.cutoff for q in specs)
                    assert not allowed, f"{vid} free and idle while {c} waits"
        del staffed

    def _replay(self) -> None:
        """Replay this step's events into the model and check every offer made against
        the contacts that were waiting at that moment (the model knows arrival order
        independently of the store's scores): a contact past the wait cap goes first,
        oldest first; otherwise the lowest tier first, and first come first served within
        a tier. Re-queued contacts count as the oldest of all."""
        topo, now = line_topology(), self.clock.now()
        cap = self.engine.policy.wait_cap_s
        for index in range(self.seen_events, len(self.sink.events)):
            e, batch = self.sink.events[index], self.sink.batch_of(index)
            p = e.payload
            m = self.model.get(str(p.get("contact_id", "")))
            if e.type == "contact.queued":
                self.model[p["contact_id"]] = _Modelled(
                    home=p["home_branch"], channel=p["channel"], arrived=now, since=batch
                )
            elif m is None:
                continue
            elif e.type == "offer.made":
                self._check_offer(m, p, topo, now, cap, batch)
                m.state = "offered"
            elif e.type == "offer.withdrawn" and m.state == "offered":
                m.state, m.since = "waiting", batch
            elif e.type == "contact.assigned":
                m.state = "active"
            elif e.type == "contact.ended":
                m.state = "wrap_up"
            elif e.type == "contact.requeued":
                m.state, m.requeued, m.since = "waiting", True, batch
            elif e.type == "contact.closed":
                m.state = "closed"
        self.seen_events = len(self.sink.events)

    def _check_offer(
        self, b: _Modelled, p: dict[str, Any], topo: Topology, now: float, cap: float, batch: int
    ) -> None:
        vbranch = p["volunteer_branch"]

        def tier(m: _Modelled) -> int:
            return 0 if m.home in (vbranch, NATIONAL) else topo.distance(m.home, vbranch)

        def past_cap(m: _Modelled) -> bool:
            return m.requeued or now - m.arrived >= cap

        assert b.state == "waiting", (p, b)
        for cid, a in self.model.items():
            if a is b or a.state != "waiting" or a.channel != b.channel:
                continue
            if a.since == batch:
                # several contacts came free in one operation (offers expiring together):
                # each is offered by its own order; the volunteer's order rules only
                # against contacts that were already waiting
                continue
            if a.home != b.home and a.home in topo.rings:
                continue  # a strict branch's ring may not be open to this volunteer
            if past_cap(a) or past_cap(b):
                wrong = past_cap(a) and (not past_cap(b) or a.key < b.key)
            else:
                wrong = (tier(a), a.key) < (tier(b), b.key)
            assert not wrong, f"offer {p} while {cid} {a} waits (tiers {tier(a)}/{tier(b)})"
        if b.home in topo.rings and vbranch != b.home:
            staffed = any(
                v.branch == b.home and v.presence[b.channel] == "available"
                for v in self._volunteers().values()
            )
            waited = now - b.arrived if not b.requeued else math.inf
            limit = 30 if topo.distance(b.home, vbranch) == 1 else 90
            assert waited >= limit or (limit == 30 and not staffed), (p, waited)

    def _model_matches_store(self, contacts: list[ContactState]) -> None:
        """The events told the truth: the model built from them agrees with the store."""
        live = {c.contact_id: c.state for c in contacts}
        for cid, m in self.model.items():
            assert live.get(cid, "closed") == m.state, (cid, m, live.get(cid))


@dataclass
class _Modelled:
    home: str
    channel: str
    arrived: float
    state: str = "waiting"
    requeued: bool = False
    since: int = 0  # the delivery (engine operation) in which it last started waiting

    @property
    def key(self) -> tuple[bool, float]:
        """Queue order: re-queued contacts first, then by arrival."""
        return (not self.requeued, self.arrived)


class BatchSink(CollectingSink):
    """Remembers which delivery (one engine operation) each event came in."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[int] = []

    async def deliver(self, events: list[Any], trail: list[Any]) -> None:
        await super().deliver(events, trail)
        self.ends.append(len(self.events))

    def batch_of(self, index: int) -> int:
        return bisect.bisect_right(self.ends, index)


class MemoryMachine(RoutingMachine):
    store_kind = "memory"


class RedisMachine(RoutingMachine):
    store_kind = "redis"


SETTINGS = settings(
    max_examples=int(os.environ.get("ROUTING_PROPERTY_EXAMPLES", "40")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@pytest.mark.parametrize("machine", [MemoryMachine, RedisMachine], ids=["memory", "redis"])
def test_routing_invariants(machine: type[RoutingMachine]) -> None:
    test_case = machine.TestCase
    test_case.settings = SETTINGS
    test_case().runTest()
