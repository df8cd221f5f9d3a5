"""The store interface: every method is ONE atomic state change (or one consistent read).

Policy is computed in Python (``routing.policy``) and passed in; the store applies it
atomically: a Lua script on Redis, a critical section in process. A refused change raises
``TransitionRefused`` and leaves the store exactly as it was.

Capacity: a volunteer's *load* per channel counts the contacts offered to, active with or
in wrap-up with them. Free for phone: available for phone, connected, no load at all.
Free for chat: available for chat, connected, no phone load, chat load below the limit.
Free volunteers are ranked by ``(load, idle_since)``: least loaded, then longest idle.
``idle_since`` is reset when a volunteer becomes available, gets an offer, or finishes
their last contact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.policy import QueueSpec

CONTACT_STATES = ("waiting", "offered", "active", "wrap_up", "closed", "abandoned")
HANDLE_SAMPLES = 50  # rolling window of handle times per channel for the wait estimate


@dataclass(frozen=True)
class ContactState:
    contact_id: str
    state: str
    channel: str
    home: str
    municipality: str = ""
    enqueued_at: float = 0.0
    score: float = 0.0
    offered_to: str = ""
    offer_expires_at: float = 0.0
    volunteer: str = ""
    volunteer_branch: str = ""
    answered_at: float = 0.0
    ended_at: float = 0.0
    talked_s: float = 0.0
    waited_s: float = -1.0  # until the first answer
    declined_by: str = ""
    requeues: int = 0
    record_id: int | None = None  # the trail row, once written (not live state)

    @classmethod
    def from_fields(cls, contact_id: str, raw: dict[str, str]) -> ContactState:
        floats = (
            "enqueued_at",
            "score",
            "offer_expires_at",
            "answered_at",
            "ended_at",
            "talked_s",
            "waited_s",
        )
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in ("contact_id", "record_id") or name not in raw:
                continue
            value: Any = raw[name]
            if name in floats:
                value = float(value or 0)
            elif name == "requeues":
                value = int(value or 0)
            values[name] = value
        return cls(contact_id=contact_id, **values)


@dataclass(frozen=True)
class VolunteerState:
    volunteer_id: str
    branch: str
    channels: tuple[str, ...]
    chat_limit: int
    presence: dict[str, str]
    load_phone: int = 0
    load_chat: int = 0
    missed: int = 0
    idle_since: float = 0.0
    disconnected_at: float = 0.0
    contacts: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Offer:
    contact_id: str
    volunteer_id: str
    channel: str
    home: str
    volunteer_branch: str
    expires_at: float
    requeued: bool = False


@dataclass(frozen=True)
class ExpiredOffer:
    contact_id: str
    volunteer_id: str
    channel: str
    paused: bool  # the miss paused the volunteer


@dataclass(frozen=True)
class DropResult:
    volunteer_id: str
    requeued: tuple[str, ...]
    closed: tuple[ContactState, ...]  # contacts the volunteer left in wrap-up


@dataclass(frozen=True)
class QueueFacts:
    state: str
    channel: str
    ahead: int
    capacity: int  # contacts the volunteers on duty for the channel can hold at once
    mean_handle_s: float | None
    enqueued_at: float


@dataclass(frozen=True)
class QueueHead:
    branch: str
    channel: str
    contact_id: str
    score: float


@dataclass(frozen=True)
class ContactMatch:
    """How to match a contact in the step that changed it (see ``match_contact``)."""

    tiers: Sequence[Sequence[str]]
    offer_timeout_s: float
    unstaffed_tiers: Sequence[Sequence[str]] | None = None


@dataclass(frozen=True)
class VolunteerMatch:
    """How to fill a volunteer's free capacity in the step that changed them (see
    ``match_volunteer``). ``branch``: the branch ``queues`` were computed for; the store
    matches only if that is still the volunteer's branch ('' = unknown: it only reports
    the branch)."""

    branch: str
    queues: Sequence[QueueSpec]
    cap_cutoff: float
    offer_timeout_s: float


@dataclass(frozen=True)
class Matched:
    """What a volunteer match did: the volunteer's branch in the store, the offers made,
    and ``stale`` when the queues were computed for another branch (nothing matched)."""

    branch: str
    offers: tuple[Offer, ...] = ()
    stale: bool = False


@dataclass(frozen=True)
class PresenceChange:
    changed: dict[str, str]  # channel -> new state, only those that changed
    branch: str
    matched: Matched | None  # None when no match was asked for


@dataclass(frozen=True)
class BranchCounts:
    waiting: int
    oldest_enqueued_at: float | None
    on_duty: int
    busy: int
    paused: int


class RoutingStore(ABC):
    """Live routing state. Presence lives here, never in channel-layer groups."""

    # --- volunteers -----------------------------------------------------------------------
    @abstractmethod
    async def volunteer_upsert(
        self,
        *,
        volunteer_id: str,
        branch: str,
        channels: Sequence[str],
        chat_limit: int,
        now: float,
    ) -> None:
        """Register (or refresh) a volunteer's branch, channels and chat limit."""

    @abstractmethod
    async def presence_set(
        self,
        *,
        volunteer_id: str,
        channels: Sequence[str] | None,
        state: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> PresenceChange:
        """Set presence on the given channels (None: every channel the volunteer takes),
        then, with ``match``, fill their free capacity in the same step."""

    @abstractmethod
    async def volunteer_disconnect(
        self, *, volunteer_id: str, now: float, grace_s: float
    ) -> list[str]:
        """Mark a drop: open offers are withdrawn (their contact ids returned, contacts back
        to waiting), active contacts wait ``grace_s`` for a reconnect."""

    @abstractmethod
    async def volunteer_reconnect(self, *, volunteer_id: str, now: float) -> bool:
        """Cancel a pending drop; False if the volunteer was not disconnected."""

    @abstractmethod
    async def drop_expire(self, *, volunteer_id: str, now: float) -> DropResult | None:
        """After the grace: re-queue the volunteer's contacts at the head, close wrap-ups,
        set the volunteer off duty. None if not (or no longer) due."""

    # --- contacts -------------------------------------------------------------------------
    @abstractmethod
    async def contact_enqueue(
        self,
        *,
        contact_id: str,
        channel: str,
        home: str,
        municipality: str,
        now: float,
        match: ContactMatch | None = None,
    ) -> Offer | None:
        """A new waiting contact; with ``match``, offered in the same step if a volunteer
        who may take it is free (the offer is returned)."""

    @abstractmethod
    async def match_contact(
        self,
        *,
        contact_id: str,
        tiers: Sequence[Sequence[str]],
        now: float,
        offer_timeout_s: float,
        avoid: Sequence[str] = (),
        unstaffed_tiers: Sequence[Sequence[str]] | None = None,
    ) -> Offer | None:
        """Offer a waiting contact to the best free volunteer of the first non-empty tier
        (the volunteer who last declined or missed it only if nobody else is free), never
        to one in ``avoid`` (volunteers just freed by a decline or a miss, who then choose
        by their own order with ``match_volunteer``). ``unstaffed_tiers``: the tiers to
        use instead when nobody of the contact's home branch is available for its channel
        at the moment of the decision (strict locality). A tier ``[ANY]`` is every
        branch (only ever the last tier, after the others came up empty)."""

    @abstractmethod
    async def match_volunteer(
        self, *, volunteer_id: str, match: VolunteerMatch, now: float
    ) -> Matched | None:
        """Fill a volunteer's free capacity, one offer at a time: each the oldest contact
        with score <= cap_cutoff in any allowed queue, else the oldest of the first tier
        with an eligible contact. A queue's cutoff is ``unstaffed_cutoff`` when that is set
        and nobody of its branch is available for its channel at that moment. A queue of
        branch ``ANY`` holds every waiting contact of its channel; it has no cutoff and
        comes only with uncut queues of its channel. None for an unknown volunteer."""

    @abstractmethod
    async def offer_accept(self, *, contact_id: str, volunteer_id: str, now: float) -> ContactState:
        """offered → active."""

    @abstractmethod
    async def offer_decline(self, *, contact_id: str, volunteer_id: str, now: float) -> None:
        """offered → waiting (keeps its place), remembers the decliner; ends the
        volunteer's streak of missed offers (a decline is an answer)."""

    @abstractmethod
    async def offer_expire(
        self, *, contact_id: str, now: float, missed_to_pause: int, volunteer_id: str = ""
    ) -> ExpiredOffer | None:
        """offered past its deadline → waiting; counts a miss. None if not due. With
        ``volunteer_id``: that volunteer missed it now, whatever the deadline (busy, no
        answer); refused unless the contact is offered to them."""

    @abstractmethod
    async def contact_end(self, *, contact_id: str, now: float) -> ContactState:
        """active → wrap_up."""

    @abstractmethod
    async def contact_wrapup_done(
        self,
        *,
        contact_id: str,
        volunteer_id: str,
        now: float,
        match: VolunteerMatch | None = None,
    ) -> tuple[ContactState, Matched | None]:
        """wrap_up → closed: the live state is deleted; returns the final state and, with
        ``match``, what filling the volunteer's freed capacity in the same step did."""

    @abstractmethod
    async def contact_abandon(self, *, contact_id: str, now: float) -> ContactState:
        """The caller left: waiting/offered → abandoned (deleted), active → wrap_up."""

    @abstractmethod
    async def contact_requeue(self, *, contact_id: str, now: float) -> tuple[ContactState, str]:
        """offered/active → waiting at the head of its queue; returns the new state and the
        volunteer released."""

    # --- time-based and reads -------------------------------------------------------------
    @abstractmethod
    async def due_offers(self, *, now: float) -> list[str]: ...

    @abstractmethod
    async def due_drops(self, *, now: float) -> list[str]: ...

    @abstractmethod
    async def queue_heads(self) -> list[QueueHead]:
        """The first waiting contact of every non-empty queue."""

    @abstractmethod
    async def free_volunteers(self) -> list[str]:
        """Volunteers with free capacity on some channel (for the ticker's sweep)."""

    @abstractmethod
    async def contact_get(self, *, contact_id: str) -> ContactState | None: ...

    @abstractmethod
    async def volunteer_get(self, *, volunteer_id: str) -> VolunteerState | None: ...

    @abstractmethod
    async def staffed(self, *, branches: Sequence[str], channel: str) -> dict[str, bool]:
        """For each branch: is anyone available for the channel?"""

    @abstractmethod
    async def queue_view(self, *, contact_id: str) -> QueueFacts | None: ...

    async def queue_views(self, *, contact_ids: Sequence[str]) -> dict[str, QueueFacts | None]:
        """``queue_view`` for many contacts (a store may batch the round trips)."""
        return {cid: await self.queue_view(contact_id=cid) for cid in contact_ids}

    @abstractmethod
    async def branch_counts(self, *, branch: str | None) -> BranchCounts:
        """Counts for one branch, or for the whole line when ``branch`` is None."""

    # --- fair use ---------------------------------------------------------------------------
    @abstractmethod
    async def fair_use_key(self, *, key_id: str, ttl_s: int) -> bytes:
        """The secret of the day ``key_id``: created at random on first use, expiring."""

    @abstractmethod
    async def fair_use_hit(self, *, counter_id: str, limit: int, ttl_s: int) -> int:
        """Count one contact unless ``limit`` is reached; returns the new count, or -1 when
        refused (nothing counted)."""

    # --- maintenance ------------------------------------------------------------------------
    @abstractmethod
    async def dump(self) -> dict[str, Any]:
        """The whole state, canonical: two dumps are equal iff the states are."""

    @abstractmethod
    async def clear(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
