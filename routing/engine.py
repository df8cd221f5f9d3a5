"""The routing engine: validates, applies one atomic store change, runs matching, emits.

Matching is event-driven: every change that adds a contact or frees capacity is followed
at once by a match, so no volunteer stays idle while a contact they may take waits. The
ticker (``tick``) handles what time alone changes: offer expiry, drop grace, strict rings.
The engine touches no database itself: volunteers come from a ``Directory``, the trail
and events go to a ``Sink`` (PostgreSQL + channel layer in production, lists in tests
and the simulator).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from routing import events as ev
from routing import selectors
from routing.clock import Clock, SystemClock
from routing.errors import FairUseRefused, TransitionRefused
from routing.fairuse import FairUse
from routing.matching import (
    Outbox,
    Plans,
    branch_groups,
    contact_match,
    match_contact,
    match_volunteer,
    matched,
    offered,
    volunteer_match,
)
from routing.policy import CHANNELS, NATIONAL, RoutingPolicy, Topology
from routing.selectors import DEFAULT_HANDLE_S, MAX_ESTIMATE_S, BranchSnapshot, QueueView
from routing.store.base import ContactState, RoutingStore, VolunteerState
from routing.trail import CollectingSink, TrailEntry, started_hour
from routing.volunteer_side import Directory, VolunteerInfo, VolunteerSide

__all__ = [
    "DEFAULT_HANDLE_S",
    "MAX_ESTIMATE_S",
    "BranchSnapshot",
    "ContactTicket",
    "Directory",
    "Engine",
    "QueueView",
    "Sink",
    "VolunteerInfo",
]


TOPOLOGY_MAX_AGE_S = 60.0
TOPOLOGY_MISS_RELOAD_S = 2.0  # bounds the reloads a stream of unknown names can cause
CONTACT_ID = re.compile(r"[0-9a-f]{32}")


class Sink(Protocol):
    async def deliver(
        self, events: list[ev.Event], trail: list[TrailEntry]
    ) -> Sequence[int] | None:
        """Deliver; may return the ids of the trail rows written, in order."""


@dataclass(frozen=True)
class ContactTicket:
    contact_id: str
    channel: str
    home_branch: str | None
    state: str


class Engine(VolunteerSide):
    def __init__(
        self,
        *,
        store: RoutingStore,
        clock: Clock | None = None,
        policy: RoutingPolicy | None = None,
        topology: Topology | None = None,
        topology_loader: Callable[[], Awaitable[Topology]] | None = None,
        directory: Directory | None = None,
        sink: Sink | None = None,
        fair_use: FairUse | None = None,
    ) -> None:
        if topology is None and topology_loader is None:
            raise ValueError("an engine needs a topology or a loader")
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.policy = policy or RoutingPolicy()
        self._topology = topology
        self._topology_loader = topology_loader
        self._topology_at = -1e18
        self._miss_reload_at = -1e18
        self.directory = directory
        self.sink: Sink = sink or CollectingSink()
        self.fair_use = fair_use
        self.plans = Plans()
        # volunteer id -> branch as last seen; the store checks it on every match
        self.branches: dict[str, str] = {}

    async def topology(self, *, knows: Callable[[Topology], bool] | None = None) -> Topology:
        """The topology; a loader's result is refreshed every minute (coordinator edits),
        and at once when it does not know what ``knows`` asks about: a branch or
        municipality added since it was loaded (such reloads at most every few seconds,
        however many unknown names arrive)."""
        now = self.clock.now()
        if self._topology_loader is None:
            assert self._topology is not None
            return self._topology
        missing = (
            self._topology is not None
            and knows is not None
            and not knows(self._topology)
            and now - self._miss_reload_at > TOPOLOGY_MISS_RELOAD_S
        )
        if self._topology is None or now - self._topology_at > TOPOLOGY_MAX_AGE_S or missing:
            self._topology = await self._topology_loader()
            self._topology_at = now
            if missing:
                self._miss_reload_at = now
        assert self._topology is not None
        return self._topology

    async def _deliver(self, out: Outbox) -> None:
        if out.events or out.trail:
            await self.sink.deliver(out.events, out.trail)

    # --- contacts -------------------------------------------------------------------------
    async def contact_enqueue(
        self,
        *,
        channel: str,
        home_branch: str | None,
        municipality_code: str | None = None,
        fair_use_key: str | None = None,
        contact_id: str | None = None,
    ) -> ContactTicket:
        """A new contact waits; offered at once if a volunteer who may take it is free.
        Raises ``FairUseRefused`` (after writing a ``refused`` trail row) past the limit.
        ``contact_id``: the caller's own id for it (32 lowercase hex digits, unused);
        a random one by default."""

        def known(topo: Topology) -> bool:
            return (home_branch is None or home_branch in topo.neighbours) and (
                not municipality_code or municipality_code in topo.municipalities
            )

        topo, now = await self.topology(knows=known), self.clock.now()
        if contact_id is not None and not (
            isinstance(contact_id, str) and CONTACT_ID.fullmatch(contact_id)
        ):
            raise TransitionRefused("bad_contact_id", "32 lowercase hex digits")
        if channel not in CHANNELS:
            raise TransitionRefused("unknown_channel", str(channel))
        if home_branch is not None and home_branch not in topo.neighbours:
            raise TransitionRefused("unknown_branch", str(home_branch))
        if municipality_code:
            muni_branch = topo.municipalities.get(municipality_code)
            if muni_branch is None:
                raise TransitionRefused("unknown_municipality", municipality_code)
            if home_branch is not None and home_branch != muni_branch:
                raise TransitionRefused("wrong_branch", f"{municipality_code} is in {muni_branch}")
            home_branch = muni_branch
        home = home_branch or NATIONAL
        if fair_use_key is not None and self.fair_use is not None:
            try:
                await self.fair_use.hit(fair_use_key)
            except FairUseRefused:
                entry = TrailEntry(
                    channel,
                    home,
                    municipality_code or "",
                    "",
                    started_hour(now),
                    0,
                    0,
                    "refused",
                    None,
                )
                await self._deliver(Outbox(trail=[entry]))
                raise
        contact_id = contact_id or uuid.uuid4().hex
        # enqueued and matched in one store step
        offer = await self.store.contact_enqueue(
            contact_id=contact_id,
            channel=channel,
            home=home,
            municipality=municipality_code or "",
            now=now,
            match=await contact_match(self, home, 0.0),
        )
        out = Outbox()
        out.add(
            "contact.queued",
            [f"contact.{contact_id}"],
            contact_id=contact_id,
            channel=channel,
            home_branch=home,
        )
        out.add("queue.changed", branch_groups(home), branch=home, channel=channel)
        if offer is not None:
            offered(offer, out)
        await self._deliver(out)
        state = "offered" if offer is not None else "waiting"
        return ContactTicket(contact_id, channel, home_branch, state)

    def _closed(self, c: ContactState, topo: Topology, outcome: str, out: Outbox) -> None:
        answered = outcome == "answered"
        distance = topo.distance(c.home, c.volunteer_branch) if c.volunteer_branch else None
        out.trail.append(
            TrailEntry(
                c.channel,
                c.home,
                c.municipality,
                c.volunteer_branch if answered else "",
                started_hour(c.enqueued_at),
                round(max(c.waited_s, 0) if c.waited_s >= 0 else c.ended_at - c.enqueued_at),
                round(c.talked_s),
                outcome,
                distance if answered else None,
            )
        )
        out.add(
            "contact.closed", [f"contact.{c.contact_id}"], contact_id=c.contact_id, outcome=outcome
        )

    async def contact_abandon(self, *, contact_id: str) -> ContactState:
        """The caller left. Waiting or offered: closed as abandoned. In conversation: the
        conversation ends (wrap-up for the volunteer)."""
        topo, now = await self.topology(), self.clock.now()
        c = await self.store.contact_abandon(contact_id=contact_id, now=now)
        out = Outbox()
        if c.state == "wrap_up":
            out.add(
                "contact.ended",
                [f"contact.{c.contact_id}", f"volunteer.{c.volunteer}"],
                contact_id=c.contact_id,
                volunteer_id=c.volunteer,
                by="caller",
            )
        else:
            self._closed(c, topo, "abandoned", out)
            out.add("queue.changed", branch_groups(c.home), branch=c.home, channel=c.channel)
            if c.offered_to:
                out.add(
                    "offer.withdrawn",
                    [f"volunteer.{c.offered_to}"],
                    contact_id=c.contact_id,
                    volunteer_id=c.offered_to,
                    reason="abandoned",
                )
                await match_volunteer(self, c.offered_to, out)
        await self._deliver(out)
        return c

    async def offer_accept(self, *, contact_id: str, volunteer_id: str) -> ContactState:
        c = await self.store.offer_accept(
            contact_id=contact_id, volunteer_id=volunteer_id, now=self.clock.now()
        )
        out = Outbox()
        out.add(
            "contact.assigned",
            [f"contact.{contact_id}", f"volunteer.{volunteer_id}"],
            contact_id=contact_id,
            volunteer_id=volunteer_id,
            channel=c.channel,
            volunteer_branch=c.volunteer_branch,
        )
        await self._deliver(out)
        return c

    async def offer_decline(self, *, contact_id: str, volunteer_id: str) -> None:
        """The contact goes to the next free volunteer; the decliner gets it back only if
        nobody else who may take it is free. A decline is not a missed offer."""
        await self.store.offer_decline(
            contact_id=contact_id, volunteer_id=volunteer_id, now=self.clock.now()
        )
        await self._after_release(contact_id, volunteer_id, "declined")

    async def offer_miss(self, *, contact_id: str, volunteer_id: str) -> None:
        """The volunteer cannot take the offer now (their phone is busy, unanswered, a
        voicemail): counted as a missed offer, as if it ran out, and the contact moves
        on at once. Refused unless the contact is offered to this volunteer."""
        from routing.ticker import after_missed

        missed = await self.store.offer_expire(
            contact_id=contact_id,
            now=self.clock.now(),
            missed_to_pause=self.policy.missed_offers_to_pause,
            volunteer_id=volunteer_id,
        )
        out = Outbox()
        await after_missed(self, [missed] if missed else [], "missed", out)
        await self._deliver(out)

    async def _after_release(self, contact_id: str, volunteer_id: str, reason: str) -> None:
        out = Outbox()
        out.add(
            "offer.withdrawn",
            [f"volunteer.{volunteer_id}"],
            contact_id=contact_id,
            volunteer_id=volunteer_id,
            reason=reason,
        )
        c = await self.store.contact_get(contact_id=contact_id)
        if c is not None and c.state == "waiting":
            out.add("queue.changed", branch_groups(c.home), branch=c.home, channel=c.channel)
            # to someone else if anyone is free; the decliner, now free, then takes the
            # first contact in their own order (this one only if nothing goes before it)
            await match_contact(
                self, contact_id, c.home, c.channel, c.score, out, avoid=[volunteer_id]
            )
        await match_volunteer(self, volunteer_id, out)
        await self._deliver(out)

    async def contact_end(self, *, contact_id: str, by: str) -> ContactState:
        """active → wrap_up; the volunteer keeps the capacity until wrap-up is done."""
        if by not in ev.ENUMS["by"]:
            raise TransitionRefused("not_active", f"unknown party {by!r}")
        c = await self.store.contact_end(contact_id=contact_id, now=self.clock.now())
        out = Outbox()
        out.add(
            "contact.ended",
            [f"contact.{contact_id}", f"volunteer.{c.volunteer}"],
            contact_id=contact_id,
            volunteer_id=c.volunteer,
            by=by,
        )
        await self._deliver(out)
        return c

    async def contact_wrapup_done(self, *, contact_id: str, volunteer_id: str) -> ContactState:
        """wrap_up → closed: trail row, live state deleted, the volunteer matched again.
        The final state carries the trail row's id when the sink reports it."""
        topo = await self.topology()
        # closed and the freed volunteer matched in one store step
        c, result = await self.store.contact_wrapup_done(
            contact_id=contact_id,
            volunteer_id=volunteer_id,
            now=self.clock.now(),
            match=await volunteer_match(self, self.branches.get(volunteer_id, "")),
        )
        out = Outbox()
        self._closed(c, topo, "answered", out)
        await matched(self, volunteer_id, result, out)
        written = await self.sink.deliver(out.events, out.trail)
        return replace(c, record_id=written[0]) if written else c

    async def contact_requeue(self, *, contact_id: str, reason: str = "requeued") -> ContactState:
        """offered/active → the head of its queue (the caller is told by ``contact.requeued``)."""
        c, released = await self.store.contact_requeue(contact_id=contact_id, now=self.clock.now())
        out = Outbox()
        self._requeued(c, reason, out)
        # to someone already free first; the released volunteer then takes the first
        # contact in their own order (an older re-queued contact goes before this one)
        avoid = [released] if released else []
        await match_contact(self, c.contact_id, c.home, c.channel, c.score, out, avoid=avoid)
        if released:
            await match_volunteer(self, released, out)
        await self._deliver(out)
        return c

    def _requeued(self, c: ContactState, reason: str, out: Outbox) -> None:
        out.add(
            "contact.requeued",
            [f"contact.{c.contact_id}"],
            contact_id=c.contact_id,
            channel=c.channel,
            home_branch=c.home,
            reason=reason,
        )
        out.add("queue.changed", branch_groups(c.home), branch=c.home, channel=c.channel)

    # --- time ---------------------------------------------------------------------------
    async def tick(self, *, now: float | None = None) -> dict[str, int]:
        """Offer expiry, drop grace, strict rings: see ``routing.ticker.tick_once``."""
        from routing.ticker import tick_once

        return await tick_once(self, now=now)

    # --- reads (routing.selectors) ---------------------------------------------------
    async def queue_position(self, *, contact_id: str) -> QueueView:
        return await selectors.queue_position(store=self.store, contact_id=contact_id)

    async def queue_positions(self, *, contact_ids: Sequence[str]) -> dict[str, QueueView | None]:
        """Many contacts' places in one batched read; None for a contact that is gone."""
        return await selectors.queue_positions(store=self.store, contact_ids=contact_ids)

    async def contact_get(self, *, contact_id: str) -> ContactState | None:
        """A contact's live state, or None once it has ended."""
        return await self.store.contact_get(contact_id=contact_id)

    async def volunteer_view(self, *, volunteer_id: str) -> VolunteerState | None:
        """A volunteer's live state (presence, load, contacts), or None if unknown."""
        return await self.store.volunteer_get(volunteer_id=volunteer_id)

    async def branch_snapshot(self, *, branch: str | None) -> BranchSnapshot:
        """One branch, or the whole line with ``branch=None``."""
        return await selectors.branch_snapshot(
            store=self.store,
            topology=await self.topology(knows=lambda t: branch is None or branch in t.neighbours),
            now=self.clock.now(),
            branch=branch,
        )
