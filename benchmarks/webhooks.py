"""Benchmark: the incoming-call webhook under load, against a trivial view on the same server.

``python benchmarks/webhooks.py [--workers 1,2]``

Starts ``listenline serve --workers N`` (production settings: PostgreSQL from
``DATABASE_URL`` in a scratch database, Redis from ``REDIS_URL`` under a prefix of its
own; ``benchmarks/_common.py``) on a free loopback port, for each N asked for, and drives
200 requests/s from 32 keep-alive connections (open loop: a request's latency runs from
its scheduled time, so waiting for a free connection counts) at

* the baseline: ``GET /twilio/ping/``, a trivial async view mounted only with
  ``LISTENLINE_BENCHMARK_VIEW=1``;
* ``POST /twilio/voice/incoming/``: signature check, fair-use check, enqueue, TwiML
  (each request a new CallSid and caller number, dialling a branch's local number).

The load client is a minimal HTTP/1.1 client on asyncio streams with every request
built and signed before the clock starts, so that it takes as little as possible of the
two cores it shares with the server, Redis and PostgreSQL; its CPU, the servers' and
Redis's are in the figures, per request. The goals are judged on the last worker count
(default: one per core). Prints one JSON line last. Exit status 0 even when a goal is
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402
from _common import goal, machine, percentile, result_print  # noqa: E402

NAME = "webhooks"
RATE, CONNECTIONS, SECONDS, WARMUP_S = 200, 32, 20, 3
TOKEN = secrets.token_hex(16)
ACCOUNT = "AC" + "b" * 32
BRANCH_NUMBER = "+31301119999"
INCOMING = "/twilio/voice/incoming/"


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- requests, built before the clock starts -------------------------------------------
def ping_request(port: int) -> bytes:
    return f"GET /twilio/ping/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def incoming_request(port: int) -> bytes:
    """A signed incoming call: a new CallSid and caller number each time."""
    from twilio.request_validator import RequestValidator

    caller = f"+316{secrets.randbelow(10**8):08d}"
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": "CA" + secrets.token_hex(16),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": caller,
        "Caller": caller,
        "To": BRANCH_NUMBER,
        "Called": BRANCH_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    # PUBLIC_BASE_URL is http://127.0.0.1:<port>: Twilio signs the URL it was given.
    signature = RequestValidator(TOKEN).compute_signature(
        f"http://127.0.0.1:{port}{INCOMING}", params
    )
    body = urlencode(params).encode()
    head = (
        f"POST {INCOMING} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n\r\n"
    )
    return head.encode() + body


# --- the load client -------------------------------------------------------------------
async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""
    while headers.get("transfer-encoding", "").lower() == "chunked":
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            break
        body += chunk[:-2]
    return status, body


async def drive(port: int, requests: list[bytes], expect: bytes) -> dict[str, Any]:
    """Send ``requests`` at RATE per second over CONNECTIONS keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (item := await queue.get()) is not None:
                scheduled, request = item
                try:
                    writer.write(request)
                    status, body = await read_response(reader)
                    ok = status == 200 and expect in body
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - scheduled)
                errors += not ok
        finally:
            writer.close()

    connections = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    began = time.perf_counter()
    for i, request in enumerate(requests):
        at = began + i / RATE
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((at, request))
    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections)
    elapsed = time.perf_counter() - began
    return {
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "requests": len(latencies),
    }


