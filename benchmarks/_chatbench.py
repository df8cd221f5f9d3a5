"""What only the chat benchmarks need on top of ``_common``'s server helpers: chat
volunteers with logged-in sessions in the scratch database, a channel-layer override
(``--layer``), and the raw ``websockets`` baseline server.

Everything started here is started in its own session and stopped by
``RawServer.stop``; callers put that in ``finally``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    cpu_seconds,
    database_setup,
    free_port,
    rss_kb,
    server_env,
    stop_processes,
)

#: Channel layers the benchmarks can run the server with (``--layer``). ``settings``
#: is whatever ``listenline/settings.py`` configures (production); the others override
#: only the BACKEND (same hosts, ``socket_timeout: None``, symmetric encryption, prefix).
LAYERS = {
    "settings": None,
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}

_VOLUNTEERS = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from volunteers.models import Branch, Volunteer

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
    out = database_setup(env, _VOLUNTEERS.format(count=volunteers))
    for line in out.splitlines():
        if line.startswith("SESSIONS "):
            return list(json.loads(line[len("SESSIONS ") :]))
    raise RuntimeError("set-up printed no sessions")


def chat_server_env(
    *, database_url: str, redis_url: str, prefix: str, layer: str, settings_dir: Path
) -> dict[str, str]:
    """``_common.server_env`` with a smaller database pool per process and, for a
    ``--layer`` other than ``settings``, a settings module that swaps only the layer."""
    env = server_env(
        database_url=database_url, redis_url=redis_url, prefix=prefix, DATABASE_POOL_MAX="8"
    )
    backend = LAYERS[layer]
    if backend is not None:
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
        env["PYTHONPATH"] = f"{settings_dir}:{env['PYTHONPATH']}"
    return env


def settings_tempdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="llbench-")


class RawServer:
    """The baseline: ``benchmarks/_rawrelay.py``, a relay written directly on the
    ``websockets`` library, in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RawServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "_rawrelay.py"), str(self.port)],
            cwd=REPO,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"raw relay exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("raw relay did not start") from None
                time.sleep(0.1)

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
            stop_processes([self.proc])
            self.proc = None


ORIGIN = "http://127.0.0.1"


async def connect(uri: str, **extra: Any) -> Any:
    """A benchmark client's websocket, as a browser opens it (our origin, no client
    pings: Daphne pings idle sockets itself)."""
    from websockets.asyncio.client import connect as ws_connect

    return await ws_connect(
        uri,
        origin=ORIGIN,  # type: ignore[arg-type]
        compression=None,
        ping_interval=None,
        open_timeout=60,
        max_queue=None,
        **extra,
    )
