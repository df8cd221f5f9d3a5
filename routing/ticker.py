"""Time-based routing steps, and the asyncio task that runs them in every server process.

Every step is an atomic store change that is a no-op when already done (an offer already
expired, a drop already handled), so any number of processes may tick at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from routing.matching import Outbox, match_contact, match_volunteer, match_waiting
from routing.store.base import ExpiredOffer

if TYPE_CHECKING:
    from routing.engine import Engine

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 200


async def after_missed(
    engine: Engine, missed: Sequence[ExpiredOffer], reason: str, out: Outbox
) -> None:
    """After offers ran out or were missed: tell the volunteers (and who got paused), offer
    the contacts, first come first served, to volunteers who were free already; then each
    volunteer who missed takes the first contact in their own order."""
    missers: list[str] = []
    for m in missed:
        out.add(
            "offer.withdrawn",
            [f"volunteer.{m.volunteer_id}"],
            contact_id=m.contact_id,
            volunteer_id=m.volunteer_id,
            reason=reason,
        )
        if m.paused:
            vol = await engine.store.volunteer_get(volunteer_id=m.volunteer_id)
            if vol is not None:
                paused = {ch: "paused" for ch, p in vol.presence.items() if p == "paused"}
                engine._presence_events(vol.volunteer_id, vol.branch, paused, out)
        if m.volunteer_id not in missers:
            missers.append(m.volunteer_id)
    await match_waiting(engine, [m.contact_id for m in missed], out, avoid=missers)
    for vid in missers:
        await match_volunteer(engine, vid, out)


async def tick_once(engine: Engine, *, now: float | None = None) -> dict[str, int]:
    """Expire due offers (counting misses, pausing), re-queue the contacts of volunteers
    whose drop grace ran out, then sweep the queue heads so strict rings that opened are
    served. ``now`` defaults to the engine's clock (the clock itself is not moved)."""

    store, policy = engine.store, engine.policy
    now = engine.clock.now() if now is None else now
    topo = await engine.topology()
    report = {"expired": 0, "dropped": 0, "swept": 0}
    out = Outbox()
    expired_all = []
    for cid in await store.due_offers(now=now):
        expired = await store.offer_expire(
            contact_id=cid, now=now, missed_to_pause=policy.missed_offers_to_pause
        )
        if expired is not None:
            expired_all.append(expired)
    report["expired"] = len(expired_all)
    await after_missed(engine, expired_all, "expired", out)
    for vid in await store.due_drops(now=now):
        dropped = await store.drop_expire(volunteer_id=vid, now=now)
        if dropped is None:
            continue
        report["dropped"] += 1
        vol = await store.volunteer_get(volunteer_id=vid)
        if vol is not None:
            engine._presence_events(vid, vol.branch, dict.fromkeys(vol.channels, "off_duty"), out)
        for closed in dropped.closed:
            engine._closed(closed, topo, "answered", out)
        for cid in dropped.requeued:
            c = await store.contact_get(contact_id=cid)
            if c is not None:
                engine._requeued(c, "dropped", out)
        await match_waiting(engine, dropped.requeued, out)
    report["swept"] = await sweep(engine, out)
    if out.events or out.trail:
        await engine.sink.deliver(out.events, out.trail)
    return report


async def sweep(engine: Engine, out: Outbox) -> int:
    """Offer queue heads, oldest first, until no head can be placed."""
    swept = 0
    tried: set[str] = set()
    while swept < SWEEP_LIMIT:
        heads = [h for h in await engine.store.queue_heads() if h.contact_id not in tried]
        if not heads or not await engine.store.free_volunteers():
            break
        progress = False
        for head in sorted(heads, key=lambda h: (h.score, h.contact_id)):
            tried.add(head.contact_id)
            if await match_contact(
                engine,
                head.contact_id,
                head.branch,
                head.channel,
                head.score,
                out,
            ):
                swept += 1
                progress = True
                break
        if not progress:
            break
    return swept


_started: dict[int, asyncio.Task[None]] = {}


async def run_ticker(interval: float | None = None) -> None:
    """Tick forever with the configured engine; errors are logged, never fatal."""
    from django.conf import settings

    from routing.services import get_engine

    interval = float(interval or settings.ROUTING["TICK_S"])
    while True:
        try:
            await get_engine().tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("routing tick failed")
        await asyncio.sleep(interval)


def ensure_ticker_started() -> asyncio.Task[None]:
    """Start the ticker once per event loop; call it from the running loop (e.g. the
    first ASGI ``lifespan``/connection). Returns the task."""
    loop = asyncio.get_running_loop()
    task = _started.get(id(loop))
    if task is None or task.done():
        task = loop.create_task(run_ticker(), name="routing-ticker")
        _started[id(loop)] = task
    return task
