"""Benchmark: chat messages relayed through the production server, beside a raw relay.

``python benchmarks/chat_relay.py [--layer settings|core|pubsub] [--processes 1,2]``

Starts its own servers on free loopback ports against ``DATABASE_URL`` / ``REDIS_URL``:
a scratch PostgreSQL database (migrated, geography loaded, one chat volunteer with a
logged-in session per conversation, chat limit 1) and a Redis prefix of its own
(routing, chat store and channel layer; every key deleted at the end). The server is
``listenline serve --workers N`` for each N of ``--processes`` (``benchmarks/_common.py``),
with the channel layer of ``listenline/settings.py`` (or ``--layer``, which swaps only
the BACKEND).

One asyncio client (the ``websockets`` library) holds **both ends** of every
conversation: the caller's ``/ws/chat/`` socket and the volunteer's ``/ws/console/``
socket, set up through the real protocol (``sync``, ``presence`` available, caller
``start``, ``offer.accept``, ``joined``). Each side then sends ``message`` frames; the
latency is from just before the sender's ``send`` to the frame's arrival on the *other*
socket, both read from the same clock (no skew). The baseline, in the same run at the
same load, is ``benchmarks/_rawrelay.py``: a relay written directly on ``websockets``
that forwards each frame to the paired socket.

(a) light load: 10 conversations, each side sending once a second for 20 s.
(b) capacity: the total message rate is stepped up (more conversations, at most 1.5
    messages/s per side, under the protocol's 20 frames / 10 s per connection) until
    the p99 is 50 ms or more or fewer than 97% of the offered messages arrive in time;
    the highest passing rate is the capacity, per number of server processes.

With 2 cores the client, the servers and Redis share the machine: the client's own CPU
and the load average are in the figures. Prints one JSON line last; exits 0 even when a
goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _chatbench as cb  # noqa: E402
import _common as common  # noqa: E402
from _common import goal, machine, percentile, result_print  # noqa: E402

NAME = "chat_relay"
LIGHT_CONVERSATIONS, LIGHT_RATE_PER_SIDE, LIGHT_SECONDS = 10, 1.0, 20.0
MAX_PER_SIDE = 1.5  # messages/s per socket: 15 per 10 s + 3 set-up frames < 20
STEP_SECONDS, WARMUP_S, GRACE_S = 8.0, 2.0, 1.5
P99_LIMIT_MS = 50.0
DELIVERED_MIN = 0.97
DEADLINE_S = 540.0  # stop stepping so the whole run stays under 10 minutes
TEXT = "Hallo, ik wilde even met iemand praten over vandaag. "  # ~50 characters


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- measurement -------------------------------------------------------------------------
@dataclass
class Meter:
    """Send times of messages in flight, latencies of arrived ones, error frames."""

    pending: dict[str, float] = field(default_factory=dict)
    arrived: list[tuple[float, float]] = field(default_factory=list)  # (sent_at, latency)
    sent: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        lat = [lat * 1000 for sent, lat in self.arrived if t0 <= sent < t1]
        sent = sum(1 for s in self.sent if t0 <= s < t1)
        lost = sum(1 for s in self.pending.values() if t0 <= s < t1)
        seconds = t1 - t0
        return {
            "offered_msgs_s": round(sent / seconds, 1),
            "relayed_msgs_s": round(len(lat) / seconds, 1),
            "p50_ms": round(percentile(lat, 0.5), 2) if lat else None,
            "p99_ms": round(percentile(lat, 0.99), 2) if lat else None,
            "max_ms": round(max(lat), 2) if lat else None,
            "samples": len(lat),
            "late_or_lost": lost,
        }

    def reset(self) -> None:
        self.pending.clear()
        self.arrived.clear()
        self.sent.clear()


class End:
    """One socket of a conversation: reads every frame, answers what set-up needs."""

    def __init__(self, ws: Any, role: str, meter: Meter, raw: bool) -> None:
        self.ws = ws
        self.role = role  # "caller" / "volunteer"
        self.meter = meter
        self.raw = raw
        self.contact_id = ""
        self.seen: dict[str, dict[str, Any]] = {}
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.auto_accept = role == "volunteer" and not raw
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        meter = self.meter
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                if '"type":"message"' in raw:
                    frame = json.loads(raw)
                    if frame.get("from", "") != self.role:
                        sent_at = meter.pending.pop(frame["id"], None)
                        if sent_at is not None:
                            meter.arrived.append((sent_at, now - sent_at))
                    continue
                if '"type":"ack"' in raw or '"type":"queue"' in raw:
                    continue
                frame = json.loads(raw)
                kind = frame.get("type", "")
                if kind == "error":
                    meter.error(frame.get("code", "?"))
                elif kind == "offer" and self.auto_accept:
                    await self.send({"type": "offer.accept", "contact_id": frame["contact_id"]})
                elif kind == "contact" and frame.get("state") == "active":
                    self.contact_id = frame["contact_id"]
                self.seen[kind] = frame
                waiter = self.waiters.pop(kind, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dropped socket is counted, not fatal
            rcvd = getattr(exc, "rcvd", None)
            meter.error(f"closed:{getattr(rcvd, 'code', type(exc).__name__)}")
        else:
            code = getattr(self.ws, "close_code", None)
            meter.error(f"closed:{code}")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame, separators=(",", ":")))

    async def expect(self, kind: str, wait: float = 30.0) -> dict[str, Any]:
        if kind in self.seen:
            return self.seen.pop(kind)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters[kind] = future
        frame = await asyncio.wait_for(future, wait)
        self.seen.pop(kind, None)
        return frame

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)


@dataclass
class Conversation:
    caller: End
    volunteer: End


# --- set-up ------------------------------------------------------------------------------
async def raw_conversations(port: int, first: int, count: int, meter: Meter) -> list[Conversation]:
    async def one(i: int) -> Conversation:
        a = End(await cb.connect(f"ws://127.0.0.1:{port}/{i}/a"), "caller", meter, True)
        b = End(await cb.connect(f"ws://127.0.0.1:{port}/{i}/b"), "volunteer", meter, True)
        return Conversation(a, b)

    sem = asyncio.Semaphore(100)

    async def bounded(i: int) -> Conversation:
        async with sem:
            return await one(i)

    return list(await asyncio.gather(*(bounded(i) for i in range(first, first + count))))


async def chat_conversations(
    ports: list[int], sessions: list[str], first: int, count: int, meter: Meter
) -> list[Conversation]:
    """Conversations ``first`` … ``first+count-1`` through the real protocol: volunteer i
    goes on duty, a caller starts (each socket a new connection, which the kernel hands
    to any of the server's workers, so with several workers about half the
    conversations cross processes), routing offers, the volunteer accepts. Callers are
    paired to their volunteer by the alias in ``joined``."""
    n = len(ports)
    sem = asyncio.Semaphore(40)

    async def on_duty(i: int) -> End:
        port = ports[(i // n) % n]
        async with sem:
            ws = await cb.connect(
                f"ws://127.0.0.1:{port}/ws/console/",
                additional_headers={"Cookie": f"sessionid={sessions[i]}"},
            )
            end = End(ws, "volunteer", meter, False)
            await end.send({"type": "sync"})
            await end.expect("state")
            await end.send({"type": "presence", "channel": "chat", "state": "available"})
            await end.expect("presence")
            return end

    async def start(i: int) -> tuple[str, End]:
        port = ports[i % n]
        async with sem:
            end = End(await cb.connect(f"ws://127.0.0.1:{port}/ws/chat/"), "caller", meter, False)
            await end.send({"type": "start", "municipality": None})
            await end.expect("session")
            joined = await end.expect("joined", wait=60)
            return joined["alias"], end

    indices = range(first, first + count)
    volunteers = await asyncio.gather(*(on_duty(i) for i in indices))
    by_alias = {f"V{i:05d}": v for i, v in zip(indices, volunteers, strict=True)}
    callers = await asyncio.gather(*(start(i) for i in indices))
    conversations = []
    for alias, caller in callers:
        volunteer = by_alias[alias]
        for _ in range(300):
            if volunteer.contact_id:
                break
            await asyncio.sleep(0.1)
        conversations.append(Conversation(caller, volunteer))
    return conversations


# --- load ----------------------------------------------------------------------------------
async def _sender(end: End, per_side: float, stop: asyncio.Event, meter: Meter, raw: bool) -> None:
    interval = 1.0 / per_side
    await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - a phase, not a secret
    nxt = time.perf_counter()
    base = {"type": "message", "text": TEXT}
    if end.role == "volunteer" and not raw:
        base["contact_id"] = end.contact_id
    while not stop.is_set():
        mid = f"m{next(meter.ids)}"
        now = time.perf_counter()
        meter.pending[mid] = now
        meter.sent.append(now)
        try:
            await end.ws.send(json.dumps({**base, "id": mid}, separators=(",", ":")))
        except Exception:
            meter.error("send_failed")
            return
        # Open loop on a fixed schedule; never closer than 0.9 intervals (rate limit).
        nxt = max(nxt + interval, time.perf_counter() + 0.9 * interval)
        await asyncio.sleep(nxt - time.perf_counter())


def probes(cpu_probe: Any, redis_url: str) -> tuple[float, float, float]:
    """Server CPU seconds, this process's CPU seconds, Redis's CPU seconds."""
    return cpu_probe(), common.self_cpu_seconds(), common.redis_cpu_seconds(redis_url)


async def measure(
    conversations: list[Conversation],
    per_side: float,
    seconds: float,
    meter: Meter,
    raw: bool,
    cpu_probe: Any,
    redis_url: str,
) -> dict[str, Any]:
    meter.reset()
    # No collector pauses in the client while it measures: with hundreds of sockets its
    # full collections took 100+ ms, which would show as relay latency (for the raw
    # relay as much as for ours). What it holds so far is frozen; the rest is collected
    # after the step.
    gc.collect()
    gc.freeze()
    gc.disable()
    # Errors from before this step (sockets of a failed set-up, a stopped server) are
    # not this step's.
    meter.errors.clear()
    stop = asyncio.Event()
    ends = [e for c in conversations for e in (c.caller, c.volunteer)]
    tasks = [
        asyncio.get_running_loop().create_task(_sender(e, per_side, stop, meter, raw)) for e in ends
    ]
    try:
        await asyncio.sleep(WARMUP_S + 1.0 / per_side)
        # The probes block (a Redis INFO over a new connection): on a thread, so the
        # client keeps reading while they run instead of delaying what is in flight.
        t0, load0 = time.perf_counter(), os.getloadavg()[0]
        cpu0, client0, redis0 = await asyncio.to_thread(probes, cpu_probe, redis_url)
        await asyncio.sleep(seconds)
        t1 = time.perf_counter()
        cpu1, client1, redis1 = await asyncio.to_thread(probes, cpu_probe, redis_url)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(GRACE_S)
    gc.enable()
    out = meter.window(t0, t1)
    out.update(
        conversations=len(conversations),
        per_side_msgs_s=round(per_side, 3),
        server_cpu_cores=round((cpu1 - cpu0) / (t1 - t0), 2),
        client_cpu_cores=round((client1 - client0) / (t1 - t0), 2),
        redis_cpu_cores=round((redis1 - redis0) / (t1 - t0), 2),
        load_average_1m=round(max(load0, os.getloadavg()[0]), 2),
        errors=dict(meter.errors),
    )
    meter.errors.clear()
    return out


def passes(step: dict[str, Any]) -> bool:
    p99 = step.get("p99_ms")
    offered = step["offered_msgs_s"] or 1
    return (
        p99 is not None
        and p99 < P99_LIMIT_MS
        and step["relayed_msgs_s"] >= DELIVERED_MIN * offered
        and not any(k.startswith(("rate_limited", "closed", "send_failed")) for k in step["errors"])
    )


def per_side_for(rate: float) -> tuple[int, float]:
    conversations = math.ceil(rate / (2 * MAX_PER_SIDE))
    return conversations, rate / (2 * conversations)


async def capacity(
    label: str,
    steps: list[int],
    grow: Any,
    conversations: list[Conversation],
    meter: Meter,
    raw: bool,
    cpu_probe: Any,
    rss_probe: Any,
    redis_url: str,
    deadline: float,
) -> dict[str, Any]:
    """Step the total rate up; stop at the first failing step (after one refinement)."""
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    queue = list(steps)
    refined = False
    while queue:
        rate = queue.pop(0)
        if time.monotonic() > deadline:
            results.append({"target_msgs_s": rate, "skipped": "time"})
            break
        need, per_side = per_side_for(rate)
        if need > len(conversations):
            began = time.perf_counter()
            try:
                conversations.extend(await grow(len(conversations), need - len(conversations)))
            except Exception as exc:
                results.append({"target_msgs_s": rate, "setup_failed": repr(exc)[:200]})
                break
            took = time.perf_counter() - began
            log(f"{label}: {len(conversations)} conversations ({took:.1f} s)")
            await asyncio.sleep(1.0)
        step = await measure(
            conversations[:need], per_side, STEP_SECONDS, meter, raw, cpu_probe, redis_url
        )
        step = {"target_msgs_s": rate, **step, "server_rss_mb": round(rss_probe() / 1024, 1)}
        step["passed"] = passes(step)
        log(f"{label}: {json.dumps(step)}")
        results.append(step)
        if step["passed"]:
            best = step if best is None or rate > best["target_msgs_s"] else best
        elif not refined and best is not None and rate - best["target_msgs_s"] >= 100:
            refined = True
            queue = [int((rate + best["target_msgs_s"]) / 2 / 25) * 25]
        else:
            break
    return {"best": best, "steps": results}


async def layer_microbench(redis_url: str, prefix: str) -> dict[str, Any]:
    """Send → receive round trip inside one process through each layer, directly to a
    channel (``send``) and to a one-member group (``group_send``): the send method."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    hosts = [{"address": redis_url, "socket_timeout": None}]
    key = "k" * 44
    out: dict[str, Any] = {}
    for name, cls in (("core", RedisChannelLayer), ("pubsub", RedisPubSubChannelLayer)):
        layer = cls(hosts=hosts, prefix=f"{prefix}:micro:{name}", symmetric_encryption_keys=[key])
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.send(channel, {"type": "warm"})
        await layer.receive(channel)
        for method in ("send", "group_send"):
            lat = []
            for i in range(500):
                t = time.perf_counter()
                if method == "send":
                    await layer.send(channel, {"type": "x", "i": i, "text": TEXT})
                else:
                    await layer.group_send("g", {"type": "x", "i": i, "text": TEXT})
                await layer.receive(channel)
                lat.append((time.perf_counter() - t) * 1000)
            out[f"{name}_{method}_p50_ms"] = round(percentile(lat, 0.5), 3)
            out[f"{name}_{method}_p99_ms"] = round(percentile(lat, 0.99), 3)
        await layer.group_discard("g", channel)
        with contextlib.suppress(Exception):
            await layer.flush()
        with contextlib.suppress(Exception):
            await layer.close_pools() if hasattr(layer, "close_pools") else None
    return out


