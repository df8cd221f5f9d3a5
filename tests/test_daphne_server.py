"""Daphne's sweeps for many idle sockets: the application check visits only what changed
and still does what Daphne's own does (reap, report, cancel a straggler)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from listenline.daphne_server import ListenlineServer


class FakeProtocol:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def __repr__(self) -> str:  # as Daphne's protocols: the client's address in it
        return "<WebSocketProtocol client=['203.0.113.77', 51234] path=b'/ws/chat/'>"

    def handle_exception(self, exc: BaseException) -> None:
        self.errors.append(exc)


def _server() -> ListenlineServer:
    server = ListenlineServer(application=None, endpoints=["tcp:port=0"])
    server.connections = {}
    server.changed = set()
    return server


def _instance(loop: asyncio.AbstractEventLoop, server: ListenlineServer, protocol: Any) -> Any:
    future = loop.create_future()
    server.connections[protocol] = {"application_instance": future}
    future.add_done_callback(lambda _f, p=protocol: server.changed.add(p))
    return future


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _check(server: ListenlineServer) -> None:
    for protocol in list(server.changed):
        if server._check(protocol):
            server.changed.discard(protocol)


def test_idle_connections_are_not_visited(loop: Any) -> None:
    server = _server()
    idle = [FakeProtocol() for _ in range(3)]
    for protocol in idle:
        _instance(loop, server, protocol)
    _check(server)
    assert server.changed == set() and len(server.connections) == 3


def test_closed_connection_whose_application_ended_is_removed(loop: Any) -> None:
    server = _server()
    protocol = FakeProtocol()
    future = _instance(loop, server, protocol)
    server.protocol_disconnected(protocol)
    _check(server)
    assert protocol in server.connections and protocol in server.changed  # still running
    future.set_result(None)
    loop.run_until_complete(asyncio.sleep(0))  # done callbacks run on the loop
    _check(server)
    assert protocol not in server.connections and not server.changed


def test_application_that_failed_while_connected_is_reported(loop: Any) -> None:
    server = _server()
    protocol = FakeProtocol()
    future = _instance(loop, server, protocol)
    future.set_exception(RuntimeError("boom"))
    loop.run_until_complete(asyncio.sleep(0))
    _check(server)
    assert [str(e) for e in protocol.errors] == ["boom"]
    assert "application_instance" not in server.connections[protocol]
    assert not server.changed  # the disconnect will bring it back
    server.protocol_disconnected(protocol)
    _check(server)
    assert protocol not in server.connections


def test_application_outliving_its_connection_is_cancelled(loop: Any, caplog: Any) -> None:
    server = _server()
    protocol = FakeProtocol()
    future = _instance(loop, server, protocol)
    server.protocol_disconnected(protocol)
    late = time.time() - 2 * server.application_close_timeout
    server.connections[protocol]["disconnected"] = late
    _check(server)
    assert future.cancelled()
    assert "took too long" in caplog.text and "203.0.113.77" not in caplog.text
    loop.run_until_complete(asyncio.sleep(0))
    _check(server)
    assert protocol not in server.connections
