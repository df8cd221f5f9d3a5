"""Smoke test in a real browser: Dutch by default, English on request, staff login, axe.

Runs headless Debian Chromium against Daphne serving the real ASGI application (see
``conftest.py``); every test also fails when a request leaves the machine or the page
logs an error.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Gebruikersnaam").fill(username)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()


def test_landing_page_is_dutch_by_default(page: Any) -> None:
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.locator("h1").inner_text() == "Iemand om mee te praten, dag en nacht"
    assert page.get_by_role("link", name="Snel weg").is_visible()
    assert page.get_by_role("link", name="Start een chat").is_visible()


def test_language_switch_gives_english_and_keeps_it(page: Any) -> None:
    page.goto("/")
    page.get_by_label("Taal").select_option("en")
    with page.expect_navigation():
        page.locator("form.language-switch button[type=submit]").click()
    assert page.url.endswith("/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Someone to talk to, day and night"
    page.goto("/chat/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Chat with a volunteer"


def test_volunteer_logs_in_and_lands_on_the_console(page: Any, anna: Any) -> None:
    page.goto("/console/")
    assert "/login/" in page.url
    _log_in(page, "anna")
    page.wait_for_url("**/console/")
    assert page.locator("h1").is_visible()
    assert "Anna" in page.locator("main").inner_text()


def test_wrong_password_is_refused_on_the_login_page(page: Any, anna: Any) -> None:
    page.goto("/login/")
    page.get_by_label("Gebruikersnaam").fill("anna")
    page.get_by_label("Wachtwoord").fill("not-the-password")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_load_state()
    assert "/login/" in page.url
    assert page.get_by_role("alert").is_visible()


@pytest.mark.parametrize("path", ["/", "/chat/", "/login/"])
@pytest.mark.parametrize("language", ["nl", "en"])
def test_caller_and_login_pages_have_no_serious_accessibility_violations(
    page: Any, asgi_server: str, assert_accessible: Any, path: str, language: str
) -> None:
    cookie = {"name": "django_language", "value": language, "url": asgi_server}
    page.context.add_cookies([cookie])
    page.goto(path)
    assert page.locator("html").get_attribute("lang") == language
    assert_accessible(page)


def test_console_has_no_serious_accessibility_violations(
    page: Any, anna: Any, assert_accessible: Any
) -> None:
    _log_in(page, "anna")
    page.wait_for_url("**/console/")
    assert_accessible(page)


def test_failed_login_has_no_serious_accessibility_violations(
    page: Any, anna: Any, assert_accessible: Any
) -> None:
    page.goto("/login/")
    page.get_by_label("Gebruikersnaam").fill("anna")
    page.get_by_label("Wachtwoord").fill("not-the-password")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_load_state()
    assert_accessible(page)


def test_large_text_keeps_the_landing_page_usable(page: Any, assert_accessible: Any) -> None:
    """At 200 % text size on a phone-sized screen nothing scrolls sideways."""
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/")
    # Through the CSSOM: an added <style> tag would be refused by the page's CSP.
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
    assert_accessible(page)


def test_keyboard_reaches_the_skip_link_first(page: Any) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.getAttribute('href')")
    assert focused == "#main"
    assert page.evaluate("() => document.activeElement.getBoundingClientRect().left >= 0")
