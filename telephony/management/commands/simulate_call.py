"""``listenline simulate-call``: one phone call from the Twilio simulator to a running
server (``listenline demo`` or ``serve``), with the simulator's REST API on a loopback
port for the server's call-outs to volunteers.

The server needs the same auth token (the demo's generated one is read from
``$LISTENLINE_HOME/twilio_demo_token``) and ``TWILIO_API_BASE_URL`` pointing at
``--rest-port`` (the demo does both by default).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from listenline.env import listenline_home
from telephony.demo import DEMO_ACCOUNT_SID, SIMULATOR_PORT, demo_token_path
from telephony.simulator import Phone, Simulator
from telephony.simulator.server import http_app, rest_server


class Command(BaseCommand):
    help = "Simulate one incoming phone call against a running Listenline server."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="from_", default="+31600000001")
        parser.add_argument("--to", default="", help="the number dialled (a branch's or national)")
        parser.add_argument("--press", default="", help="digits for the region menu")
        parser.add_argument("--hold", type=float, default=120.0, help="seconds to wait at most")
        parser.add_argument(
            "--talk", type=float, default=10.0, help="seconds to talk once answered"
        )
        parser.add_argument("--url", default="", help="server base URL (default PUBLIC_BASE_URL)")
        parser.add_argument("--token", default="", help="auth token (default: settings/demo file)")
        parser.add_argument("--rest-port", type=int, default=SIMULATOR_PORT)
        parser.add_argument("--volunteer-press", default="1", help="what volunteers press")
        parser.add_argument(
            "--volunteer-absent", action="store_true", help="volunteers don't answer"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._call(options))

    def _token(self, options: dict[str, Any]) -> str:
        if options["token"]:
            return str(options["token"])
        if settings.TWILIO_AUTH_TOKEN:
            return str(settings.TWILIO_AUTH_TOKEN)
        path = demo_token_path(listenline_home())
        return path.read_text(encoding="utf-8").strip() if path.exists() else ""

    async def _call(self, options: dict[str, Any]) -> None:
        base = options["url"] or settings.PUBLIC_BASE_URL or "http://127.0.0.1:8000"
        token = self._token(options)
        if not token:
            self.stderr.write("No auth token: start `listenline demo` first or pass --token.")
            return
        app, session = http_app(options["url"] or None)
        sim = Simulator(
            token=token,
            public_base_url=settings.PUBLIC_BASE_URL or base,
            app=app,
            account_sid=settings.TWILIO_ACCOUNT_SID
            or os.environ.get("TWILIO_ACCOUNT_SID", DEMO_ACCOUNT_SID),
        )

        class AnyPhone(dict[str, Phone]):
            def get(self, key: str, default: Any = None) -> Phone:  # type: ignore[override]
                return Phone(
                    answers=not options["volunteer_absent"], press=options["volunteer_press"]
                )

        sim.phones = AnyPhone()
        runner = await rest_server(sim, "127.0.0.1", options["rest_port"])
        try:
            to = options["to"] or settings.LINE_PHONE_NUMBER.replace(" ", "")
            call = await sim.incoming(from_=options["from_"], to=to, press=options["press"])
            self.stdout.write(f"call {call.sid}: {call.status}")
            start = last_tick = time.monotonic()
            answered_at: float | None = None
            while not call.over:
                await sim.settle()
                conference = sim.conference_of(call)
                now = time.monotonic()
                if conference is not None and conference.started and answered_at is None:
                    answered_at = now
                    self.stdout.write("answered by a volunteer")
                if answered_at is not None and now - answered_at >= options["talk"]:
                    break
                if answered_at is None and now - start >= options["hold"]:
                    self.stdout.write("caller gives up waiting")
                    break
                if answered_at is None and now - last_tick >= 60:
                    last_tick = now
                    await sim.hold_tick(call)
                await asyncio.sleep(0.2)
            await sim.hangup(call)
            await asyncio.sleep(0.5)
            await sim.settle()
            for text in call.heard:
                self.stdout.write(f"  caller heard: {text}")
            for leg in sim.outbound():
                self.stdout.write(f"  call-out {leg.sid}: {leg.status}")
            self.stdout.write(f"REST requests from the app: {len(sim.rest_log)}")
        finally:
            await session.close()
            await runner.cleanup()
