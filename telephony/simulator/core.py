"""The simulator's state machine: calls, conferences, TwiML, status callbacks, REST.

Time is explicit: nothing waits on a clock. ``settle()`` runs everything that follows
from the last action (ringing a call the app created, answering it, pressing keys,
fetching TwiML) until the world is quiet. A conference's wait loop is fetched once on
entry; ``hold_tick()`` plays the next minute of it.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import xml.etree.ElementTree as ET  # noqa: S405 - we parse our own app's TwiML
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

from twilio.request_validator import RequestValidator

#: Sends a signed webhook: (absolute URL, params, signature) -> (status, body).
AppTransport = Callable[[str, dict[str, str], str], Awaitable[tuple[int, str]]]
TERMINAL = ("completed", "busy", "failed", "no-answer", "canceled")


@dataclass
class Phone:
    """How a number the app calls behaves."""

    answers: bool = True
    press: str = "1"  # digits pressed at the first Gather ("" = none)
    busy: bool = False


@dataclass
class SimCall:
    sid: str
    from_: str
    to: str
    direction: str
    status: str = "queued"
    status_callback: str = ""
    status_events: tuple[str, ...] = ("completed",)
    url: str = ""  # TwiML to fetch on answer (outbound)
    extra: dict[str, str] = field(default_factory=dict)  # caller-detail fields
    heard: list[str] = field(default_factory=list)
    presses: list[str] = field(default_factory=list)
    conference: str = ""
    conf_opts: dict[str, str] = field(default_factory=dict)
    after_dial: list[ET.Element] = field(default_factory=list)
    after_dial_base: str = ""
    wait_url: str = ""
    participant: dict[str, str] | None = None  # joins this conference when answered
    deleted: bool = False
    sequence: itertools.count = field(default_factory=itertools.count)

    @property
    def over(self) -> bool:
        return self.status in TERMINAL


@dataclass
class Conference:
    name: str
    members: list[str] = field(default_factory=list)
    started: bool = False
    ended: int = 0  # times it ended (a name is reused after it ends)


class Simulator:
    def __init__(
        self,
        *,
        token: str,
        public_base_url: str,
        app: AppTransport,
        account_sid: str = "AC" + "0" * 32,
        status_callback_path: str = "/twilio/voice/status/",
        voice_path: str = "/twilio/voice/incoming/",
        settle_hook: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.token, self.base = token, public_base_url.rstrip("/")
        self.app, self.account_sid = app, account_sid
        self.voice_url = self.base + voice_path
        self.status_url = self.base + status_callback_path
        self.settle_hook = settle_hook
        self.calls: dict[str, SimCall] = {}
        self.conferences: dict[str, Conference] = {}
        self.phones: dict[str, Phone] = {}
        self.rest_log: list[tuple[str, str, dict[str, list[str]]]] = []
        self.webhooks: list[tuple[str, int]] = []  # (url without query, status)
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._lock = threading.Lock()

    # --- webhooks ------------------------------------------------------------------------
    def sign(self, url: str, params: dict[str, str]) -> str:
        return RequestValidator(self.token).compute_signature(url, params)

    def _params(self, call: SimCall, **more: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Direction": call.direction,
            "From": call.from_,
            "To": call.to,
            "Caller": call.from_,
            "Called": call.to,
        }
        params.update(call.extra)
        params.update(more)
        return params

    async def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        status, body = await self.app(url, params, self.sign(url, params))
        self.webhooks.append((url.split("?")[0], status))
        return status, body

    async def _status(self, call: SimCall, event: str) -> None:
        url = call.status_callback or (self.status_url if call.direction == "inbound" else "")
        if not url or (call.direction != "inbound" and event not in call.status_events):
            return
        more = {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(next(call.sequence)),
            "Timestamp": "Thu, 01 Jan 2026",
        }
        if call.over:
            more["CallDuration"] = "60"
        await self.post(url, self._params(call, **more))

    # --- the driver's actions ------------------------------------------------------------
    async def incoming(
        self, *, from_: str, to: str, extra: dict[str, str] | None = None, press: str = ""
    ) -> SimCall:
        """Someone dials one of the line's numbers."""
        call = SimCall(
            "CA" + secrets.token_hex(16),
            from_,
            to,
            "inbound",
            status="ringing",
            extra=dict(extra or {}),
        )
        if press:
            call.presses.append(press)
        self.calls[call.sid] = call
        status, body = await self.post(self.voice_url, self._params(call))
        if status != 200:
            call.heard.append(f"[webhook {status}]")
            await self._finish(call, "failed")
            return call
        call.status = "in-progress"
        await self._run(call, body, self.voice_url)
        await self.settle()
        return call

    async def hangup(self, call: SimCall) -> None:
        """That party puts the phone down."""
        if not call.over:
            await self._finish(call, "completed")
        await self.settle()

    async def hold_tick(self, call: SimCall) -> None:
        """A minute of the conference wait loop passes: fetch the wait URL again."""
        conf = self.conferences.get(call.conference)
        if call.wait_url and conf is not None and not conf.started and not call.over:
            await self._wait_music(call)
        await self.settle()

    async def settle(self) -> None:
        while True:
            if self.settle_hook is not None:
                await self.settle_hook()
            with self._lock:
                action = self._pending.pop(0) if self._pending else None
            if action is None:
                if self.settle_hook is None:
                    return
                await self.settle_hook()
                with self._lock:
                    if not self._pending:
                        return
                continue
            await action()

    # --- TwiML ---------------------------------------------------------------------------
    async def _fetch(self, call: SimCall, url: str, **more: str) -> str | None:
        status, body = await self.post(url, self._params(call, **more))
        return body if status == 200 else None

    async def _run(self, call: SimCall, document: str, base: str) -> None:
        try:
            root = ET.fromstring(document)  # noqa: S314
        except ET.ParseError:
            call.heard.append("[invalid TwiML]")
            await self._finish(call, "failed")
            return
        await self._verbs(call, list(root), base)

    async def _verbs(self, call: SimCall, verbs: list[ET.Element], base: str) -> None:
        for index, verb in enumerate(verbs):
            if call.over:
                return
            tag = verb.tag
            if tag == "Say":
                call.heard.append((verb.text or "").strip())
            elif tag == "Play":
                call.heard.append("[music]")
            elif tag in ("Pause", "Record"):
                continue  # time is explicit; never record
            elif tag == "Hangup":
                await self._finish(call, "completed")
                return
            elif tag == "Redirect":
                url = urljoin(base, (verb.text or "").strip())
                body = await self._fetch(call, url)
                if body is not None:
                    await self._run(call, body, url)
                return
            elif tag == "Gather":
                for inner in verb:
                    if inner.tag == "Say":
                        call.heard.append((inner.text or "").strip())
                if call.presses:
                    digits = call.presses.pop(0)
                    url = urljoin(base, verb.get("action") or base)
                    body = await self._fetch(call, url, Digits=digits)
                    if body is not None:
                        await self._run(call, body, url)
                    return
            elif tag == "Dial":
                conf = verb.find("Conference")
                if conf is not None:
                    call.after_dial, call.after_dial_base = verbs[index + 1 :], base
                    await self._join(call, (conf.text or "").strip(), dict(conf.attrib), base)
                    return
                number = verb.find("Number")
                call.heard.append(f"[dial {'number' if number is not None else '?'}]")
            else:  # Enqueue, Queue, ... are not used by the app: treat as the end
                call.heard.append(f"[unsupported {tag}]")
        if not call.over and not call.conference:
            await self._finish(call, "completed")  # end of the document hangs up

    # --- conferences ---------------------------------------------------------------------
    async def _join(self, call: SimCall, name: str, opts: dict[str, str], base: str) -> None:
        conf = self.conferences.setdefault(name, Conference(name))
        conf.members.append(call.sid)
        call.conference, call.conf_opts = name, opts
        call.wait_url = urljoin(base, opts["waitUrl"]) if opts.get("waitUrl") else ""
        if opts.get("startConferenceOnEnter", "true") == "true":
            conf.started = True
        elif not conf.started and call.wait_url:
            await self._wait_music(call)

    async def _wait_music(self, call: SimCall) -> None:
        body = await self._fetch(call, call.wait_url)
        if body is None:
            return
        for verb in ET.fromstring(body):  # noqa: S314
            if verb.tag == "Say":
                call.heard.append((verb.text or "").strip())
            elif verb.tag == "Play":
                call.heard.append("[music]")
            elif verb.tag not in ("Pause", "Redirect"):
                call.heard.append(f"[not allowed in waitUrl: {verb.tag}]")

    async def _leave(self, call: SimCall, *, continue_twiml: bool) -> None:
        conf = self.conferences.get(call.conference)
        if conf is None or call.sid not in conf.members:
            return
        conf.members.remove(call.sid)
        call.conference, rest = "", call.after_dial
        call.after_dial = []
        if call.conf_opts.get("endConferenceOnExit") == "true" or not conf.members:
            await self._end_conference(conf)
        if continue_twiml and not call.over:
            await self._verbs(call, rest, call.after_dial_base)

    async def _end_conference(self, conf: Conference) -> None:
        members, conf.members = list(conf.members), []
        conf.started, conf.ended = False, conf.ended + 1
        for sid in members:
            other = self.calls[sid]
            other.conference, rest = "", other.after_dial
            other.after_dial = []
            if other.participant is not None:
                await self._finish(other, "completed")
            else:
                await self._verbs(other, rest, other.after_dial_base)

    async def _finish(self, call: SimCall, status: str) -> None:
        if call.over:
            return
        call.status = status
        if call.conference:
            await self._leave(call, continue_twiml=False)
        await self._status(call, "completed")

    # --- outbound calls (from REST) ------------------------------------------------------
    async def _ring(self, call: SimCall) -> None:
        if call.over:
            return
        call.status = "initiated"
        await self._status(call, "initiated")
        phone = self.phones.get(call.to, Phone())
        if call.over:
            return
        call.status = "ringing"
        await self._status(call, "ringing")
        if call.over:
            return
        if phone.busy or not phone.answers:
            await self._finish(call, "busy" if phone.busy else "no-answer")
            return
        call.status = "in-progress"
        await self._status(call, "answered")
        if phone.press:
            call.presses.append(phone.press)
        if call.participant is not None:
            opts = call.participant
            await self._join(call, opts["conference"], opts, self.base)
            return
        body = await self._fetch(call, call.url)
        if body is not None:
            await self._run(call, body, call.url)

    def _later(self, action: Callable[[], Awaitable[None]]) -> None:
        with self._lock:
            self._pending.append(action)

    # --- REST ----------------------------------------------------------------------------
    def rest(
        self, method: str, url: str, body: str, auth: tuple[str, str] | None
    ) -> tuple[int, str]:
        """Answer one REST request the app made (thread-safe, never blocks)."""
        path = urlsplit(url).path
        form = parse_qs(body, keep_blank_values=True)
        with self._lock:
            self.rest_log.append((method, path, form))
        if auth != (self.account_sid, self.token):
            return 401, json.dumps({"code": 20003, "message": "Authenticate", "status": 401})
        one = {k: v[-1] for k, v in form.items()}
        parts = path.split("/")
        try:
            if path.endswith("/Calls.json") and method == "POST":
                return self._rest_create(one, form)
            if "/Participants.json" in path and method == "POST":
                return self._rest_participant(parts[-2], one, form)
            if "/Calls/" in path:
                sid = parts[-1].removesuffix(".json")
                return self._rest_call(method, sid, one)
        except KeyError:
            pass
        return 404, json.dumps({"code": 20404, "message": "Not found", "status": 404})

    def _new_outbound(self, one: dict[str, str], form: dict[str, list[str]]) -> SimCall:
        call = SimCall(
            "CA" + secrets.token_hex(16),
            one["From"],
            one["To"],
            "outbound-api",
            status_callback=one.get("StatusCallback", ""),
            status_events=tuple(form.get("StatusCallbackEvent", ["completed"])),
            url=one.get("Url", ""),
        )
        if "completed" not in call.status_events:
            call.status_events += ("completed",)
        self.calls[call.sid] = call
        self._later(lambda: self._ring(call))
        return call

    def _rest_create(self, one: dict[str, str], form: dict[str, list[str]]) -> tuple[int, str]:
        if one.get("Record", "false").lower() == "true":
            return 400, json.dumps({"code": 21000, "message": "the line never records"})
        call = self._new_outbound(one, form)
        return 201, json.dumps({"sid": call.sid, "status": call.status, "to": call.to})

    def _rest_participant(
        self, name: str, one: dict[str, str], form: dict[str, list[str]]
    ) -> tuple[int, str]:
        call = self._new_outbound(one, form)
        call.participant = {
            "conference": name,
            "startConferenceOnEnter": one.get("StartConferenceOnEnter", "true"),
            "endConferenceOnExit": one.get("EndConferenceOnExit", "false"),
        }
        return 201, json.dumps(
            {"call_sid": call.sid, "conference_sid": name, "label": one.get("Label")}
        )

    def _rest_call(self, method: str, sid: str, one: dict[str, str]) -> tuple[int, str]:
        call = self.calls[sid]
        if call.deleted:
            raise KeyError(sid)
        if method == "GET":
            return 200, json.dumps({"sid": call.sid, "status": call.status})
        if method == "DELETE":
            if not call.over:
                return 400, json.dumps(
                    {
                        "code": 20009,
                        "status": 400,
                        "message": "Cannot delete this resource before it is complete",
                    }
                )
            call.deleted = True
            return 204, ""
        status = one.get("Status")
        if status == "canceled" and call.status in ("queued", "initiated", "ringing"):
            self._later(lambda: self._finish(call, "canceled"))
        elif status == "completed" and call.status == "in-progress":
            self._later(lambda: self._finish(call, "completed"))
        elif "Twiml" in one or "Url" in one:
            self._later(lambda: self._redirect(call, one.get("Twiml"), one.get("Url")))
        return 200, json.dumps({"sid": call.sid, "status": call.status})

    async def _redirect(self, call: SimCall, document: str | None, url: str | None) -> None:
        if call.over:
            return
        if call.conference:
            await self._leave(call, continue_twiml=False)
        if document is not None:
            await self._run(call, document, self.base + "/")
        elif url:
            body = await self._fetch(call, url)
            if body is not None:
                await self._run(call, body, url)

    # --- for assertions ------------------------------------------------------------------
    def outbound(self, to: str | None = None) -> list[SimCall]:
        return [
            c
            for c in self.calls.values()
            if c.direction != "inbound" and (to is None or c.to == to)
        ]

    def conference_of(self, call: SimCall) -> Conference | None:
        return self.conferences.get(call.conference)


def basic_auth(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password
