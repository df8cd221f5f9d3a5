"""One asyncio Redis client per event loop (redis.asyncio pools are bound to a loop),
and one lean pipelined line per loop for the per-message path (``listenline.redis_line``)."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript

from listenline.redis_line import RedisLine
from listenline.redis_pool import blocking_client

#: How the chat's connections are named in ``CLIENT LIST``.
LINE_NAME = "listenline-chat"

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
_lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisLine] = (
    weakref.WeakKeyDictionary()
)
_scripts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncScript]] = (
    weakref.WeakKeyDictionary()
)


def redis_client() -> aioredis.Redis:
    """The client of the running loop (its pool waits for a free connection)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = blocking_client(settings.REDIS_URL)
        _clients[loop] = client
    return client


def redis_script(source: str) -> AsyncScript:
    """``source`` registered on the running loop's client: called with ``EVALSHA`` (the
    script text crosses the wire only once, on the first ``NOSCRIPT``)."""
    loop = asyncio.get_running_loop()
    scripts = _scripts.get(loop)
    if scripts is None:
        scripts = _scripts[loop] = {}
    script = scripts.get(source)
    if script is None:
        script = scripts[source] = redis_client().register_script(source)
    return script


def redis_line() -> RedisLine:
    """The running loop's pipelined line: appends, signals, rate counts, log reads and
    relay publishes, the frames of a conversation."""
    loop = asyncio.get_running_loop()
    line = _lines.get(loop)
    if line is None:
        line = _lines[loop] = RedisLine(settings.REDIS_URL, client_name=LINE_NAME)
    return line
