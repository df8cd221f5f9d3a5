"""A caller and a volunteer hold a conversation in two browser contexts against Daphne.

The caller reloads mid-conversation and continues with no lost or duplicated message;
the volunteer ends and saves the wrap-up; quick exit leaves nothing behind; axe-core
finds no serious or critical violation on /chat/ or /console/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from registrations.models import Registration
from tests.browser.conftest import PageWatch, axe_violations, format_violations
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def contexts(browser: Any, asgi_server: str) -> Iterator[Any]:
    """Factory of pages in separate contexts; the quick-exit target is answered locally
    (route) so nothing leaves the machine."""
    made: list[tuple[Any, PageWatch]] = []

    def new_page() -> Any:
        context = browser.new_context(base_url=asgi_server, locale="nl-NL")
        context.set_default_timeout(10_000)
        context.route(
            "https://www.google.com/**",
            lambda route: route.fulfill(
                status=200, body="<title>Weer</title>weer", content_type="text/html"
            ),
        )
        watch = PageWatch()
        page = context.new_page()
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        made.append((context, watch))
        return page

    yield new_page
    for context, watch in made:
        context.close()
        assert not watch.errors, watch.errors


def _volunteer_on_duty(page: Any) -> None:
    page.goto("/login/?next=/console/")
    page.fill("#id_username", "anna")
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/$"))
    page.wait_for_selector("#console-app[data-ready]")
    page.check("input[name=presence-chat][value=available]")
    page.wait_for_timeout(300)


def _messages(page: Any, selector: str) -> list[str]:
    return page.locator(f"{selector} .msg .text").all_inner_texts()


def test_conversation_reload_wrapup_and_accessibility(contexts: Any, anna: Any) -> None:
    volunteer = contexts()
    _volunteer_on_duty(volunteer)
    violations = axe_violations(volunteer)
    assert not violations, format_violations(violations)

    caller = contexts()
    caller.goto("/chat/")
    violations = axe_violations(caller)
    assert not violations, format_violations(violations)
    caller.fill("#municipality", "Utrecht")
    caller.click("#start-button")
    caller.wait_for_selector("#view-waiting:not([hidden])")

    volunteer.click(".offer .accept")
    caller.wait_for_selector("#view-conversation:not([hidden])")
    assert "Anna" in caller.inner_text("#talking-with")

    caller.fill("#message-text", "Ik voel me alleen vandaag.")
    caller.click("#message-form button[type=submit]")
    volunteer.wait_for_selector(".contact .msg-caller >> text=Ik voel me alleen vandaag.")
    volunteer.fill(".contact textarea", "Fijn dat je er bent. Vertel.")
    volunteer.click(".contact .message-form button[type=submit]")
    caller.wait_for_selector(".msg-volunteer >> text=Fijn dat je er bent. Vertel.")
    violations = axe_violations(caller)
    assert not violations, format_violations(violations)

    caller.reload()
    caller.wait_for_selector(".msg-volunteer >> text=Fijn dat je er bent. Vertel.")
    caller.fill("#message-text", "Na het herladen.")
    caller.click("#message-form button[type=submit]")
    volunteer.wait_for_selector(".contact .msg-caller >> text=Na het herladen.")
    caller.wait_for_selector(".msg-caller[data-state=sent] >> text=Na het herladen.")
    expected = ["Ik voel me alleen vandaag.", "Fijn dat je er bent. Vertel.", "Na het herladen."]
    assert _messages(caller, "#messages") == expected
    assert _messages(volunteer, ".contact") == expected

    volunteer.click(".contact .end")
    caller.wait_for_selector("#view-ended:not([hidden])")
    volunteer.wait_for_selector(".contact .wrapup:not([hidden])")
    violations = axe_violations(volunteer)
    assert not violations, format_violations(violations)
    volunteer.check(".wrapup input[value=loneliness]")
    volunteer.select_option(".wrapup select[name=age_band]", "75_plus")
    volunteer.click(".wrapup button[type=submit]")
    volunteer.wait_for_selector(".contact", state="detached")
    row = Registration.objects.get()
    assert row.topics == ["loneliness"] and row.age_band == "75_plus"
    assert caller.evaluate("() => window.sessionStorage.length") == 0


def test_quick_exit_leaves_nothing_and_no_way_back(contexts: Any, anna: Any) -> None:
    caller = contexts()
    caller.goto("/")
    caller.goto("/chat/")
    caller.click("#start-button")
    caller.wait_for_function("() => window.sessionStorage.getItem('ll.chat.token') !== null")
    caller.click("#quick-exit")
    caller.wait_for_url(re.compile(r"^https://www\.google\.com/"))
    assert caller.evaluate("() => window.sessionStorage.length") == 0
    caller.go_back()
    assert "/chat/" not in caller.url
    caller.goto(caller.url)  # wherever "back" went, no conversation token survives
    assert caller.evaluate("() => window.sessionStorage.length") == 0


def _duration_s(text: str) -> int:
    """Seconds of ``mm:ss`` or ``hh:mm:ss``."""
    assert re.fullmatch(r"(\d\d:)?\d\d:\d\d", text), text
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _advances(page: Any, selector: str) -> None:
    """The <time> at ``selector`` shows a later duration within a few seconds, and says
    the same as an ISO 8601 duration in ``datetime``."""
    time = page.locator(selector)
    before = _duration_s(time.inner_text())
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent !== text",
        arg=[selector, time.inner_text()],
        timeout=5_000,
    )
    after = _duration_s(time.inner_text())
    assert after > before
    assert re.fullmatch(r"PT\d+H\d+M\d+S", time.get_attribute("datetime") or "")


def _outside_live_regions(page: Any, selector: str) -> bool:
    return bool(
        page.evaluate(
            "sel => document.querySelector(sel).closest('[aria-live], [role=log], "
            "[role=status], [role=alert], [role=timer]') === null",
            selector,
        )
    )


def test_console_durations_tick_without_being_announced(contexts: Any, anna: Any) -> None:
    volunteer = contexts()
    _volunteer_on_duty(volunteer)
    caller = contexts()
    caller.goto("/chat/")
    caller.fill("#municipality", "Utrecht")  # tells this offer from a caller left waiting
    caller.click("#start-button")
    caller.wait_for_selector("#view-waiting:not([hidden])")

    # The offer: the waited time counts on, and the offer is announced once, elsewhere.
    offer = volunteer.locator(".offer", has_text="Utrecht")
    offer.wait_for()
    waited = f'[id="{offer.get_attribute("id")}"] .offer-facts time.duration'
    assert "wachtte" in volunteer.inner_text(f'[id="{offer.get_attribute("id")}"] .offer-facts')
    assert volunteer.inner_text("#offer-announce").startswith("Nieuw contact aangeboden: ")
    assert "{#" not in volunteer.inner_text("main")
    _advances(volunteer, waited)
    assert _outside_live_regions(volunteer, waited)

    offer.locator(".accept").click()
    caller.wait_for_selector("#view-conversation:not([hidden])")
    talking = ".contact .contact-duration time.duration"
    volunteer.wait_for_selector(talking)
    assert volunteer.inner_text(".contact .contact-duration").startswith("in gesprek ")
    assert _duration_s(volunteer.inner_text(talking)) < 60
    _advances(volunteer, talking)
    assert _outside_live_regions(volunteer, talking)
    # The waited time of an accepted contact stands still.
    assert volunteer.locator(".contact .contact-facts time[data-since]").count() == 0
    violations = axe_violations(volunteer)
    assert not violations, format_violations(violations)

    # Past an hour: hh:mm:ss (the ticker counts from the accept; move the accept back).
    volunteer.evaluate(
        "sel => { document.querySelector(sel).dataset.since = String(Date.now() - 3725000); }",
        talking,
    )
    volunteer.wait_for_function(
        "sel => /^01:02:0\\d$/.test(document.querySelector(sel).textContent)", arg=talking
    )

    # In wrap-up the length stands still, from the server's view.
    volunteer.click(".contact .end")
    volunteer.wait_for_selector(".contact .wrapup:not([hidden])")
    assert volunteer.inner_text(".contact .contact-duration").startswith("duurde ")
    assert volunteer.locator(".contact .contact-duration time[data-since]").count() == 0
    volunteer.reload()  # a fresh page gets the length from the server's view
    volunteer.wait_for_selector(".contact .wrapup:not([hidden])")
    assert _duration_s(volunteer.inner_text(talking)) < 60
    volunteer.check(".wrapup input[value=loneliness]")
    volunteer.click(".wrapup button[type=submit]")
    volunteer.wait_for_selector(".contact", state="detached")
