"""Matching: who gets which contact, as one atomic store decision each.

The engine calls these after every change that adds a waiting contact or frees capacity
(and the ticker after time alone changed something), so no volunteer stays idle while a
contact they may take waits. The policy (tiers, queue cutoffs) is computed here in
Python from ``routing.policy`` and handed to the store's match primitive; the store
applies it in one Lua script (Redis) or one critical section (in process).

Events produced along the way are collected in an :class:`Outbox` and delivered by the
engine after the whole operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from routing import events as ev
from routing.policy import (
    ANY,
    CHANNELS,
    INF,
    NATIONAL,
    QueueSpec,
    RoutingPolicy,
    Topology,
    contact_tiers,
    strict_branches,
    volunteer_queues,
)
from routing.store.base import ContactMatch, Matched, Offer, VolunteerMatch
from routing.trail import TrailEntry

if TYPE_CHECKING:
    from routing.engine import Engine


@dataclass
class Outbox:
    """Events and trail rows of one engine operation, delivered together at its end."""

    events: list[ev.Event] = field(default_factory=list)
    trail: list[TrailEntry] = field(default_factory=list)

    def add(self, event_type: str, groups: Sequence[str], **payload: object) -> None:
        self.events.append(ev.make(event_type, groups, **payload))


def branch_groups(*branches: str) -> list[str]:
    """The channel-layer groups of these branches, plus ``national``."""
    return [f"branch.{b}" for b in branches if b and b != NATIONAL] + ["national"]


def offered(offer: Offer, out: Outbox) -> None:
    out.add(
        "offer.made",
        [f"volunteer.{offer.volunteer_id}", *branch_groups(offer.volunteer_branch)],
        contact_id=offer.contact_id,
        volunteer_id=offer.volunteer_id,
        channel=offer.channel,
        home_branch=offer.home,
        volunteer_branch=offer.volunteer_branch,
        expires_at=offer.expires_at,
        requeued=offer.requeued,
    )
    out.add("queue.changed", branch_groups(offer.home), branch=offer.home, channel=offer.channel)


Tiers = list[list[str]]


def _compact_tiers(topology: Topology, tiers: Tiers) -> Tiers:
    """The last tier as ``[ANY]`` when the tiers together cover every branch: the store
    then asks one whole-channel free set instead of one per remaining branch."""
    covered = {b for tier in tiers for b in tier}
    if tiers and covered >= set(topology.branches):
        return [*tiers[:-1], [ANY]]
    return tiers


class Plans:
    """The policy's answers that do not change with time, kept per topology: the queues a
    volunteer of a branch may take from (when no strict ring cuts any of them) and a
    contact's tiers (when its home has no ring). Both in the store's compact form."""

    def __init__(self) -> None:
        self._topology: Topology | None = None
        self._policy: RoutingPolicy | None = None
        self._queues: dict[str, tuple[QueueSpec, ...]] = {}
        self._tiers: dict[str, Tiers] = {}
        self._strict: frozenset[str] = frozenset()

    def _for(self, topology: Topology, policy: RoutingPolicy) -> None:
        if topology is not self._topology or policy is not self._policy:
            self._topology, self._policy = topology, policy
            self._queues, self._tiers = {}, {}
            self._strict = frozenset(strict_branches(topology, policy))

    def queues(
        self, topology: Topology, policy: RoutingPolicy, branch: str, now: float
    ) -> tuple[QueueSpec, ...]:
        self._for(topology, policy)
        hit = self._queues.get(branch)
        if hit is not None:
            return hit
        specs = volunteer_queues(topology, policy, branch=branch, channels=CHANNELS, now=now)
        if self._strict - {branch}:
            return tuple(specs)  # cutoffs move with the clock: computed every time
        if policy.mode == "national":
            compact = [QueueSpec(0, ANY, ch, INF) for ch in CHANNELS]
        else:
            compact = [q for q in specs if q.tier < 2]
            compact += [
                QueueSpec(2, ANY, ch, INF)
                for ch in CHANNELS
                if any(q.tier == 2 and q.channel == ch for q in specs)
            ]
        self._queues[branch] = tuple(compact)
        return self._queues[branch]

    def tiers(
        self, topology: Topology, policy: RoutingPolicy, home: str, waited_s: float
    ) -> tuple[Tiers, Tiers | None]:
        """(tiers, tiers if nobody of a strict home is on duty, else None)."""
        self._for(topology, policy)
        if home in self._strict:
            tiers = contact_tiers(topology, policy, home=home, waited_s=waited_s, home_staffed=True)
            alt = contact_tiers(topology, policy, home=home, waited_s=waited_s, home_staffed=False)
            unstaffed = _compact_tiers(topology, alt) if alt != tiers else None
            return _compact_tiers(topology, tiers), unstaffed
        hit = self._tiers.get(home)
        if hit is None:
            tiers = contact_tiers(topology, policy, home=home, waited_s=0, home_staffed=True)
            hit = self._tiers[home] = _compact_tiers(topology, tiers)
        return hit, None


async def contact_match(engine: Engine, home: str, waited_s: float) -> ContactMatch:
    topo, policy = await engine.topology(), engine.policy
    tiers, unstaffed = engine.plans.tiers(topo, policy, home, waited_s)
    return ContactMatch(tiers, policy.offer_timeout_s, unstaffed)


async def volunteer_match(engine: Engine, branch: str) -> VolunteerMatch:
    """What the store needs to fill the capacity of a volunteer of ``branch`` ('' when not
    known yet: the store then only reports the branch)."""
    policy, now = engine.policy, engine.clock.now()
    queues: tuple[QueueSpec, ...] = ()
    if branch:
        queues = engine.plans.queues(await engine.topology(), policy, branch, now)
    return VolunteerMatch(branch, queues, now - policy.wait_cap_s, policy.offer_timeout_s)


async def match_contact(
    engine: Engine,
    contact_id: str,
    home: str,
    channel: str,
    score: float,
    out: Outbox,
    *,
    avoid: Sequence[str] = (),
) -> bool:
    """Offer a waiting contact to the best free volunteer of its first tier that has one.
    True if an offer was made. ``avoid``: volunteers just freed by a decline or a miss;
    the caller then runs ``match_volunteer`` for them, so each takes the first contact
    in their own order (the one they declined only if nobody else took it and nothing
    goes before it)."""
    now = engine.clock.now()
    # whether anyone of a strict home is on duty is decided by the store, atomically
    plan = await contact_match(engine, home, now - score)
    offer = await engine.store.match_contact(
        contact_id=contact_id,
        tiers=plan.tiers,
        now=now,
        offer_timeout_s=plan.offer_timeout_s,
        avoid=avoid,
        unstaffed_tiers=plan.unstaffed_tiers,
    )
    if offer is not None:
        offered(offer, out)
    return offer is not None


async def match_waiting(
    engine: Engine, contact_ids: Sequence[str], out: Outbox, *, avoid: Sequence[str] = ()
) -> None:
    """Offer those of these contacts that wait, first come first served (never to a
    volunteer in ``avoid``)."""
    waiting = []
    for cid in contact_ids:
        c = await engine.store.contact_get(contact_id=cid)
        if c is not None and c.state == "waiting":
            waiting.append(c)
    for c in sorted(waiting, key=lambda c: (c.score, c.contact_id)):
        await match_contact(engine, c.contact_id, c.home, c.channel, c.score, out, avoid=avoid)


async def matched(engine: Engine, volunteer_id: str, result: Matched | None, out: Outbox) -> int:
    """Apply what a store's volunteer match did: remember the branch, emit the offers; if
    the queues were computed for a stale branch, match again with the right ones."""
    if result is None:
        return 0
    engine.branches[volunteer_id] = result.branch
    if result.stale:
        return await match_volunteer(engine, volunteer_id, out)
    for offer in result.offers:
        offered(offer, out)
    return len(result.offers)


async def match_volunteer(engine: Engine, volunteer_id: str, out: Outbox) -> int:
    """Fill a volunteer's free capacity in one store decision; returns the offers made.
    The volunteer's branch comes from the engine's memory of it (checked by the store;
    on a miss the store names the branch and the match is retried once)."""
    branch = engine.branches.get(volunteer_id, "")
    for _ in range(2):
        result = await engine.store.match_volunteer(
            volunteer_id=volunteer_id,
            match=await volunteer_match(engine, branch),
            now=engine.clock.now(),
        )
        if result is None:
            return 0
        engine.branches[volunteer_id] = result.branch
        if not result.stale:
            for offer in result.offers:
                offered(offer, out)
            return len(result.offers)
        branch = result.branch
    return 0
