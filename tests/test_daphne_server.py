"""Daphne's sweeps for many idle sockets: the application check visits only what changed
and still does what Daphne's own does (reap, report, cancel a straggler)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
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


class FakeReactor:
    """Records what Twisted asks of the reactor (no loop runs)."""

    def __init__(self) -> None:
        self.writers: list[Any] = []

    def addWriter(self, writer: Any) -> None:  # noqa: N802 - Twisted's name
        if writer not in self.writers:
            self.writers.append(writer)

    def removeWriter(self, writer: Any) -> None:  # noqa: N802
        if writer in self.writers:
            self.writers.remove(writer)

    def addReader(self, reader: Any) -> None:  # noqa: N802
        pass

    def removeReader(self, reader: Any) -> None:  # noqa: N802
        pass


@contextlib.contextmanager
def _connection() -> Iterator[tuple[Any, Any, FakeReactor]]:
    """A Twisted TCP connection on one end of a socket pair, the other end, and the
    reactor it reports to; both sockets closed afterwards."""
    import socket

    from twisted.internet import tcp
    from twisted.internet.protocol import Protocol

    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    reactor = FakeReactor()
    connection = tcp.Connection(ours, Protocol(), reactor=reactor)  # type: ignore[arg-type]
    connection.connected = 1
    peer.settimeout(2.0)
    try:
        yield connection, peer, reactor
    finally:
        ours.close()
        peer.close()


def _drain(peer: Any, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += peer.recv(size - len(got))
    return got


def test_a_write_with_nothing_queued_goes_out_at_once() -> None:
    with _connection() as (connection, peer, reactor):
        connection.write(b"frame one")
        assert peer.recv(100) == b"frame one"
        assert reactor.writers == []  # no round through the reactor


def test_what_the_socket_refuses_is_queued_and_order_is_kept() -> None:
    with _connection() as (connection, peer, reactor):
        big = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes at once
        connection.write(big)
        assert reactor.writers == [connection]  # the rest waits for the reactor
        connection.write(b"behind")  # queued behind, never sent ahead of the rest
        received = b""
        while len(received) < len(big) + 6:
            if reactor.writers:
                connection.doWrite()
            received += peer.recv(1 << 16)
        assert received == big + b"behind"


def test_a_write_after_lose_connection_takes_twisteds_way() -> None:
    with _connection() as (connection, peer, reactor):
        connection.disconnecting = 1
        connection.write(b"late")
        assert reactor.writers == [connection]
        connection.doWrite()
        assert _drain(peer, 4) == b"late"


def test_a_connection_that_started_tls_or_is_aborting_takes_twisteds_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from listenline import daphne_server

    handed: list[bytes] = []
    monkeypatch.setattr(daphne_server, "_buffered_write", lambda _c, data: handed.append(data))
    for flag in ("TLS", "_aborting"):
        with _connection() as (connection, peer, _reactor):
            setattr(connection, flag, True)
            daphne_server.write_through(connection, b"not in the clear")
            assert handed.pop() == b"not in the clear", flag
            peer.setblocking(False)
            with pytest.raises(BlockingIOError):
                peer.recv(100)  # nothing went out directly
