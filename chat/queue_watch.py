"""Live queue places for waiting callers and queue counts for consoles, with one
channel-layer member per process.

Putting every waiting caller and every console in the ``national`` group would make
each queue change a ``group_send`` to thousands of channels, each one decrypted and
handled by its own socket. Instead each server process listens once (its own channel
in ``national``), and on ``queue.changed`` or ``presence.changed``, debounced to once
per ``CHAT_QUEUE_DEBOUNCE_S``:

* reads the places of all its *local* waiting callers in batched reads
  (``engine.queue_positions``: one script per 500 callers);
* reads the counts once for the whole line and once per branch its local consoles
  belong to, and hands each console its branch's and the national counts.

It also re-reads at least every ``CHAT_QUEUE_REFRESH_S`` so a drifting estimate or a
growing longest wait is caught. A socket is sent a ``queue`` frame only when what it
shows changed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from chat import desk as desks
from chat import engine

logger = logging.getLogger(__name__)

#: Callers per batched read (``engine.queue_positions`` runs one script per 500).
REFRESH_CHUNK = 500


class Watcher(Protocol):
    async def queue_place_changed(self, place: engine.Place | None) -> None: ...


class DeskWatcher(Protocol):
    async def queue_counts_changed(self, counts: dict[str, Any], read_at: float) -> None: ...


class _QueueWatch:
    def __init__(self) -> None:
        self.callers: dict[Watcher, str] = {}  # consumer → contact id
        self.desks: dict[DeskWatcher, str] = {}  # console → its branch
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

    async def refresh_desks(self) -> None:
        """One read for the line and one per branch with a local console; each console
        sends only a change."""
        if not self.desks:
            return
        read_at = asyncio.get_running_loop().time()
        national = await engine.branch_snapshot(branch=None)
        frames: dict[str, dict[str, Any] | None] = {}
        for branch in set(self.desks.values()):
            try:
                snapshot = await engine.branch_snapshot(branch=branch)
            except Exception:
                logger.exception("queue counts of a branch failed")
                frames[branch] = None
                continue
            frames[branch] = desks.queue_frame(snapshot, national)
        for desk, branch in list(self.desks.items()):
            frame = frames.get(branch)
            if frame is None or self.desks.get(desk) != branch:
                continue
            try:
                await desk.queue_counts_changed(frame, read_at)
            except Exception:
                logger.exception("queue counts refresh failed")

    async def _refresher(self) -> None:
        debounce = float(getattr(settings, "CHAT_QUEUE_DEBOUNCE_S", 1.0))
        period = float(getattr(settings, "CHAT_QUEUE_REFRESH_S", 30.0))
        while True:
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout=period)
            except TimeoutError:
                pass
            self.dirty.clear()
            for refresh in (self.refresh_all, self.refresh_desks):
                try:
                    await refresh()
                except Exception:
                    logger.exception("queue refresh failed")
            await asyncio.sleep(debounce)


_watches: dict[int, _QueueWatch] = {}


def _watch() -> _QueueWatch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(id(loop))
    if watch is None:
        watch = _watches[id(loop)] = _QueueWatch()
    return watch


def _register(table: dict[Any, str], member: Any, value: str | None) -> None:
    if value is None:
        table.pop(member, None)
        return
    table[member] = value
    _watch().start()


def watch_queue(caller: Any, contact_id: str | None) -> None:
    """Register (``contact_id`` set) or forget (None) a waiting caller's consumer."""
    _register(_watch().callers, caller, contact_id)


def watch_desk(console: Any, branch: str | None) -> None:
    """Register (``branch`` set) or forget (None) a console for queue counts."""
    _register(_watch().desks, console, branch)
