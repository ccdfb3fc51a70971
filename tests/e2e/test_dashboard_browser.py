"""The live dashboard in a real headless Chromium, through the gateway: a transfer shows up
on the open page without a reload. Saves a screenshot to var/test-output/dashboard.png."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT
from tests.support.ledger import final_transaction, funded_accounts, transfer_body
from tests.support.platform import Platform

pytestmark = pytest.mark.e2e

COMPLETED = "[data-testid=transfers-completed]"


def _shown(page: Page, selector: str) -> int:
    return int(page.get_attribute(selector, "data-value") or "-1")


def test_a_transfer_appears_on_the_open_dashboard_without_reload(platform: Platform) -> None:
    _, issued = platform.register_and_login()
    who = {"authorization": f"Bearer {issued['access_token']}"}
    source, target = funded_accounts(platform, who, 10_000)
    # The dashboard shows platform-wide figures: a reader's token, not the customer's.
    token = platform.analyst()["authorization"].split()[1]
    OUTPUT.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # The fragment never reaches a server; the page sends it as a Bearer header.
            page.goto(f"http://127.0.0.1:8080/dashboard#access_token={token}")
            page.wait_for_selector("[data-testid=stream-status][data-state=live]", timeout=20_000)
            assert "access_token" not in page.url  # the page took it out of the address bar
            page.wait_for_selector(f"{COMPLETED}[data-value]", timeout=20_000)
            before = _shown(page, COMPLETED)
            page.evaluate("window.__sameDocument = true")  # gone if the page reloads

            transfer = platform.public(
                "POST",
                "/api/v1/transfers",
                headers={**who, "Idempotency-Key": uuid.uuid4().hex},
                json=transfer_body(source, target, 1_234),
            )
            assert transfer.status_code in (201, 202), transfer.text
            assert final_transaction(platform, transfer.json()["id"], who)["status"] == "completed"

            # Polled from here: a predicate evaluated in the page would need 'unsafe-eval',
            # which the gateway's Content-Security-Policy rightly refuses.
            deadline = time.monotonic() + 30
            while _shown(page, COMPLETED) <= before:
                assert time.monotonic() < deadline, "the transfer never showed on the page"
                page.wait_for_timeout(200)
            assert page.evaluate("window.__sameDocument === true")
            usd = page.locator("[data-testid=volume-table] tr[data-key=USD] td").nth(1)
            assert int(usd.inner_text()) >= 11_234
            page.wait_for_timeout(300)  # let uPlot paint the last frame
            page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()


def test_the_dashboard_refuses_a_stream_without_a_valid_token(platform: Platform) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto("http://127.0.0.1:8080/dashboard#access_token=not-a-jwt")
            page.wait_for_selector(
                "[data-testid=stream-status][data-state=unauthorized]", timeout=20_000
            )
            assert page.get_attribute(COMPLETED, "data-value") is None  # no data shown
        finally:
            browser.close()