# --- the run -------------------------------------------------------------------------------
async def run(args: argparse.Namespace, figures: dict[str, Any]) -> list[dict[str, Any]]:
    started = time.monotonic()
    deadline = started + DEADLINE_S
    figures["open_files_limit"] = common.raise_nofile()
    redis_url = os.environ.get("REDIS_URL", common.REDIS_DEFAULT)
    base_db = os.environ.get("DATABASE_URL", common.DATABASE_DEFAULT)
    processes = [int(p) for p in args.processes.split(",")]
    steps = [int(s) for s in args.steps.split(",")]
    run_prefix = f"llbench:relay:{os.getpid()}"
    volunteers = max(per_side_for(max(steps))[0], LIGHT_CONVERSATIONS)
    figures.update(
        layer=args.layer,
        layer_backend=cb.LAYERS[args.layer] or "listenline/settings.py CHANNEL_LAYERS",
        max_msgs_s_per_socket=MAX_PER_SIDE,
        step_seconds=STEP_SECONDS,
        shared_machine="client, servers, Redis and PostgreSQL share the 2 cores",
    )
    database_url, admin = common.database_create(base_db, "relay")
    raw_server = cb.RawServer()
    servers: common.Server | None = None
    tmp = cb.settings_tempdir()
    ends: list[Conversation] = []
    prefixes: list[str] = []
    try:
        began = time.perf_counter()
        env = cb.chat_server_env(
            database_url=database_url,
            redis_url=redis_url,
            prefix=f"{run_prefix}:setup",
            layer=args.layer,
            settings_dir=Path(tmp.name),
        )
        sessions = cb.database_prepare(env, volunteers)
        figures["setup_s"] = round(time.perf_counter() - began, 1)
        raw_server.start()
        meter = Meter()

        # (a) light load, and the start of (b), per process count.
        capacity_by_processes: dict[str, Any] = {}
        for count in processes:
            prefix = f"{run_prefix}:p{count}"
            prefixes.append(prefix)
            env = cb.chat_server_env(
                database_url=database_url,
                redis_url=redis_url,
                prefix=prefix,
                layer=args.layer,
                settings_dir=Path(tmp.name),
            )
            servers = common.Server(env, workers=count).start()
            srv = servers
            conversations: list[Conversation] = []
            ends = conversations

            async def grow(first: int, n: int, srv: common.Server = srv) -> list[Conversation]:
                return await chat_conversations(srv.ports, sessions, first, n, meter)

            conversations.extend(await grow(0, LIGHT_CONVERSATIONS))
            if count == processes[0]:
                light = await measure(
                    conversations,
                    LIGHT_RATE_PER_SIDE,
                    LIGHT_SECONDS,
                    meter,
                    False,
                    srv.cpu,
                    redis_url,
                )
                light["server_rss_mb"] = round(srv.rss_kb() / 1024, 1)
                light["server_processes"] = count
                figures["light_chat"] = light
                log(f"light chat: {json.dumps(light)}")
                raw_light_convs = await raw_conversations(
                    raw_server.port, 0, LIGHT_CONVERSATIONS, meter
                )
                raw_light = await measure(
                    raw_light_convs,
                    LIGHT_RATE_PER_SIDE,
                    LIGHT_SECONDS,
                    meter,
                    True,
                    raw_server.cpu,
                    redis_url,
                )
                raw_light["server_rss_mb"] = round(raw_server.rss_kb() / 1024, 1)
                figures["light_raw"] = raw_light
                log(f"light raw: {json.dumps(raw_light)}")
                for c in raw_light_convs:
                    await c.caller.close()
                    await c.volunteer.close()
            capacity_by_processes[str(count)] = await capacity(
                f"chat x{count}",
                steps,
                grow,
                conversations,
                meter,
                False,
                srv.cpu,
                srv.rss_kb,
                redis_url,
                deadline,
            )
            for c in conversations:
                await c.caller.close()
                await c.volunteer.close()
            ends = []
            servers.stop()
            servers = None
            common.redis_cleanup(redis_url, prefix)
        figures["capacity_chat"] = capacity_by_processes

        # (b) the baseline at the same steps, up to one above the best production step.
        raw_steps = steps
        raw_convs: list[Conversation] = []
        ends = raw_convs

        async def raw_grow(first: int, n: int) -> list[Conversation]:
            return await raw_conversations(raw_server.port, 1000 + first, n, meter)

        figures["capacity_raw"] = await capacity(
            "raw",
            raw_steps,
            raw_grow,
            raw_convs,
            meter,
            True,
            raw_server.cpu,
            raw_server.rss_kb,
            redis_url,
            deadline + 30,
        )
        for c in raw_convs:
            await c.caller.close()
            await c.volunteer.close()
        ends = []
        figures["layer_roundtrip"] = await layer_microbench(redis_url, run_prefix)
    finally:
        for c in ends:
            await c.caller.close()
            await c.volunteer.close()
        if servers is not None:
            servers.stop()
        raw_server.stop()
        deleted = common.redis_cleanup(redis_url, run_prefix)
        figures["redis_keys_deleted_at_end"] = deleted
        with contextlib.suppress(Exception):
            common.database_drop(database_url, admin)
        tmp.cleanup()
        figures["run_s"] = round(time.monotonic() - started, 1)

    return goals(figures)


