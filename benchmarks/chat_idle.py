"""Benchmark: how many waiting chat callers one server process holds, and what they cost.

``python benchmarks/chat_idle.py [--layer settings|core|pubsub] [--target 10000]``

Waiting callers only hold their socket and receive queue updates. This starts
``listenline serve`` with one worker (``benchmarks/_common.py``; production settings:
PostgreSQL from ``DATABASE_URL`` in a scratch database, Redis from ``REDIS_URL`` under a
prefix of its own, the channel layer of ``listenline/settings.py`` or ``--layer``), with
nobody on duty, and steps the number of callers up to ``--target``: each connects to
``/ws/chat/``, sends ``start`` and waits for its ``session`` and first ``queue`` frame.
At each step: the server's RSS (``/proc/<pid>/status``) and its growth per caller.
At the top: the server's CPU over 10 s of idling (``/proc/<pid>/stat``), and over one
whole queue-refresh period (``CHAT_QUEUE_REFRESH_S``: every waiting caller is sent its
place at least that often, so a 10 s window may or may not contain that work), and how
many sockets are still open after it (the channels-redis idle-drop trap needs > 10 s).

Baseline in the same run: the same number of plain connections to a server written
directly on ``websockets`` (``benchmarks/_rawrelay.py``), its RSS per connection and
idle CPU. The open-file limit is raised to the hard limit for the client and servers.
With 2 cores the client and the server share the machine; the load average is in the
figures. Prints one JSON line last; exits 0 even when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _chatbench as cb  # noqa: E402
import _common as common  # noqa: E402
from _common import goal, machine, result_print  # noqa: E402

NAME = "chat_idle"
STEPS = (1000, 2500, 5000, 7500, 10000)
IDLE_S = 10.0
REFRESH_S = 30.0  # CHAT_QUEUE_REFRESH_S, the default in listenline/settings.py
RAMP_DEADLINE_S = 330.0  # stop adding callers after this; the run stays under 10 minutes
CONCURRENCY = 100


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Holder:
    """Sockets that only read: counts frames (queue updates) and closes."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.frames = 0
        self.queue_frames = 0
        self.closed: dict[str, int] = {}
        self.failed: dict[str, int] = {}

    def hold(self, ws: Any) -> None:
        self.sockets.append(ws)
        self.readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self.frames += 1
                if '"type":"queue"' in raw:
                    self.queue_frames += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            rcvd = getattr(exc, "rcvd", None)
            self._count(self.closed, str(getattr(rcvd, "code", type(exc).__name__)))
            return
        self._count(self.closed, str(getattr(ws, "close_code", None)))

    @staticmethod
    def _count(table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    @property
    def open(self) -> int:
        return len(self.sockets) - sum(self.closed.values())

    async def close_all(self) -> None:
        for task in self.readers:
            task.cancel()
        sem = asyncio.Semaphore(500)

        async def one(ws: Any) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)

        await asyncio.gather(*(one(ws) for ws in self.sockets))
        self.sockets, self.readers = [], []


async def add_callers(port: int, holder: Holder, count: int) -> None:
    """``count`` more waiting callers: connect, ``start``, wait for session and queue."""
    import json

    sem = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with sem:
            try:
                ws = await cb.connect(f"ws://127.0.0.1:{port}/ws/chat/")
                await ws.send(json.dumps({"type": "start", "municipality": None}))
                seen: set[str] = set()
                while not {"session", "queue"} <= seen:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    seen.add(frame.get("type"))
                    if frame.get("type") == "error":
                        raise RuntimeError(frame.get("code"))
            except Exception as exc:
                Holder._count(holder.failed, type(exc).__name__ + ":" + str(exc)[:40])
                return
            holder.hold(ws)

    await asyncio.gather(*(one() for _ in range(count)))


async def add_raw(port: int, holder: Holder, count: int) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            try:
                holder.hold(await cb.connect(f"ws://127.0.0.1:{port}/idle{i}/a"))
            except Exception as exc:
                Holder._count(holder.failed, type(exc).__name__)

    await asyncio.gather(*(one(i) for i in range(count)))


async def idle_cpu(cpu_probe: Any, seconds: float) -> float:
    c0, t0 = cpu_probe(), time.monotonic()
    await asyncio.sleep(seconds)
    return round((cpu_probe() - c0) / (time.monotonic() - t0), 4)


