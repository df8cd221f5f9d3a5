"""Per-process background work of the chat: ending conversations of callers who did not
come back within ``CHAT_CALLER_GRACE_S``. Claims are atomic (a sorted-set member is
removed by exactly one process), so every server process may sweep."""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from chat import services
from chat.store import conversation_store

logger = logging.getLogger(__name__)
_tasks: dict[int, asyncio.Task[None]] = {}


async def sweep_once(now: float | None = None) -> int:
    due = await conversation_store().deadlines_claim(
        name=services.CALLER_GONE, now=time.time() if now is None else now
    )
    for contact_id in due:
        await services.conversation_end(contact_id=contact_id, by="timeout")
    return len(due)


async def _run() -> None:
    interval = float(getattr(settings, "CHAT_SWEEP_S", 1.0))
    while True:
        try:
            await sweep_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("chat sweep failed")  # no ids, no text: the traceback only
        await asyncio.sleep(interval)


def ensure_sweeper_started() -> None:
    loop = asyncio.get_running_loop()
    task = _tasks.get(id(loop))
    if task is None or task.done():
        _tasks[id(loop)] = loop.create_task(_run(), name="chat-sweeper")
