"""Planted identifiers: after whole calls, nothing of the caller is anywhere.

A distinctive number, name, city and postcode go into every caller field Twilio sends.
Afterwards a full database dump, every Redis key and value, every log record of every
logger and every Celery message must contain none of them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any
from unittest import mock

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from celery.app.task import Task
from django.db import connection

from routing import services as routing
from tests.telephony.conftest import REDIS_URL, UTRECHT_NUMBER, contact_of, on_duty

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+31655501234"
PLANTED = {
    "CallerName": "Hendrika Plantinga",
    "ForwardedFrom": "+31655509876",
    "FromCity": "Zwartewaterkloosterdorp",
    "FromState": "Overijsselplant",
    "FromZip": "8067QX",
    "FromCountry": "NL",
    "CallerCity": "Zwartewaterkloosterdorp",
    "CallerState": "Overijsselplant",
    "CallerZip": "8067QX",
    "CallerCountry": "NL",
}
NEEDLES = (
    "655501234",
    "655509876",
    "Plantinga",
    "Zwartewaterkloosterdorp",
    "Overijsselplant",
    "8067QX",
    "8067 QX",
)


def assert_clean(text: str, where: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"{needle!r} found in {where}"


@sync_to_async
def database_dump() -> str:
    settings = connection.settings_dict
    if shutil.which("pg_dump"):
        return subprocess.run(
            [
                "pg_dump",
                "--data-only",
                "-h",
                settings["HOST"] or "127.0.0.1",
                "-U",
                settings["USER"] or "postgres",
                settings["NAME"],
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            rows += [repr(row) for row in cursor.fetchall()]
    return "\n".join(rows)


async def redis_everything() -> str:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=False)
    out = []
    async for key in client.scan_iter(count=1000):
        kind = (await client.type(key)).decode()
        if kind == "string":
            value: Any = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "set":
            value = await client.smembers(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        else:
            value = kind
        out.append(f"{key!r} {value!r}")
    await client.aclose()
    return "\n".join(out)


async def test_planted_identifiers_are_nowhere(sim, line, clock, caplog):
    caplog.set_level("DEBUG")
    messages: list[str] = []
    original = Task.apply_async

    def record(task: Task, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        messages.append(json.dumps({"task": task.name, "args": args, "kwargs": kwargs}))
        return original(task, args, kwargs, **options)

    with mock.patch.object(Task, "apply_async", autospec=True, side_effect=record):
        await on_duty(line["anna"])
        call = await sim.incoming(from_=NUMBER, to=UTRECHT_NUMBER, extra=PLANTED)
        contact = contact_of(sim)
        await sim.hold_tick(call)
        await sim.hangup(call)
        await routing.contact_wrapup_done(contact_id=contact, volunteer_id=line["anna"].pk)
        for _ in range(5):  # four more, the last refused by fair use
            extra = await sim.incoming(from_=NUMBER, to=UTRECHT_NUMBER, extra=PLANTED)
            await sim.hangup(extra)
        assert extra.over and any("113" in t for t in extra.heard)

    assert len(messages) >= 2  # the deletions were queued, with CallSids only
    for message in messages:
        assert_clean(message, "a Celery message")
    assert_clean(await database_dump(), "the database dump")
    assert_clean(await redis_everything(), "Redis")
    for record_ in caplog.records:
        text = record_.getMessage() + repr(record_.args) + repr(record_.__dict__)
        assert_clean(text, f"a log record of {record_.name}")
    # The simulator did send them (the test would prove nothing otherwise).
    assert any(NUMBER == c.from_ and c.extra["FromZip"] == "8067QX" for c in sim.calls.values())