async def run(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    started = time.monotonic()
    figures["open_files_limit"] = common.raise_nofile()
    redis_url = os.environ.get("REDIS_URL", common.REDIS_DEFAULT)
    base_db = os.environ.get("DATABASE_URL", common.DATABASE_DEFAULT)
    steps = [s for s in STEPS if s < args.target] + [args.target]
    prefix = f"llbench:idle:{os.getpid()}"
    figures.update(
        layer=args.layer,
        layer_backend=cb.LAYERS[args.layer] or "listenline/settings.py CHANNEL_LAYERS",
        target_callers=args.target,
        server_processes=1,
        shared_machine="client, server, Redis and PostgreSQL share the 2 cores",
    )
    database_url, admin = common.database_create(base_db, "idle")
    tmp = cb.settings_tempdir()
    raw_server = cb.RawServer()
    servers: common.Server | None = None
    holder = Holder()
    try:
        env = cb.chat_server_env(
            database_url=database_url,
            redis_url=redis_url,
            prefix=prefix,
            layer=args.layer,
            settings_dir=Path(tmp.name),
        )
        cb.database_prepare(env, 0)

        # Baseline: plain websockets connections, held idle.
        raw_server.start()
        await asyncio.sleep(0.5)
        rss0 = raw_server.rss_kb()
        began = time.monotonic()
        await add_raw(raw_server.port, holder, args.target)
        raw_ramp = time.monotonic() - began
        await asyncio.sleep(1.0)
        rss1 = raw_server.rss_kb()
        raw_cpu = await idle_cpu(raw_server.cpu, IDLE_S)
        figures["raw"] = {
            "connections": holder.open,
            "failed": holder.failed,
            "ramp_s": round(raw_ramp, 1),
            "rss_mb": round(rss1 / 1024, 1),
            "rss_kb_per_connection": round((rss1 - rss0) / max(holder.open, 1), 1),
            "idle_cpu_cores_10s": raw_cpu,
        }
        log(f"raw: {figures['raw']}")
        await holder.close_all()
        raw_server.stop()

        # The production server, stepped up.
        holder = Holder()
        servers = common.Server(env, workers=1).start()
        port = servers.ports[0]
        await add_callers(port, holder, 10)  # warm: imports, pools, per-process tasks
        await asyncio.sleep(2.0)
        base_rss, base_n = servers.rss_kb(), holder.open
        results = []
        for target in steps:
            if time.monotonic() - started > RAMP_DEADLINE_S:
                results.append({"target": target, "skipped": "time"})
                break
            began = time.monotonic()
            c0 = servers.cpu()
            await add_callers(port, holder, target - holder.open)
            ramp = time.monotonic() - began
            await asyncio.sleep(1.0)
            rss = servers.rss_kb()
            step = {
                "callers": holder.open,
                "ramp_s": round(ramp, 1),
                "ramp_server_cpu_cores": round((servers.cpu() - c0) / max(ramp + 1.0, 0.1), 2),
                "server_rss_mb": round(rss / 1024, 1),
                "rss_kb_per_caller": round((rss - base_rss) / max(holder.open - base_n, 1), 1),
                "failed": dict(holder.failed),
                "load_average_1m": common.load_average(),
            }
            log(f"chat: {step}")
            results.append(step)
            if holder.failed:
                break
        figures["steps"] = results
        held = [r for r in results if "callers" in r]
        top = held[-1] if held else {}
        figures["callers_held"] = top.get("callers", 0)
        figures["rss_kb_per_caller"] = top.get("rss_kb_per_caller")
        figures["server_rss_mb"] = top.get("server_rss_mb")

        # Idle: nothing changes; callers get their place every REFRESH_S.
        await asyncio.sleep(3.0)
        frames0 = holder.queue_frames
        figures["idle_cpu_cores_10s"] = await idle_cpu(servers.cpu, IDLE_S)
        if time.monotonic() - started < 600 - REFRESH_S - 60:
            figures["idle_cpu_cores_refresh_period"] = await idle_cpu(servers.cpu, REFRESH_S + 1.0)
            figures["idle_window_s"] = IDLE_S + REFRESH_S + 1.0
        else:
            figures["idle_window_s"] = IDLE_S
        figures["queue_frames_while_idle"] = holder.queue_frames - frames0
        figures["open_after_idle"] = holder.open
        figures["closed_while_idle"] = dict(holder.closed)
    finally:
        await holder.close_all()
        if servers is not None:
            servers.stop()
        raw_server.stop()
        figures["redis_keys_deleted_at_end"] = common.redis_cleanup(redis_url, prefix)
        with contextlib.suppress(Exception):
            common.database_drop(database_url, admin)
        tmp.cleanup()
        figures["load_average_1m_end"] = common.load_average()
        figures["run_s"] = round(time.monotonic() - started, 1)


def goals(figures: dict[str, Any], target: int) -> list[dict[str, Any]]:
    raw = figures.get("raw") or {}
    ratio = float("nan")
    if figures.get("rss_kb_per_caller") and raw.get("rss_kb_per_connection"):
        ratio = figures["rss_kb_per_caller"] / raw["rss_kb_per_connection"]
    figures["rss_ratio_to_raw"] = round(ratio, 2) if ratio == ratio else None
    idle = figures.get("idle_cpu_cores_refresh_period", figures.get("idle_cpu_cores_10s"))
    held = figures.get("callers_held", 0)
    return [
        goal("waiting callers held by one process", held, ">=", target),
        goal("memory per waiting caller / raw connection", ratio, "<=", 3),
        goal(
            "idle CPU, fraction of a core (over a whole refresh period)",
            idle if idle is not None else float("nan"),
            "<=",
            0.1,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", choices=sorted(cb.LAYERS), default="settings")
    parser.add_argument("--target", type=int, default=10000)
    args = parser.parse_args()
    figures: dict[str, Any] = {"machine": machine()}
    try:
        asyncio.run(run(args, figures))
    except Exception as exc:  # a finding, not a crash
        figures["error"] = repr(exc)[:500]
    result_print(NAME, figures, goals(figures, args.target))
    sys.exit(0)


if __name__ == "__main__":
    main()
