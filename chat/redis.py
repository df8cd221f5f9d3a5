"""One asyncio Redis client per event loop (redis.asyncio pools are bound to a loop)."""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript

from listenline.redis_pool import blocking_client

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
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
