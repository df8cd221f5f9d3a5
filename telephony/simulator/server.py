"""The simulator over real HTTP: its REST API on a loopback port, webhooks to a server.

Used by ``listenline simulate-call`` against a running ``listenline demo`` (or serve):
the app must have ``TWILIO_API_BASE_URL`` pointing here and the same auth token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import ClientSession, ClientTimeout, web

from telephony.simulator.core import AppTransport, Simulator, basic_auth


def http_app(server_url: str | None = None) -> tuple[AppTransport, ClientSession]:
    """Post signed webhooks; ``server_url`` replaces the public origin (for a server that
    Twilio would reach through a proxy)."""
    session = ClientSession(timeout=ClientTimeout(total=15))

    async def send(url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        target = url
        if server_url:
            parts = urlsplit(url)
            target = (
                server_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
            )
        async with session.post(
            target, data=params, headers={"X-Twilio-Signature": signature}
        ) as response:
            return response.status, await response.text()

    return send, session


async def rest_server(sim: Simulator, host: str, port: int) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        status, text = sim.rest(
            request.method,
            str(request.url),
            body,
            basic_auth(request.headers.get("Authorization", "")),
        )
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/2010-04-01/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
