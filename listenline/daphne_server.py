"""Daphne's server with its periodic sweeps sized for thousands of idle sockets.

Daphne walks every connection once a second (``application_checker``: reap finished
application instances, cancel those that outlive their closed connection) and every two
seconds (``timeout_checker``: connection timeouts and the websocket keep-alive ping).
With ten thousand waiting callers those two walks were most of an idle server's CPU
(``benchmarks/chat_idle.py``; docs/ARCHITECTURE.md, "Waiting callers"). Here:

* the application check visits only the connections that changed since it last ran (an
  application instance that finished, a connection that closed) and those still waiting
  for their instance to stop; what it does to each is Daphne's own logic, except that
  its warning no longer names the connection (whose repr holds the client's address);
* the timeout sweep runs every ``TIMEOUT_SWEEP_S`` seconds: a websocket is pinged after
  20–25 s of silence instead of 20–22 s, a connect or HTTP timeout acts up to 5 s late;
* a TCP write goes out at once when nothing is queued before it (``write_through``)
  instead of always waiting for the reactor's next round.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from daphne.server import Server
from twisted.internet import reactor as _reactor
from twisted.internet import tcp

logger = logging.getLogger("daphne.server")
reactor: Any = _reactor  # installed by daphne.server (the asyncio reactor)

TIMEOUT_SWEEP_S = 5.0
APPLICATION_CHECK_S = 1.0


def write_through(connection: Any, data: bytes) -> None:
    """``tcp.Connection.write`` that sends at once when nothing is queued before it.

    Twisted queues every write until the reactor's next writability callback: per
    websocket frame an epoll registration, a wake-up, the ``send`` and a
    deregistration, each through Twisted's and asyncio's Python layers. Sending in the
    call when the connection's queue is empty (as asyncio's own transports do) cut the
    server's CPU per relayed chat message by about a sixth (``benchmarks/chat_relay.py``).
    Whatever the socket does not take, and every write behind queued data or after
    ``loseConnection`` or ``abortConnection`` or on a connection that started TLS, goes
    Twisted's way, so order, back-pressure and encryption are unchanged;
    a socket error is left for Twisted's write path to find and report."""
    if (
        data
        and connection.connected
        and not connection.disconnecting
        and not connection._writeDisconnected
        and not connection.TLS
        and not getattr(connection, "_aborting", False)
        and not connection._tempDataBuffer
        and len(connection.dataBuffer) == connection.offset
    ):
        try:
            sent = connection.socket.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    _buffered_write(connection, data)


_buffered_write = tcp.Connection.write
tcp.Connection.write = write_through  # type: ignore[method-assign,assignment]


class ListenlineServer(Server):
    def run(self) -> None:
        #: Connections the next application check must look at.
        self.changed: set[Any] = set()
        super().run()

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        queue = super().create_application(protocol, scope)
        details = self.connections.get(protocol)
        instance = details.get("application_instance") if details else None
        if instance is not None:
            instance.add_done_callback(lambda _done, p=protocol: self.changed.add(p))
        return queue

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.changed.add(protocol)

    def application_checker(self) -> None:
        """``Server.application_checker`` for the connections in ``changed``."""
        for protocol in list(self.changed):
            if self._check(protocol):
                self.changed.discard(protocol)
        reactor.callLater(APPLICATION_CHECK_S, self.application_checker)

    def _check(self, protocol: Any) -> bool:
        """Daphne's checks for one connection; True once nothing is left to watch."""
        details = self.connections.get(protocol)
        if details is None:
            return True
        disconnected = details.get("disconnected", None)
        instance = details.get("application_instance", None)
        if disconnected and time.time() - disconnected > self.application_close_timeout:
            if instance and not instance.done():
                # Daphne names the connection here; its repr carries the client's
                # address, which never goes to a log line (docs/ARCHITECTURE.md).
                logger.warning(
                    "An application instance took too long to shut down after its "
                    "connection closed and was killed."
                )
                instance.cancel()
        if instance and instance.done():
            try:
                exception = instance.exception()
            except asyncio.CancelledError:
                pass
            else:
                if exception:
                    if isinstance(exception, KeyboardInterrupt):
                        self.stop()
                    else:
                        logger.error(
                            "Exception inside application: %s", exception, exc_info=exception
                        )
                        if not disconnected:
                            protocol.handle_exception(exception)
            del details["application_instance"]
            instance = None
        if not instance and disconnected:
            del self.connections[protocol]
            return True
        # Still running after its connection closed: look again until it stops or is
        # cancelled. Finished while connected: the disconnect will bring it back.
        return not disconnected

    def timeout_checker(self) -> None:
        for protocol in list(self.connections.keys()):
            protocol.check_timeouts()
        reactor.callLater(TIMEOUT_SWEEP_S, self.timeout_checker)


def run(argv: Sequence[str]) -> None:
    """Daphne's command line (``daphne …``) with this server."""
    from daphne.cli import CommandLineInterface

    cli = CommandLineInterface()
    cli.server_class = ListenlineServer
    cli.run(list(argv))


if __name__ == "__main__":  # ``python -m listenline.daphne_server …``: a serve worker
    run(sys.argv[1:])
