"""The ops console in a real headless Chromium: a staff member signs in through identity's
sign-in page (authorization code + PKCE, no pasted token) and lands on the console, which
shows every app-id, every component of the running profile, the control plane, a traffic
chart with data after some requests, and a transfer's trace found by its transfer id.
Saves a screenshot to var/test-output/ops-console.png and checks it."""

from __future__ import annotations

import time
import uuid

import pytest
import yaml
from PIL import Image
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT
from tests.support.k8s import env_file
from tests.support.ledger import funded_accounts, transfer_body
from tests.support.platform import ROOT, Platform
from tests.support.signin import CONSOLE, GATEWAY, staff_credentials

pytestmark = pytest.mark.e2e

CONTROL_PLANE = ("sentry", "placement", "scheduler")
# The pinned Dapr runtime: what every sidecar must report.
RUNTIME_VERSION = env_file(ROOT / "tools" / "versions.env")["DAPR_RUNTIME_VERSION"]


def _a_completed_transfer(platform: Platform) -> str:
    """Traffic through the gateway: register, two accounts, a deposit, a transfer."""
    _, issued = platform.register_and_login()
    who = {"authorization": f"Bearer {issued['access_token']}"}
    source, target = funded_accounts(platform, who, 5_000)
    transfer = platform.public(
        "POST",
        "/api/v1/transfers",
        headers={**who, "Idempotency-Key": uuid.uuid4().hex},
        json=transfer_body(source, target, 1_234),
    )
    assert transfer.status_code == 201, transfer.text
    assert transfer.json()["status"] == "completed"
    return str(transfer.json()["id"])


def _component_names(profile: str) -> set[str]:
    names = set()
    for path in (ROOT / "components" / profile).rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Component":
                names.add(str(doc["metadata"]["name"]))
    return names


def _sign_in(page: Page) -> None:
    email, password = staff_credentials()
    page.goto(f"{CONSOLE}/")
    # Sent to identity's own page, through the gateway: no token is ever pasted.
    page.wait_for_selector("[data-testid=login-form]", timeout=20_000)
    assert page.url.startswith(f"{GATEWAY}/oauth2/authorize?")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{CONSOLE}/", timeout=20_000)
    page.wait_for_selector("[data-testid=whoami]:has-text('staff:')", timeout=20_000)


def _chart_points(page: Page, service: str) -> int:
    value = page.get_attribute(f"svg[data-testid=chart-{service}]", "data-points", timeout=1_000)
    return int(value or "0")


def _wait_for_chart(page: Page, service: str, timeout: float = 90.0) -> None:
    # Prometheus scrapes every 5 s and rate() needs two samples: the page redraws every 5 s.
    deadline = time.monotonic() + timeout
    while True:
        try:
            if _chart_points(page, service) > 0:
                return
        except PlaywrightTimeout:
            pass  # not drawn yet
        assert time.monotonic() < deadline, f"no traffic chart data for {service}"
        page.wait_for_timeout(1_000)


def _show_trace(page: Page, transfer_id: str, timeout: float = 60.0) -> None:
    # Spans reach Jaeger in batches (a few seconds): search again until it has them.
    deadline = time.monotonic() + timeout
    while True:
        page.fill("[data-testid=trace-query]", transfer_id)
        page.click("[data-testid=trace-search] button")
        page.wait_for_timeout(1_500)
        if page.get_attribute("[data-testid=waterfall]", "data-trace-id"):
            services = set(
                page.eval_on_selector_all(
                    "[data-testid=waterfall] .span-row",
                    "rows => rows.map(r => r.getAttribute('data-service'))",
                )
            )
            if {"transactions", "accounts"} <= services:
                return
        assert time.monotonic() < deadline, "the transfer's trace never showed"
        page.wait_for_timeout(2_000)


def _not_blank(path: str) -> None:
    with Image.open(path) as image:
        small = image.convert("RGB").resize((200, 400))
        colors = small.getcolors(maxcolors=200 * 400) or []
    assert len(colors) > 20, "the screenshot looks blank"


def test_staff_signs_in_and_the_console_shows_the_platform(platform: Platform) -> None:
    transfer_id = _a_completed_transfer(platform)
    app_ids = [a.app_id for a in platform.stack.run_file.apps]
    components = _component_names(platform.stack.profile)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _sign_in(page)

            for app_id in app_ids:
                row = f"[data-testid=apps] tr[data-app-id={app_id}]"
                page.wait_for_selector(row, timeout=20_000)
                # Its sidecar answers and reports the runtime's version.
                assert page.inner_text(f"{row} td:nth-child(3)") == "healthy"
                assert page.inner_text(f"{row} td:nth-child(8)") == RUNTIME_VERSION
            for name in components:
                page.wait_for_selector(
                    f"[data-testid=components] tr[data-component={name}]", timeout=20_000
                )
            for service in CONTROL_PLANE:
                cell = f"[data-testid=control-plane] tr[data-service={service}] td:nth-child(2)"
                page.wait_for_selector(cell, timeout=20_000)
                assert page.inner_text(cell) == "healthy"
            page.wait_for_selector("[data-testid=certificates] tr[data-cert='trust anchors']")

            # A sidecar's metadata, as the Dapr dashboard showed it.
            page.click("[data-testid=apps] tr[data-app-id=analytics]")
            page.wait_for_selector("[data-testid=app-detail]:has-text('accounts.postings.v1')")

            _wait_for_chart(page, "transactions")
            _show_trace(page, transfer_id)

            assert page.is_hidden("[data-testid=error-banner]"), page.inner_text(
                "[data-testid=error-banner]"
            )
            page.locator("#traces").scroll_into_view_if_needed()
            shot = str(OUTPUT / "ops-console.png")
            page.screenshot(path=shot, full_page=True)
            _not_blank(shot)
            assert errors == []
        finally:
            browser.close()


def test_the_live_dashboard_signs_in_through_identity_without_a_pasted_token(
    platform: Platform,
) -> None:
    email, password = staff_credentials()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{GATEWAY}/dashboard")
            page.click("[data-testid=sign-in]")
            page.wait_for_selector("[data-testid=login-form]", timeout=20_000)
            assert "client_id=kaya787-dashboard" in page.url
            page.fill("#email", email)
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_selector("[data-testid=stream-status][data-state=live]", timeout=30_000)
            assert "code=" not in page.url  # the one-use code left the address bar
            assert errors == []
        finally:
            browser.close()
