"""asyncio Redis clients whose pool waits for a free connection instead of failing.

redis-py's default pool raises ``MaxConnectionsError`` the moment all its connections
are in use. A burst (ten thousand waiting callers whose sockets all close at once, say)
then loses work that must not be lost, such as a caller's reconnect deadline. These
clients queue for a connection, up to ``POOL_WAIT_S``, and keep ``socket_timeout=None``
(redis-py 8's 5 s default drops idle blocking reads: channels_redis #422).
"""

from __future__ import annotations

import redis.asyncio as aioredis

MAX_CONNECTIONS = 100  # per client, i.e. per event loop and purpose
POOL_WAIT_S = 30.0


def blocking_client(
    url: str, *, decode_responses: bool = False, client_name: str | None = None
) -> aioredis.Redis:
    """``client_name`` names the connections in ``CLIENT LIST`` (never a caller field)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        socket_timeout=None,
        decode_responses=decode_responses,
        client_name=client_name,
    )
    return aioredis.Redis(connection_pool=pool)
