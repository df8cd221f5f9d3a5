"""``listenline serve --workers N``: N Daphne processes on one address, really serving,
restarted when one dies, all stopped by SIGTERM, and no access log."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from listenline.workers import listening_sockets
from tests.servers import database_url, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(p) for p in f.read().split()]


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections to ``port`` (the server side)."""
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _wait_for(predicate: Any, seconds: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")


def _get(port: int, path: str = "/") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.fixture
def served(django_db_setup: None, django_db_blocker: Any, tmp_path: Path) -> Iterator[Any]:
    """``listenline serve --workers 2`` against the test database; yields (process, port,
    log path). The process runs in a session of its own and is stopped at the end."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("serve refuses anything but PostgreSQL")
    port = free_port()
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY="serve-test-secret-key-" + "x" * 32,
        ALLOWED_HOSTS="127.0.0.1",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "listenline.cli", "serve", "--host", "127.0.0.1"]
            + ["--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, port, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.django_db(transaction=True)  # the test database the workers serve from
def test_serve_with_two_workers_starts_two_daphnes_that_both_serve(served: Any) -> None:
    process, port, log = served
    workers = _wait_for(
        lambda: len(_children(process.pid)) == 2 and _children(process.pid), 60, "2 workers", log
    )
    for pid in workers:
        command = _cmdline(pid)
        assert "listenline.daphne_server" in command and "--fd" in command and "-v" in command
    _wait_for(lambda: _get(port).status == 200, 60, "the first page", log)

    # Keep-alive connections, as a proxy or Twilio holds them: the kernel spreads them
    # over the workers' sockets, so both workers hold some and answer on them.
    connections = []
    for _ in range(16):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200 and b'lang="nl"' in body
        assert "default-src 'self'" in response.getheader("Content-Security-Policy", "")
        connections.append(conn)
    established = _established_inodes(port)
    held = [len(_socket_inodes(pid) & established) for pid in workers]
    assert sum(held) == 16 and all(held), held
    for conn in connections:
        conn.close()

    # A worker that dies is started again on its socket; the address keeps serving.
    os.kill(workers[0], signal.SIGKILL)
    replaced = _wait_for(
        lambda: (c := _children(process.pid)) and len(c) == 2 and workers[0] not in c and c,
        30,
        "a replacement worker",
        log,
    )
    assert workers[1] in replaced
    for _ in range(8):
        assert _get(port).status == 200

    # SIGTERM ends serve and every worker.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=45) == 0
    for pid in replaced:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    output = log.read_text()
    assert "2 workers on 127.0.0.1" in output
    # No access log: Daphne's would print each client's address and request line.
    assert not re.search(r"\"GET / HTTP/1\.1\"", output)
    assert not re.search(rf"127\.0\.0\.1:(?!{port}\b)\d+", output)


def test_listening_sockets_share_one_port_each_with_reuseport() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1 and ports != {0}
        if hasattr(socket, "SO_REUSEPORT"):
            assert len({s.fileno() for s in sockets}) == 3
            assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in sockets)
    finally:
        for s in sockets:
            s.close()


def test_serve_refuses_fewer_than_one_worker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "listenline.cli", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers must be at least 1" in result.stderr
