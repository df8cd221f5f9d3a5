"""What the chat benchmarks share: a scratch database with volunteers and their sessions,
Daphne server processes on free loopback ports (the ``listenline serve`` command line:
``daphne -v 0 listenline.asgi:application``), the raw ``websockets`` baseline server,
/proc readings (no psutil) and clean-up of every Redis key the run made.

Everything started here is started in its own session and killed by ``Servers.stop`` /
``RawServer.stop``; callers put those in ``finally``.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
DATABASE_DEFAULT = "postgres://postgres@127.0.0.1:5432/listenline"
#: One key per run: the volunteers' sessions are signed with it at set-up.
RUN_SECRET_KEY = secrets.token_urlsafe(48)

#: Channel layers the benchmarks can run the server with (``--layer``). ``settings``
#: is whatever ``listenline/settings.py`` configures (production); the others override
#: only the BACKEND (same hosts, ``socket_timeout: None``, symmetric encryption, prefix).
LAYERS = {
    "settings": None,
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


# --- the scratch database ------------------------------------------------------------
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


_SETUP = """
import json, django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from volunteers.geography import geography_load
from volunteers.models import Branch, Volunteer

call_command("migrate", verbosity=0)
geography_load()
count = {count}
User = get_user_model()
users = []
for i in range(count):
    u = User(username=f"bench{{i:05d}}")
    u.set_unusable_password()
    users.append(u)
User.objects.bulk_create(users, batch_size=500)
users = list(User.objects.filter(username__startswith="bench").order_by("username"))
branches = list(Branch.objects.order_by("slug"))
Volunteer.objects.bulk_create(
    [
        Volunteer(user=u, alias=f"V{{i:05d}}", branch=branches[i % len(branches)],
                  takes_phone=False, takes_chat=True, chat_limit=1)
        for i, u in enumerate(users)
    ],
    batch_size=500,
)
keys = []
for u in users:
    s = SessionStore()
    s[SESSION_KEY] = str(u.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = u.get_session_auth_hash()
    s.create()
    keys.append(s.session_key)
print("SESSIONS " + json.dumps(keys))
"""


def database_prepare(env: dict[str, str], volunteers: int) -> list[str]:
    """Migrate, load the shipped geography, create ``volunteers`` chat volunteers (chat
    limit 1, no phone, spread over the branches, aliases ``V00000``…) with a logged-in
    session each; returns the session keys in alias order."""
    out = subprocess.run(
        [sys.executable, "-c", _SETUP.format(count=volunteers)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in out.stdout.splitlines():
        if line.startswith("SESSIONS "):
            return list(json.loads(line[len("SESSIONS ") :]))
    raise RuntimeError("setup printed no sessions: " + out.stderr[-2000:])


# --- environment and server processes ------------------------------------------------
def server_env(
    *, database_url: str, redis_url: str, prefix: str, layer: str, settings_dir: Path
) -> dict[str, str]:
    """Production settings (PostgreSQL, Redis, encrypted layer) with this run's prefixes."""
    env = dict(os.environ)
    env.pop("LISTENLINE_EMBEDDED", None)
    env.update(
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
        DATABASE_POOL_MAX="8",
        PYTHONPATH=os.pathsep.join(
            p for p in (str(settings_dir), str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    )
    backend = LAYERS[layer]
    if backend is None:
        env["DJANGO_SETTINGS_MODULE"] = "listenline.settings"
    else:
        module = f"bench_settings_{layer}"
        (settings_dir / f"{module}.py").write_text(
            "from listenline.settings import *  # noqa: F401,F403\n"
            "from listenline.settings import CHANNEL_LAYERS as _LAYERS\n"
            "import copy\n"
            "CHANNEL_LAYERS = copy.deepcopy(_LAYERS)\n"
            f"CHANNEL_LAYERS['default']['BACKEND'] = {backend!r}\n",
            encoding="utf-8",
        )
        env["DJANGO_SETTINGS_MODULE"] = module
    return env


def settings_tempdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="llbench-")


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


class Servers:
    """``count`` Daphne processes, as ``listenline serve`` runs them (verbosity 0: no
    access log), each on its own free loopback port. Without a proxy in front the client
    spreads its sockets over the ports itself, as the Compose stack's nginx does."""

    def __init__(self, env: dict[str, str], count: int) -> None:
        self.env = env
        self.count = count
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Servers:
        for _ in range(self.count):
            port = free_port()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-v",
                    "0",
                    "listenline.asgi:application",
                ],
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
            self.ports.append(port)
            self.procs.append(proc)
        for port, proc in zip(self.ports, self.procs, strict=True):
            _wait_port(port, proc)
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_kb(self) -> int:
        return sum(rss_kb(pid) for pid in self.pids)

    def stop(self) -> None:
        _stop(self.procs)
        self.procs = []


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


class RawServer:
    """The baseline: ``benchmarks/_rawrelay.py``, a relay written directly on the
    ``websockets`` library, in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RawServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "_rawrelay.py"), str(self.port)],
            cwd=ROOT,
            start_new_session=True,
        )
        _wait_port(self.port, self.proc)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def stop(self) -> None:
        if self.proc is not None:
            _stop([self.proc])
            self.proc = None


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
