"""Several Daphne processes on one address: ``listenline serve --workers N``.

One Daphne process runs one event loop on one core. To use more cores on one host,
``serve`` binds the address itself, once per worker, with ``SO_REUSEPORT``: the kernel
then spreads new connections evenly over the sockets (by a hash of the connection, so
keep-alive and websocket connections are spread too, unlike one shared socket, where
the first process to wake takes the whole burst). Each socket goes to one Daphne
process through ``daphne --fd`` (``listenline.daphne_server``: Daphne with its periodic
sweeps sized for idle sockets); Daphne stays the server.

The parent only supervises: it keeps every socket open, so a worker that dies is
started again on the same socket and the connections queued meanwhile wait instead of
being refused; SIGTERM or SIGINT stops all workers and ends ``serve``. A worker that
keeps dying right after its start (a broken configuration) ends ``serve`` with status 1
instead of restarting forever. Nothing about a request passes through the parent and
it logs no addresses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

APPLICATION = "listenline.asgi:application"
BACKLOG = 1024
#: A worker that exits sooner than this after its start counts as a failed start.
START_GRACE_S = 10.0
#: This many failed starts in a row end ``serve``.
FAILED_STARTS_LIMIT = 5
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0


def daphne_args(*, endpoint: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """Daphne's command line: verbosity 0 (no access log: it would print every
    caller's IP address), then the endpoint, then whatever the operator added."""
    return ["-v", "0", *endpoint, *extra, APPLICATION]


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening IPv4 sockets on ``host:port`` (port 0: one free port for all),
    each with ``SO_REUSEPORT``; without ``SO_REUSEPORT``, one socket shared by all."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"--workers needs an IPv4 address to bind; {host!r}: {exc}") from exc
    address = infos[0][4][:2]
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            address = sock.getsockname()[:2]  # port 0: the others join the same port
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets if reuse_port else sockets * count


@dataclass
class Worker:
    number: int
    sock: socket.socket
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failed_starts: int = 0


@dataclass
class Supervisor:
    """Runs one Daphne per socket until told to stop (see the module docstring)."""

    sockets: Sequence[socket.socket]
    extra: Sequence[str] = ()
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False

    def command(self, sock: socket.socket) -> list[str]:
        endpoint = ["--fd", str(sock.fileno())]
        args = daphne_args(endpoint=endpoint, extra=self.extra)
        return [sys.executable, "-m", "listenline.daphne_server", *args]

    def start(self, worker: Worker) -> None:
        worker.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.command(worker.sock), pass_fds=(worker.sock.fileno(),)
        )
        worker.started_at = time.monotonic()

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.stopping = True

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)
        self.workers = [Worker(number, sock) for number, sock in enumerate(self.sockets, 1)]
        for worker in self.workers:
            self.start(worker)
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            for worker in self.workers:
                if self.stopping or worker.process is None or worker.process.poll() is None:
                    continue
                status = self.restart(worker)
                if status:
                    self.stopping = True
        self.shutdown()
        return status

    def restart(self, worker: Worker) -> int:
        assert worker.process is not None
        code = worker.process.returncode
        quick = time.monotonic() - worker.started_at < START_GRACE_S
        worker.failed_starts = worker.failed_starts + 1 if quick else 0
        if worker.failed_starts >= FAILED_STARTS_LIMIT:
            _say(f"worker {worker.number} keeps exiting right after its start (code {code})")
            return 1
        _say(f"worker {worker.number} exited with code {code}; starting it again")
        time.sleep(RESTART_DELAY_S)
        if not self.stopping:
            self.start(worker)
        return 0

    def shutdown(self) -> None:
        running = [w.process for w in self.workers if w.process and w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for sock in self.sockets:
            sock.close()


def _say(line: str) -> None:
    print(f"listenline serve: {line}", file=sys.stderr, flush=True)


def serve_workers(*, host: str, port: int, count: int, extra: Sequence[str] = ()) -> int:
    """Bind, start ``count`` Daphne workers, supervise them; the exit status of ``serve``."""
    try:
        sockets = listening_sockets(host, port, count)
    except (OSError, ValueError) as exc:
        _say(f"cannot listen on {host}:{port}: {exc}")
        return 2
    _say(f"{count} workers on {host}:{sockets[0].getsockname()[1]} (pid {os.getpid()})")
    return Supervisor(sockets, extra).run()