def goals(figures: dict[str, Any]) -> list[dict[str, Any]]:
    light, raw = figures.get("light_chat", {}), figures.get("light_raw", {})
    ratio = math.nan
    if light.get("p99_ms") and raw.get("p99_ms"):
        ratio = light["p99_ms"] / raw["p99_ms"]
    figures["light_p99_ratio_to_raw"] = round(ratio, 2) if math.isfinite(ratio) else None
    best, best_processes = 0.0, None
    for count, result in figures.get("capacity_chat", {}).items():
        if result["best"] and result["best"]["target_msgs_s"] > best:
            best, best_processes = result["best"]["target_msgs_s"], int(count)
            figures["capacity_best"] = {"server_processes": best_processes, **result["best"]}
    figures["capacity_msgs_s"] = best
    raw_best = (figures.get("capacity_raw") or {}).get("best") or {}
    figures["capacity_raw_msgs_s"] = raw_best.get("target_msgs_s")
    return [
        goal(
            "light load: chat p99 / raw relay p99",
            figures["light_p99_ratio_to_raw"]
            if figures["light_p99_ratio_to_raw"] is not None
            else math.nan,
            "<=",
            5,
        ),
        goal("capacity: relayed msgs/s with p99 < 50 ms", best, ">=", 2000),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", choices=sorted(cb.LAYERS), default="settings")
    parser.add_argument("--processes", default="1,2", help="server process counts to try")
    parser.add_argument("--steps", default="25,50,100,200,300,500,750,1000,1500,2000,3000")
    args = parser.parse_args()
    figures: dict[str, Any] = {"machine": machine()}
    goals_: list[dict[str, Any]] = []
    try:
        goals_ = asyncio.run(run(args, figures))
    except Exception as exc:  # a finding, not a crash
        figures["error"] = repr(exc)[:500]
        goals_ = goals(figures) if "light_chat" in figures else []
    figures["load_average_1m_end"] = common.load_average()
    result_print(NAME, figures, goals_)
    sys.exit(0)


if __name__ == "__main__":
    main()
