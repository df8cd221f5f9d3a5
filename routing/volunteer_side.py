"""The volunteer side of the engine: registration, presence, dropped consoles.

A mixin of ``routing.engine.Engine`` (kept apart to keep each module readable); it uses
the engine's store, clock, policy, topology, directory and outbox delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from routing.errors import TransitionRefused
from routing.matching import (
    Outbox,
    branch_groups,
    match_volunteer,
    match_waiting,
    matched,
    volunteer_match,
)
from routing.policy import CHANNELS, PRESENCES, strict_branches

if TYPE_CHECKING:
    from routing.clock import Clock
    from routing.engine import Engine
    from routing.policy import RoutingPolicy, Topology
    from routing.store.base import RoutingStore


@dataclass(frozen=True)
class VolunteerInfo:
    branch: str
    channels: tuple[str, ...]
    chat_limit: int


class Directory(Protocol):
    async def volunteer(self, volunteer_id: str) -> VolunteerInfo | None: ...


class VolunteerSide:
    store: RoutingStore
    clock: Clock
    policy: RoutingPolicy
    directory: Directory | None
    branches: dict[str, str]
    topology: Callable[..., Awaitable[Topology]]
    _deliver: Callable[[Outbox], Awaitable[None]]

    @property
    def _engine(self) -> Engine:
        return cast("Engine", self)

    async def volunteer_register(
        self, *, volunteer_id: str, branch: str, channels: Sequence[str], chat_limit: int
    ) -> None:
        """Record a volunteer's branch, channels and chat limit (validated)."""
        topo = await self.topology(knows=lambda topo: branch in topo.neighbours)
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
            match=await volunteer_match(self._engine, self.branches.get(volunteer_id, "")),
        )
        out = Outbox()
        self._presence_events(volunteer_id, change.branch, change.changed, out)
        await matched(self._engine, volunteer_id, change.matched, out)
        if (
            state != "available"
            and change.changed
            and change.branch in strict_branches(await self.topology(), self.policy)
        ):
            # the last one on duty of a strict branch left: its home-only ring is skipped
            from routing.ticker import sweep

            await sweep(self._engine, out)
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
        await match_waiting(self._engine, withdrawn, out)
        await self._deliver(out)

    async def volunteer_reconnected(self, *, volunteer_id: str) -> bool:
        """Back within the grace: contacts stay, matching resumes. False if too late (the
        volunteer was set off duty and must go available again)."""
        back = await self.store.volunteer_reconnect(volunteer_id=volunteer_id, now=self.clock.now())
        if back:
            out = Outbox()
            await match_volunteer(self._engine, volunteer_id, out)
            await self._deliver(out)
        return back