async def phase(server: common.Server, redis_url: str, make: Any, expect: bytes) -> dict[str, Any]:
    """Warm up, then measure: latency, throughput and CPU per request of each side."""
    port = server.port
    await drive(port, [make(port) for _ in range(RATE * WARMUP_S)], expect)
    requests = [make(port) for _ in range(RATE * SECONDS)]
    cpu0, client0 = server.cpu(), common.self_cpu_seconds()
    redis0, load0 = common.redis_cpu_seconds(redis_url), os.getloadavg()[0]
    result = await drive(port, requests, expect)
    n = max(result["requests"], 1)
    result.update(
        server_cpu_ms_per_request=round((server.cpu() - cpu0) * 1000 / n, 2),
        client_cpu_ms_per_request=round((common.self_cpu_seconds() - client0) * 1000 / n, 2),
        redis_cpu_ms_per_request=round(
            (common.redis_cpu_seconds(redis_url) - redis0) * 1000 / n, 2
        ),
        load_average_1m=round(max(load0, os.getloadavg()[0]), 2),
    )
    return result


async def run(worker_counts: list[int], figures: dict[str, Any]) -> None:
    redis_url = os.environ.get("REDIS_URL", common.REDIS_DEFAULT)
    base_db = os.environ.get("DATABASE_URL", common.DATABASE_DEFAULT)
    database_url, admin = common.database_create(base_db, "webhooks")
    run_prefix = f"llbench:webhooks:{os.getpid()}"
    server: common.Server | None = None
    try:
        setup_env = common.server_env(
            database_url=database_url, redis_url=redis_url, prefix=f"{run_prefix}:setup"
        )
        common.database_setup(
            setup_env,
            "from volunteers.models import Branch\n"
            "Branch.objects.filter(slug='utrecht')"
            f".update(local_phone_number='{BRANCH_NUMBER}')\n",
        )
        for workers in worker_counts:
            port = common.free_port()
            env = common.server_env(
                database_url=database_url,
                redis_url=redis_url,
                prefix=f"{run_prefix}:w{workers}",
                PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                TWILIO_AUTH_TOKEN=TOKEN,
                TWILIO_ACCOUNT_SID=ACCOUNT,
                TWILIO_API_BASE_URL="http://127.0.0.1:9",  # nothing listens: no REST calls
                LISTENLINE_BENCHMARK_VIEW="1",
                FAIR_USE_LIMIT="4",
            )
            server = common.Server(env, workers=workers, port=port).start()
            trivial = await phase(server, redis_url, ping_request, b"ok")
            log(f"{workers} worker(s), trivial: {trivial}")
            incoming = await phase(server, redis_url, incoming_request, b"<Conference")
            log(f"{workers} worker(s), incoming: {incoming}")
            figures[f"workers_{workers}"] = {"trivial": trivial, "incoming": incoming}
            server.stop()
            server = None
    finally:
        if server is not None:
            server.stop()
        figures["redis_keys_deleted_at_end"] = common.redis_cleanup(redis_url, run_prefix)
        common.database_drop(database_url, admin)


def goals(figures: dict[str, Any], workers: int) -> list[dict[str, Any]]:
    measured = figures.get(f"workers_{workers}", {})
    trivial, incoming = measured.get("trivial", {}), measured.get("incoming", {})
    p99, base = incoming.get("p99_ms", float("nan")), trivial.get("p99_ms", float("nan"))
    ratio = p99 / max(base, 0.001)
    # The headline figures, as the first version of this benchmark printed them.
    figures.update({f"trivial_{k}": v for k, v in trivial.items()})
    figures.update({f"incoming_{k}": v for k, v in incoming.items()})
    figures.update(workers=workers, rate_target=RATE, connections=CONNECTIONS, seconds=SECONDS)
    return [
        goal("incoming p99 / trivial view p99", round(ratio, 2), "<=", 5),
        goal("incoming p99 ms", p99, "<=", 150),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="listenline serve --workers, each")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    figures: dict[str, Any] = {"machine": machine()}
    try:
        asyncio.run(run(worker_counts, figures))
    except Exception as exc:  # a finding, not a crash
        figures["error"] = repr(exc)[:500]
    goals_ = goals(figures, worker_counts[-1])
    figures["load_average_1m_end"] = common.load_average()
    result_print(NAME, figures, goals_)
    sys.exit(0)


if __name__ == "__main__":
    main()
