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
from routing.policy import NATIONAL, contact_tiers, volunteer_queues
from routing.store.base import Offer
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
    store, policy = engine.store, engine.policy
    topo, now = await engine.topology(), engine.clock.now()
    tiers = contact_tiers(topo, policy, home=home, waited_s=now - score, home_staffed=True)
    unstaffed = None
    if home != NATIONAL and policy.ring(topo, home) is not None:
        # whether anyone of a strict home is on duty is decided by the store, atomically
        alt = contact_tiers(topo, policy, home=home, waited_s=now - score, home_staffed=False)
        unstaffed = alt if alt != tiers else None
    offer = await store.match_contact(
        contact_id=contact_id,
        tiers=tiers,
        now=now,
        offer_timeout_s=policy.offer_timeout_s,
        avoid=avoid,
        unstaffed_tiers=unstaffed,
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


async def match_volunteer(engine: Engine, volunteer_id: str, out: Outbox) -> int:
    """Fill a volunteer's free capacity, one offer per store decision; returns the number
    of offers made."""
    store, policy = engine.store, engine.policy
    vol = await store.volunteer_get(volunteer_id=volunteer_id)
    if vol is None:
        return 0
    topo = await engine.topology()
    made = 0
    for _ in range(vol.chat_limit + 1):
        now = engine.clock.now()
        # strict neighbours' queues carry both cutoffs; the store checks who is on duty
        queues = volunteer_queues(topo, policy, branch=vol.branch, channels=vol.channels, now=now)
        offer = await store.match_volunteer(
            volunteer_id=volunteer_id,
            queues=queues,
            cap_cutoff=now - policy.wait_cap_s,
            now=now,
            offer_timeout_s=policy.offer_timeout_s,
        )
        if offer is None:
            break
        made += 1
        offered(offer, out)
    return made
