"""The public routing API: one async service per transition, keyword-only arguments.

Views, consumers, webhooks and tasks call these and nothing else. Each one applies one
atomic store change, runs matching at once when capacity or a contact was added, and
delivers events after the state change (after commit when a trail row is written).
Refusals raise ``routing.errors.TransitionRefused`` and change nothing.

``get_engine()`` returns the engine for the running event loop, built from settings
(``ROUTING_STORE`` memory|redis, ``ROUTING``, ``FAIR_USE_*``); tests and the simulator
build their own with ``build_engine`` or ``Engine(...)`` and may install it with
``set_engine``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async

from routing.clock import Clock
from routing.engine import (
    BranchSnapshot,
    ContactTicket,
    Engine,
    QueueView,
    Sink,
    VolunteerInfo,
)
from routing.fairuse import FairUse
from routing.policy import CHANNELS, RoutingPolicy, Topology
from routing.store.base import ContactState, RoutingStore, VolunteerState
from routing.store.memory import MemoryStore

__all__ = [
    "BranchSnapshot",
    "ContactTicket",
    "QueueView",
    "branch_snapshot",
    "build_engine",
    "contact_abandon",
    "contact_end",
    "contact_enqueue",
    "contact_get",
    "contact_requeue",
    "contact_wrapup_done",
    "get_engine",
    "national_snapshot",
    "offer_accept",
    "offer_decline",
    "offer_miss",
    "queue_position",
    "queue_positions",
    "set_engine",
    "tick",
    "volunteer_disconnected",
    "volunteer_presence_set",
    "volunteer_reconnected",
    "volunteer_view",
]

_memory_store: MemoryStore | None = None
_engines: dict[int, Engine] = {}
_override: Engine | None = None


class DjangoDirectory:
    """Volunteers as recorded in PostgreSQL: branch, channels and chat limit."""

    async def volunteer(self, volunteer_id: str) -> VolunteerInfo | None:
        return await sync_to_async(self._lookup)(volunteer_id)

    @staticmethod
    def _lookup(volunteer_id: str) -> VolunteerInfo | None:
        from volunteers.models import Volunteer

        if not str(volunteer_id).isdigit():
            return None
        row = (
            Volunteer.objects.filter(pk=int(volunteer_id), is_active=True)
            .select_related("branch")
            .first()
        )
        if row is None:
            return None
        channels = tuple(ch for ch in row.channels if ch in CHANNELS)
        return VolunteerInfo(row.branch.slug, channels, int(row.chat_limit))


async def _topology_from_db() -> Topology:
    return await sync_to_async(Topology.from_db)()


def memory_store() -> MemoryStore:
    """The one in-process store (shared by every event loop of this process)."""
    global _memory_store
    if _memory_store is None:
        _memory_store = MemoryStore()
    return _memory_store


def build_engine(
    *,
    store: RoutingStore | None = None,
    clock: Clock | None = None,
    policy: RoutingPolicy | None = None,
    topology: Topology | None = None,
    sink: Sink | None = None,
    directory: Any = "db",
    fair_use: bool = True,
) -> Engine:
    """An engine from settings, with any part replaced (tests, simulator)."""
    from django.conf import settings

    from routing.trail import DjangoSink

    if store is None:
        if settings.ROUTING_STORE == "redis":
            from routing.store.redis import RedisStore

            store = RedisStore.from_url(settings.REDIS_URL, prefix=settings.ROUTING_REDIS_PREFIX)
        else:
            store = memory_store()
    engine = Engine(
        store=store,
        clock=clock,
        policy=policy or RoutingPolicy.from_settings(),
        topology=topology,
        topology_loader=None if topology is not None else _topology_from_db,
        directory=DjangoDirectory() if directory == "db" else directory,
        sink=sink or DjangoSink(),
    )
    if fair_use:
        engine.fair_use = FairUse.from_settings(store, engine.clock)
    return engine


def get_engine() -> Engine:
    """The configured engine for the running event loop (Redis clients are per loop)."""
    if _override is not None:
        return _override
    key = id(asyncio.get_running_loop())
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = build_engine()
    return engine


def set_engine(engine: Engine | None) -> None:
    """Install an engine for every caller (tests, the simulator); None to go back."""
    global _override
    _override = engine


def _vid(volunteer_id: int | str) -> str:
    return str(volunteer_id)


async def contact_enqueue(
    *,
    channel: str,
    home_branch: str | None,
    municipality_code: str | None = None,
    fair_use_key: str | None = None,
    contact_id: str | None = None,
) -> ContactTicket:
    return await get_engine().contact_enqueue(
        channel=channel,
        home_branch=home_branch,
        municipality_code=municipality_code,
        fair_use_key=fair_use_key,
        contact_id=contact_id,
    )


async def contact_abandon(*, contact_id: str) -> ContactState:
    return await get_engine().contact_abandon(contact_id=contact_id)


async def offer_accept(*, contact_id: str, volunteer_id: int | str) -> ContactState:
    return await get_engine().offer_accept(contact_id=contact_id, volunteer_id=_vid(volunteer_id))


async def offer_decline(*, contact_id: str, volunteer_id: int | str) -> None:
    await get_engine().offer_decline(contact_id=contact_id, volunteer_id=_vid(volunteer_id))


async def offer_miss(*, contact_id: str, volunteer_id: int | str) -> None:
    await get_engine().offer_miss(contact_id=contact_id, volunteer_id=_vid(volunteer_id))


async def contact_end(*, contact_id: str, by: str) -> ContactState:
    return await get_engine().contact_end(contact_id=contact_id, by=by)


async def contact_wrapup_done(*, contact_id: str, volunteer_id: int | str) -> ContactState:
    """The final state; its ``record_id`` is the trail row written (for the registration)."""
    return await get_engine().contact_wrapup_done(
        contact_id=contact_id, volunteer_id=_vid(volunteer_id)
    )


async def contact_requeue(*, contact_id: str) -> ContactState:
    return await get_engine().contact_requeue(contact_id=contact_id)


async def volunteer_presence_set(*, volunteer_id: int | str, channel: str, state: str) -> None:
    await get_engine().volunteer_presence_set(
        volunteer_id=_vid(volunteer_id), channel=channel, state=state
    )


async def volunteer_disconnected(*, volunteer_id: int | str) -> None:
    await get_engine().volunteer_disconnected(volunteer_id=_vid(volunteer_id))


async def volunteer_reconnected(*, volunteer_id: int | str) -> bool:
    return await get_engine().volunteer_reconnected(volunteer_id=_vid(volunteer_id))


async def queue_position(*, contact_id: str) -> QueueView:
    return await get_engine().queue_position(contact_id=contact_id)


async def queue_positions(*, contact_ids: Sequence[str]) -> dict[str, QueueView | None]:
    return await get_engine().queue_positions(contact_ids=contact_ids)


async def contact_get(*, contact_id: str) -> ContactState | None:
    return await get_engine().contact_get(contact_id=contact_id)


async def volunteer_view(*, volunteer_id: int | str) -> VolunteerState | None:
    return await get_engine().volunteer_view(volunteer_id=_vid(volunteer_id))


async def branch_snapshot(*, branch: str) -> BranchSnapshot:
    return await get_engine().branch_snapshot(branch=branch)


async def national_snapshot() -> BranchSnapshot:
    return await get_engine().branch_snapshot(branch=None)


async def tick(*, now: float | None = None) -> dict[str, int]:
    return await get_engine().tick(now=now)
