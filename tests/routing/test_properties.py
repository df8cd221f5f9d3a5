"""Stateful property tests on both stores with a manual clock: random arrivals, presence
changes, accepts, declines, expiries, drops and reconnects, ends and wrap-ups. After every
step (and its matching) the invariants hold."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from routing.clock import ManualClock
from routing.engine import Engine
from routing.errors import TransitionRefused
from routing.policy import CHANNELS, RoutingPolicy, strict_branches, volunteer_queues
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
        self.sink = CollectingSink()
        self.store = self.run(make_store(self.store_kind))
        self.engine = Engine(
            store=self.store,
            clock=self.clock,
            policy=RoutingPolicy(),
            topology=line_topology(),
            sink=self.sink,
        )
        self.contacts: list[str] = []
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
        t = self.run(self.engine.contact_enqueue(channel=channel, home_branch=home))
        self.contacts.append(t.contact_id)

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
        self._fcfs_and_rings(contacts, vols)

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

    def _fcfs_and_rings(
        self, contacts: list[ContactState], vols: dict[str, VolunteerState]
    ) -> None:
        new = self.sink.events[self.seen_events :]
        self.seen_events = len(self.sink.events)
        by_id = {c.contact_id: c for c in contacts}
        now = self.clock.now()
        for e in new:
            if e.type != "offer.made":
                continue
            b = by_id.get(e.payload["contact_id"])
            if b is None or b.state != "offered":
                continue
            for a in contacts:
                if (a.state, a.home, a.channel, a.requeues) == ("waiting", b.home, b.channel, 0):
                    assert (a.score, a.contact_id) > (b.score, b.contact_id), (a, b)
            if b.home == "harbour" and e.payload["volunteer_branch"] != "harbour":
                staffed = any(
                    v.branch == "harbour" and v.presence[b.channel] == "available"
                    for v in vols.values()
                )
                waited = now - b.score
                limit = 30 if e.payload["volunteer_branch"] == "south" else 90
                assert waited >= limit or (limit == 30 and not staffed), (e, waited)


class MemoryMachine(RoutingMachine):
    store_kind = "memory"


class RedisMachine(RoutingMachine):
    store_kind = "redis"


SETTINGS = settings(
    max_examples=40,
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
