"""Shared fixtures for the browser tests: a real ASGI server, Debian's Chromium, axe-core.

* ``asgi_server``: Daphne in a subprocess serving ``listenline.asgi:application`` (HTTP,
  static files and websockets) against pytest-django's test database and the real
  Redis, on a free loopback port. Data a test writes with ``transactional_db`` is
  committed, so the server sees it.
* ``browser``: headless ``/usr/bin/chromium`` driven by Playwright. Playwright never
  downloads a browser here (``playwright install`` is not run anywhere).
* ``page``: a fresh context per test with a Dutch browser locale. When the test ends it
  fails if any request went to a host other than loopback, or if the page logged an
  error (a blocked script, a Content-Security-Policy refusal, a 404 for an asset).
* ``axe_violations(page)``: runs axe-core (``node_modules/axe-core``, installed by
  ``.ci/run`` from ``package.json``) and returns the serious and critical violations.

The fixtures are package-scoped so the Playwright event loop is gone before the async
tests elsewhere run under pytest-asyncio.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.servers import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
#: Impacts that fail a test; "minor" and "moderate" findings are reported, not fatal.
AXE_FAILING_IMPACTS = frozenset({"serious", "critical"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser/ is a browser test, marked or not."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Daphne exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Daphne did not serve {url} within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="package")
def asgi_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Base URL of Daphne serving the real ASGI application against the test database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("browser tests share the test database with a server process: PostgreSQL only")
    port = free_port()
    env = dict(os.environ)
    # The browser fixture lifts Django's async-safety guard for this process only; the
    # server keeps it, so a sync ORM call in a consumer still fails loudly.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url(connection.settings_dict),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
    )
    with tempfile.TemporaryDirectory(prefix="ll-daphne-") as tmp:
        log = Path(tmp) / "daphne.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "listenline.daphne_server",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    # As `listenline serve` runs it: no access log (client addresses).
                    "-v",
                    "0",
                    "listenline.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(f"{base}/", process, log)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; the test is skipped when it is not installed.

    Playwright's sync API keeps an asyncio loop marked as running on this thread while
    it lives, which makes Django refuse every ORM call of the test and its fixtures
    (``SynchronousOnlyOperation``). The tests here are plain sync code, so Django's
    guard is lifted for this package only and restored before the async tests run.
    """
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class PageWatch:
    """What a page did that a test should fail on: off-machine requests and errors."""

    #: Chromium asks for this on its own; pages do not link it.
    IGNORED_PATHS = frozenset({"/favicon.ico"})

    def __init__(self) -> None:
        self.external_requests: list[str] = []
        self.errors: list[str] = []

    def on_request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOOPBACK_HOSTS:
            self.external_requests.append(request.url)

    def on_response(self, response: Any) -> None:
        path = urlsplit(response.url).path
        if response.status >= 400 and path not in self.IGNORED_PATHS:
            # A failed login answers 200, a refused page 403: both are asked for by tests
            # through their own assertions, so only assets and server errors count here.
            if response.status >= 500 or response.request.resource_type != "document":
                self.errors.append(f"{response.status} for {response.url}")

    def on_console(self, message: Any) -> None:
        # "Failed to load resource" repeats what on_response saw, without the address.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"page error: {error}")


@pytest.fixture
def page(browser: Any, asgi_server: str) -> Iterator[Any]:
    """A new page in its own context (Dutch browser locale, no shared cookies)."""
    context = browser.new_context(
        base_url=asgi_server, locale="nl-NL", timezone_id="Europe/Amsterdam"
    )
    context.set_default_timeout(10_000)
    watch = PageWatch()
    context.on("request", watch.on_request)
    context.on("response", watch.on_response)
    new_page = context.new_page()
    new_page.on("console", watch.on_console)
    new_page.on("pageerror", watch.on_page_error)
    new_page.watch = watch  # type: ignore[attr-defined]
    try:
        yield new_page
    finally:
        context.close()
    assert not watch.external_requests, f"requests left this machine: {watch.external_requests}"
    assert not watch.errors, f"the page logged errors: {watch.errors}"


def axe_violations(page: Any, impacts: frozenset[str] = AXE_FAILING_IMPACTS) -> list[dict]:
    """Run axe-core on the page as it is now; return violations of the given impacts.

    axe is evaluated through the DevTools protocol rather than a ``<script>`` tag so the
    page's strict Content-Security-Policy stays on while it runs.
    """
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci` in tests/browser (.ci/run does)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;void 0;")
    results = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    return [v for v in results if v["impact"] in impacts]


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['impact']}: {v['id']} ({v['help']})")
        lines.extend(f"    {node}" for node in v["nodes"])
    return "\n".join(lines)


@pytest.fixture
def assert_accessible() -> Any:
    """``assert_accessible(page)`` fails with a readable list of serious/critical findings."""

    def check(page: Any) -> None:
        violations = axe_violations(page)
        assert not violations, f"axe on {page.url}:\n{format_violations(violations)}"

    return check
