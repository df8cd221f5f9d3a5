"""Live queue places for waiting callers, with one channel-layer member per process.

Putting every waiting caller in the ``national`` group would make each queue change a
``group_send`` to thousands of channels. Instead each server process listens once (its
own channel in ``national``), and on ``queue.changed`` reads the places of all its
*local* waiting callers in batched reads (``engine.queue_positions``: one script per
500 callers), debounced to once per ``CHAT_QUEUE_DEBOUNCE_S``; it also re-reads at
least every ``CHAT_QUEUE_REFRESH_S`` so a drifting estimate is caught. A caller is sent
a ``queue`` frame only when its place or estimate changed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from chat import engine

logger = logging.getLogger(__name__)

#: Callers per batched read (``engine.queue_positions`` runs one script per 500).
REFRESH_CHUNK = 500


class Watcher(Protocol):
    async def queue_place_changed(self, place: engine.Place | None) -> None: ...


class _QueueWatch:
    def __init__(self) -> None:
        self.callers: dict[Watcher, str] = {}  # consumer → contact id
        self.task: asyncio.Task[None] | None = None
        self.listener: asyncio.Task[None] | None = None
        self.dirty = asyncio.Event()

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(
                self._refresher(), name="chat-queue-refresh"
            )
        if self.listener is None or self.listener.done():
            self.listener = asyncio.get_running_loop().create_task(
                self._listen(), name="chat-queue-listen"
            )

    async def _listen(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel("chat-queue.")
        await layer.group_add("national", channel)
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("event") in ("queue.changed", "presence.changed"):
                    self.dirty.set()
        finally:
            await layer.group_discard("national", channel)

    async def refresh_all(self) -> None:
        """One batched read of every local waiting caller's place; each consumer sends
        only a change."""
        if not self.callers:
            return
        watched = list(self.callers.items())
        # A chunk at a time: one read, then its answers, then the next. What a chunk
        # creates is garbage before the next read, instead of ten thousand answers living
        # through several collections into the oldest generation (each full collection
        # of a process holding 10,000 sockets stops it for about a second).
        for start in range(0, len(watched), REFRESH_CHUNK):
            chunk = watched[start : start + REFRESH_CHUNK]
            places = await engine.queue_positions(contact_ids=[cid for _, cid in chunk])
            for caller, cid in chunk:
                if self.callers.get(caller) != cid:
                    continue  # left the queue (or re-registered) during the read
                try:
                    await caller.queue_place_changed(places.get(cid))
                except Exception:
                    logger.exception("queue refresh failed")
            del places

    async def _refresher(self) -> None:
        debounce = float(getattr(settings, "CHAT_QUEUE_DEBOUNCE_S", 1.0))
        period = float(getattr(settings, "CHAT_QUEUE_REFRESH_S", 30.0))
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout=period)
            except TimeoutError:
                pass
            self.dirty.clear()
            try:
                await self.refresh_all()
            except Exception:
                logger.exception("queue refresh failed")
            await asyncio.sleep(debounce)


_watches: dict[int, _QueueWatch] = {}


def watch_queue(caller: Any, contact_id: str | None) -> None:
    """Register (``contact_id`` set) or forget (None) a waiting caller's consumer."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(id(loop))
    if watch is None:
        watch = _watches[id(loop)] = _QueueWatch()
    if contact_id is None:
        watch.callers.pop(caller, None)
        return
    watch.callers[caller] = contact_id
    watch.start()
