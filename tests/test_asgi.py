"""``listenline.asgi.RequestThreads``: all of a request's sync work on one thread kept
from earlier requests, never shared by two requests at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async

from listenline.asgi import RequestThreads


# --- RequestThreads --------------------------------------------------------------------
def _thread_app(seen: list[tuple[int, int, int]], pause: float = 0.0) -> Any:
    """An ASGI app that notes the threads of two sync calls, one of them inside
    Django's own per-request context (which must add nothing)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        first = await sync_to_async(threading.get_ident)()
        await asyncio.sleep(pause)
        async with ThreadSensitiveContext():
            second = await sync_to_async(threading.get_ident)()
        seen.append((first, second, threading.get_ident()))

    return app


async def _call(app: Any) -> None:
    await app({"type": "http"}, None, None)


async def test_a_request_keeps_one_thread_and_the_next_request_reuses_it() -> None:
    seen: list[tuple[int, int, int]] = []
    app = RequestThreads(_thread_app(seen), keep=4)
    if not app.supported:
        pytest.skip("this asgiref has no ThreadSensitiveContext(executor=...)")
    for _ in range(5):
        await _call(app)
    threads = {first for first, _, _ in seen}
    assert len(threads) == 1
    assert all(first == second != loop for first, second, loop in seen)
    assert len(app.idle) == 1


async def test_concurrent_requests_never_share_a_thread_and_spares_are_bounded() -> None:
    seen: list[tuple[int, int, int]] = []
    app = RequestThreads(_thread_app(seen, pause=0.05), keep=2)
    if not app.supported:
        pytest.skip("this asgiref has no ThreadSensitiveContext(executor=...)")
    await asyncio.gather(*(_call(app) for _ in range(5)))
    assert len({first for first, _, _ in seen}) == 5
    assert all(first == second for first, second, _ in seen)
    assert len(app.idle) == 2


async def test_websockets_pass_through_untouched() -> None:
    inner = mock.AsyncMock()
    app = RequestThreads(inner)
    await app({"type": "websocket"}, "receive", "send")
    inner.assert_awaited_once_with({"type": "websocket"}, "receive", "send")
    assert app.idle == []


def test_what_the_application_loaded_is_kept_out_of_full_collections() -> None:
    import gc

    import listenline.asgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000
