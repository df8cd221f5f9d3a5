"""Benchmark: the incoming-call webhook under load, against a trivial view on the same server.

Starts its own Daphne server (production settings: PostgreSQL from DATABASE_URL, Redis
from REDIS_URL) on a free loopback port with a scratch database and Redis prefix, then
drives 200 requests/s from 32 connections (open loop) at

* the baseline: ``GET /twilio/ping/``, a trivial async view mounted only with
  ``LISTENLINE_BENCHMARK_VIEW=1``;
* ``POST /twilio/voice/incoming/``: signature check, fair-use check, enqueue, TwiML
  (each request a new CallSid and caller number, dialling a branch's local number).

Prints one JSON line last. Exit status 0 even when a goal is missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RATE, CONNECTIONS, SECONDS, WARMUP_S = 200, 32, 20, 3
TOKEN = secrets.token_hex(16)
BRANCH_NUMBER = "+31301119999"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scratch_env(port: int, database_url: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="listenline.settings",
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_ACCOUNT_SID="AC" + "b" * 32,
        TWILIO_API_BASE_URL="http://127.0.0.1:9",
        LISTENLINE_BENCHMARK_VIEW="1",
        ROUTING_REDIS_PREFIX=prefix,
        TELEPHONY_REDIS_PREFIX=f"{prefix}:tel",
        CHANNEL_LAYER_PREFIX=f"{prefix}:asgi",
        FAIR_USE_LIMIT="4",
        LOG_LEVEL="WARNING",
        DATABASE_POOL="1",
    )
    env.pop("LISTENLINE_EMBEDDED", None)
    return env


def prepare_database(base_url: str) -> tuple[str, str]:
    import psycopg

    name = f"listenline_bench_{os.getpid()}"
    parts = urlsplit(base_url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parts._replace(path=f"/{name}").geturl(), admin


def setup_django(env: dict[str, str]) -> None:
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0);"
        "from volunteers.geography import geography_load; geography_load();"
        "from volunteers.models import Branch;"
        f"Branch.objects.filter(slug='utrecht').update(local_phone_number='{BRANCH_NUMBER}')"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)


async def wait_up(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def drive(port: int, kind: str, seconds: float) -> dict[str, float]:
    import aiohttp
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        start = time.perf_counter()
        try:
            if kind == "ping":
                async with session.get(base + "/twilio/ping/") as r:
                    await r.read()
                    ok = r.status == 200
            else:
                params = {
                    "AccountSid": "AC" + "b" * 32,
                    "CallSid": "CA" + secrets.token_hex(16),
                    "CallStatus": "ringing",
                    "Direction": "inbound",
                    "From": f"+316{secrets.randbelow(10**8):08d}",
                    "To": BRANCH_NUMBER,
                    "Called": BRANCH_NUMBER,
                    "ApiVersion": "2010-04-01",
                }
                params["Caller"] = params["From"]
                url = base + "/twilio/voice/incoming/"
                headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
                async with session.post(url, data=params, headers=headers) as r:
                    body = await r.read()
                    ok = r.status == 200 and b"<Conference" in body
        except Exception:
            ok = False
        latencies.append(time.perf_counter() - start)
        if not ok:
            errors += 1

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        began = time.perf_counter()
        total = int(RATE * seconds)
        for i in range(total):
            delay = began + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "rps": round(len(ordered) / elapsed, 1),
        "errors": errors,
        "requests": len(ordered),
    }


async def main() -> dict[str, object]:
    port = free_port()
    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/listenline")
    database_url, admin = prepare_database(base_db)
    prefix = f"llbench:{os.getpid()}"
    env = scratch_env(port, database_url, prefix)
    server = None
    try:
        setup_django(env)
        server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
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
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        await wait_up(port)
        await drive(port, "ping", WARMUP_S)
        ping = await drive(port, "ping", SECONDS)
        await drive(port, "incoming", WARMUP_S)
        incoming = await drive(port, "incoming", SECONDS)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        import psycopg
        import redis

        client = redis.Redis.from_url(env["REDIS_URL"])
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(database_url).path[1:]}"')
    ratio = incoming["p99_ms"] / max(ping["p99_ms"], 0.001)
    goals = [
        {
            "name": "incoming p99 / trivial view p99",
            "value": round(ratio, 2),
            "op": "<=",
            "target": 5,
            "met": ratio <= 5,
        },
        {
            "name": "incoming p99 ms",
            "value": incoming["p99_ms"],
            "op": "<=",
            "target": 150,
            "met": incoming["p99_ms"] <= 150,
        },
    ]
    figures = {f"trivial_{k}": v for k, v in ping.items()}
    figures.update({f"incoming_{k}": v for k, v in incoming.items()})
    figures.update(rate_target=RATE, connections=CONNECTIONS, seconds=SECONDS)
    return {"benchmark": "webhooks", "figures": figures, "goals": goals}


if __name__ == "__main__":
    try:
        result = asyncio.run(main())
    except Exception as exc:  # a finding, not a crash
        result = {"benchmark": "webhooks", "figures": {"error": repr(exc)}, "goals": []}
    print(json.dumps(result))
    sys.exit(0)
