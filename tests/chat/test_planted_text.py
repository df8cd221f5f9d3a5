"""Planted text: after the conversation ends, the phrase is in no table, no Redis key or
value, no log line and no Celery message."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import connection

from tests.chat.conftest import console_connect, conversation, on_duty

pytestmark = [pytest.mark.django_db(transaction=True)]
PHRASE = "paarse-olifant-zwemt-7731"


@sync_to_async
def _database_dump() -> str:
    parts: list[str] = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            cursor.execute(f'SELECT * FROM "{model._meta.db_table}"')  # noqa: S608
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


async def _redis_dump() -> str:
    client = aioredis.from_url(settings.REDIS_URL)
    parts: list[str] = []
    async for key in client.scan_iter(count=1000):
        parts.append(repr(key))
        kind = (await client.type(key)).decode()
        if kind == "string":
            parts.append(repr(await client.get(key)))
        elif kind == "list":
            parts.append(repr(await client.lrange(key, 0, -1)))
        elif kind == "hash":
            parts.append(repr(await client.hgetall(key)))
        elif kind == "set":
            parts.append(repr(await client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(await client.zrange(key, 0, -1)))
    await client.aclose()
    return "\n".join(parts)


async def test_planted_phrase_leaves_no_trace(
    chat_env: Any, anna: Any, caplog: Any, monkeypatch: Any
) -> None:
    sent_tasks: list[Any] = []
    from celery.app.task import Task

    monkeypatch.setattr(
        Task, "apply_async", lambda self, *a, **k: sent_tasks.append((self.name, a, k))
    )
    caplog.set_level(logging.DEBUG)
    console = await console_connect("anna")
    await on_duty(console)
    caller, _token, cid = await conversation(console)
    await caller.send(type="message", id="p1", text=f"Ik zeg het maar: {PHRASE}")
    got = await console.expect("message", contact_id=cid)
    assert got["text"] == f"Ik zeg het maar: {PHRASE}"
    await console.send(type="message", contact_id=cid, id="p2", text=f"Je zei {PHRASE}?")
    got = await caller.expect("message", seq=3)
    assert got["text"] == f"Je zei {PHRASE}?"
    # While the conversation lives, its log is in Redis (the scan sees both messages),
    # but the text only sealed: a Redis dump or snapshot holds no readable text.
    live = await _redis_dump()
    assert live.count('"sealed":') == 2
    assert PHRASE not in live and "Ik zeg het maar" not in live

    await caller.send(type="end")
    await caller.expect("ended")
    await console.expect("contact", contact_id=cid, state="wrap_up")
    await console.send(
        type="wrapup",
        contact_id=cid,
        topics=["loneliness"],
        age_band="unknown",
        gender="unknown",
        referral_given=False,
        handed_over="none",
        ending="caller_ended",
    )
    await console.expect("wrapup.saved")
    await caller.close()
    await console.close()

    assert PHRASE not in await _database_dump()
    assert PHRASE not in await _redis_dump()
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert PHRASE not in logged
    assert PHRASE not in repr(sent_tasks)
