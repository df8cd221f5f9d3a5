"""Helpers shared by the benchmark scripts: percentiles, goals, the closing JSON line,
and the production server with a scratch database (``Server`` and friends, below).

Every benchmark prints, as its very last line, one JSON object
``{"benchmark": NAME, "figures": {...}, "goals": [...]}`` (docs: BRIEF "Quality bars")
and exits 0 whether or not a goal is met: a missed goal is a finding, not a crash.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent


def django_setup(*, embedded: bool = True) -> None:
    """Configure Django for a benchmark process.

    ``embedded``: the embedded settings shape (in-process stores, no server needed); the
    database stays whatever ``DATABASE_URL`` says and is only touched if the benchmark
    itself does so.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if embedded:
        os.environ.setdefault("LISTENLINE_EMBEDDED", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "listenline.settings")
    import django

    django.setup()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def goal(name: str, value: float, op: str, target: float) -> dict[str, Any]:
    """One goal as the brief states it; ``met`` is False for a value that is not a number."""
    if op not in (">=", "<="):
        raise ValueError(f"op must be '>=' or '<=', not {op!r}")
    finite = isinstance(value, int | float) and math.isfinite(value)
    met = finite and (value >= target if op == ">=" else value <= target)
    return {
        "name": name,
        "value": value if finite else None,
        "op": op,
        "target": target,
        "met": bool(met),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        # Other work on the machine skews timings; say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def result_print(name: str, figures: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    """Print the closing JSON line (and nothing may be printed after it)."""
    sys.stdout.flush()
    print(
        json.dumps(
            {"benchmark": name, "figures": figures, "goals": goals},
            separators=(",", ":"),
            allow_nan=False,
            default=_jsonable,
        ),
        flush=True,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def rounded(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


# --- servers: a scratch database, production settings, ``listenline serve`` --------------
# Every benchmark that needs the production server starts it with these: its own empty
# PostgreSQL database (migrated, geography loaded), its own Redis prefix (every key
# deleted at the end), and ``listenline serve`` on a free loopback port, in a session of
# its own so that stopping it stops its workers too.

REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
DATABASE_DEFAULT = "postgres://postgres@127.0.0.1:5432/listenline"
#: One key per run: sessions signed at set-up must verify in the servers.
RUN_SECRET_KEY = secrets.token_urlsafe(48)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return [int(p) for p in f.read().split()]


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def redis_cpu_seconds(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def database_create(base_url: str, tag: str) -> tuple[str, str]:
    """A fresh, empty database; returns (its URL, the admin URL to drop it with)."""
    import psycopg

    name = f"listenline_bench_{tag}_{os.getpid()}"
    parts = urlsplit(base_url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl(), admin


def database_drop(url: str, admin: str) -> None:
    import psycopg

    name = urlsplit(url).path[1:]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_setup(env: dict[str, str], script: str = "") -> str:
    """Migrate the scratch database and load the shipped geography, then run
    ``script`` (Python, Django set up) in the same subprocess; returns its stdout."""
    setup = (
        "import django\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "from volunteers.geography import geography_load\n"
        "call_command('migrate', verbosity=0)\n"
        "geography_load()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", setup + script],
        env=env,
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode:
        raise RuntimeError("database set-up failed: " + out.stderr[-2000:])
    return out.stdout


def server_env(
    *, database_url: str, redis_url: str, prefix: str, **overrides: str
) -> dict[str, str]:
    """Production settings (PostgreSQL with its pool, Redis, the encrypted layer) with
    this run's database, secret key and Redis prefixes; ``overrides`` last."""
    env = dict(os.environ)
    env.pop("LISTENLINE_EMBEDDED", None)
    env.update(
        DJANGO_SETTINGS_MODULE="listenline.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY=RUN_SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        PUBLIC_BASE_URL="http://127.0.0.1",
        ROUTING_REDIS_PREFIX=f"{prefix}:rt",
        CHAT_REDIS_PREFIX=f"{prefix}:chat",
        CHANNEL_LAYER_PREFIX=f"{prefix}:asgi",
        TELEPHONY_REDIS_PREFIX=f"{prefix}:tel",
        LOG_LEVEL="WARNING",
        DATABASE_POOL="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    env.update(overrides)
    return env


class Server:
    """``listenline serve --workers N`` on a free loopback port (or ``port``).

    ``serve`` always runs ``listenline.settings``; an env naming another settings module
    (``chat_relay.py --layer``) runs the same supervisor and Daphne command line
    (``listenline.workers``) without ``serve``'s start-up checks. ``pids`` are the
    processes that serve: the workers, or ``serve`` itself with one worker (Daphne then
    runs in it)."""

    def __init__(self, env: dict[str, str], workers: int = 1, port: int = 0) -> None:
        self.env = env
        self.workers = workers
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        if self.env.get("DJANGO_SETTINGS_MODULE") == "listenline.settings":
            return [
                *(sys.executable, "-m", "listenline.cli", "serve"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--workers", str(self.workers)),
            ]
        run = (
            "import sys; from listenline.workers import serve_workers; "
            f"sys.exit(serve_workers(host='127.0.0.1', port={self.port}, count={self.workers}))"
        )
        return [sys.executable, "-c", run]

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env,
            cwd=REPO,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while len(self.pids) < self.workers and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.1)
        # Each worker has its own SO_REUSEPORT socket; a request on a fresh connection
        # lands on any of them and waits in its queue until that worker serves.
        for _ in range(4 * self.workers):
            self._wait_serving(deadline)
        return self

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"listenline serve exited with {self.proc.returncode}")

    def _wait_serving(self, deadline: float) -> None:
        import http.client

        while time.monotonic() < deadline:
            self._check_alive()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
            finally:
                conn.close()
        raise RuntimeError(f"listenline serve on port {self.port} did not serve in time")

    @property
    def pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        try:
            return child_pids(self.proc.pid) or [self.proc.pid]
        except OSError:
            return []

    @property
    def ports(self) -> list[int]:
        return [self.port]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_kb(self) -> int:
        return sum(rss_kb(pid) for pid in self.pids)

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])
            self.proc = None


def stop_processes(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process's session, then SIGKILL what is left after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers the supervisor left behind


def redis_cleanup(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (routing, chat, channel layer, telephony)."""
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted
