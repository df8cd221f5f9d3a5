"""The routing engine: validates, applies one atomic store change, runs matching, emits.

Matching is event-driven: every change that adds a contact or frees capacity is followed
at once by a match, so no volunteer stays idle while a contact they may take waits. The
ticker (``tick``) handles what time alone changes: offer expiry, drop grace, strict rings.
The engine touches no database itself: volunteers come from a ``Directory``, the trail
and events go to a ``Sink`` (PostgreSQL + channel layer in production, lists in tests
and the simulator).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
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
    match_waiting,
    matched,
    offered,
    volunteer_match,
)
from routing.policy import CHANNELS, NATIONAL, PRESENCES, RoutingPolicy, Topology, strict_branches
from routing.selectors import DEFAULT_HANDLE_S, MAX_ESTIMATE_S, BranchSnapshot, QueueView
from routing.store.base import ContactState, RoutingStore
from routing.trail import CollectingSink, TrailEntry, started_hour

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


@dataclass(frozen=True)
class VolunteerInfo:
    branch: str
    channels: tuple[str, ...]
    chat_limit: int


class Directory(Protocol):
    async def volunteer(self, volunteer_id: str) -> VolunteerInfo | None: ...


class Sink(Protocol):
    async def deliver(self, events: list[ev.Event], trail: list[TrailEntry]) -> None: ...


@dataclass(frozen=True)
class ContactTicket:
    contact_id: str
    channel: str
    home_branch: str | None
    state: str


class Engine:
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
        self.directory = directory
        self.sink: Sink = sink or CollectingSink()
        self.fair_use = fair_use
        self.plans = Plans()
        # volunteer id -> branch as last seen; the store checks it on every match
        self.branches: dict[str, str] = {}

    async def topology(self) -> Topology:
        """The topology; a loader's result is refreshed every minute (coordinator edits)."""
        now = self.clock.now()
        if self._topology_loader is not None and (
            self._topology is None or now - self._topology_at > 60
        ):
            self._topology = await self._topology_loader()
            self._topology_at = now
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
    ) -> ContactTicket:
        """A new contact waits; offered at once if a volunteer who may take it is free.
        Raises ``FairUseRefused`` (after writing a ``refused`` trail row) past the limit."""
        topo, now = await self.topology(), self.clock.now()
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
        contact_id = uuid.uuid4().hex
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
        """wrap_up → closed: trail row, live state deleted, the volunteer matched again."""
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
        await self._deliver(out)
        return c

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

    # --- volunteers -------------------------------------------------------------------
    async def volunteer_register(
        self, *, volunteer_id: str, branch: str, channels: Sequence[str], chat_limit: int
    ) -> None:
        """Record a volunteer's branch, channels and chat limit (validated)."""
        topo = await self.topology()
        if branch not in topo.neighbours:
            raise TransitionRefused("unknown_branch", str(branch))
        if any(ch not in CHANNELS for ch in channels):
            raise TransitionRefused("unknown_channel", ",".join(map(str, channels)))
        if (
            isinstance(chat_limit, bool)
            or not isinstance(chat_limit, int)
            or not (1 <= chat_limit <= 3)
        ):
            raise TransitionRefused("bad_capacity", repr(chat_limit))
        await self.store.volunteer_upsert(
            volunteer_id=volunteer_id,
            branch=branch,
            channels=list(channels),
            chat_limit=chat_limit,
            now=self.clock.now(),
        )
        self.branches[volunteer_id] = branch

    async def _refresh_registration(self, volunteer_id: str) -> None:
        if self.directory is None:
            return
        info = await self.directory.volunteer(volunteer_id)
        if info is None:
            raise TransitionRefused("unknown_volunteer", volunteer_id)
        await self.volunteer_register(
            volunteer_id=volunteer_id,
            branch=info.branch,
            channels=info.channels,
            chat_limit=info.chat_limit,
        )

    async def volunteer_presence_set(self, *, volunteer_id: str, channel: str, state: str) -> None:
        """Set presence on one channel (or ``"all"`` the volunteer takes); going available
        runs matching at once. Registration is refreshed from the directory first, so a
        volunteer's branch and limits always come from the record, never the caller."""
        if state not in PRESENCES:
            raise TransitionRefused("unknown_presence", str(state))
        if channel != "all" and channel not in CHANNELS:
            raise TransitionRefused("unknown_channel", str(channel))
        await self._refresh_registration(volunteer_id)
        # presence set and the volunteer matched in one store step; also when pausing one
        # channel: the refreshed registration may have raised the chat limit, and free
        # capacity must not wait for the next tick
        change = await self.store.presence_set(
            volunteer_id=volunteer_id,
            channels=None if channel == "all" else [channel],
            state=state,
            now=self.clock.now(),
            match=await volunteer_match(self, self.branches.get(volunteer_id, "")),
        )
        out = Outbox()
        self._presence_events(volunteer_id, change.branch, change.changed, out)
        await matched(self, volunteer_id, change.matched, out)
        if (
            state != "available"
            and change.changed
            and change.branch in strict_branches(await self.topology(), self.policy)
        ):
            # the last one on duty of a strict branch left: its home-only ring is skipped
            from routing.ticker import sweep

            await sweep(self, out)
        await self._deliver(out)

    def _presence_events(
        self, volunteer_id: str, branch: str, changed: dict[str, str], out: Outbox
    ) -> None:
        for ch, new in sorted(changed.items()):
            out.add(
                "presence.changed",
                [f"volunteer.{volunteer_id}", *branch_groups(branch)],
                volunteer_id=volunteer_id,
                branch=branch,
                channel=ch,
                state=new,
            )

    async def volunteer_disconnected(self, *, volunteer_id: str) -> None:
        """The console lost its connection: open offers move on now; contacts in progress
        wait ``drop_grace_s`` for a reconnect (then the ticker re-queues them)."""
        withdrawn = await self.store.volunteer_disconnect(
            volunteer_id=volunteer_id, now=self.clock.now(), grace_s=self.policy.drop_grace_s
        )
        out = Outbox()
        for cid in withdrawn:
            out.add(
                "offer.withdrawn",
                [f"volunteer.{volunteer_id}"],
                contact_id=cid,
                volunteer_id=volunteer_id,
                reason="disconnected",
            )
        await match_waiting(self, withdrawn, out)
        await self._deliver(out)

    async def volunteer_reconnected(self, *, volunteer_id: str) -> bool:
        """Back within the grace: contacts stay, matching resumes. False if too late (the
        volunteer was set off duty and must go available again)."""
        back = await self.store.volunteer_reconnect(volunteer_id=volunteer_id, now=self.clock.now())
        if back:
            out = Outbox()
            await match_volunteer(self, volunteer_id, out)
            await self._deliver(out)
        return back

    # --- time ---------------------------------------------------------------------------
    async def tick(self, *, now: float | None = None) -> dict[str, int]:
        """Offer expiry, drop grace, strict rings: see ``routing.ticker.tick_once``."""
        from routing.ticker import tick_once

        return await tick_once(self, now=now)

    # --- reads (routing.selectors) ---------------------------------------------------
    async def queue_position(self, *, contact_id: str) -> QueueView:
        return await selectors.queue_position(store=self.store, contact_id=contact_id)

    async def branch_snapshot(self, *, branch: str | None) -> BranchSnapshot:
        """One branch, or the whole line with ``branch=None``."""
        return await selectors.branch_snapshot(
            store=self.store, topology=await self.topology(), now=self.clock.now(), branch=branch
        )
