"""Resiliency, on the real stack (local profile, real sidecars): breaker, timeouts, retries.

- transactions' breaker on accounts (kaya787_kit.circuit_breaker) opens while accounts is
  down and answers at once with 503 `circuit_open` + Retry-After meanwhile, is never opened
  by refusals (4xx), and closes when accounts is back: every transfer ends final, once.
- A hung accounts costs a transfer the ledger's timeout (LEDGER_TIMEOUT_SECONDS) and a
  503 problem, nothing more; the transfer completes, once, when accounts resumes.
- Sidecars retry only where every call is idempotent (dapr/resiliency/): the gateway's
  sends a client's call once, even when it timed out or the app is gone; the apps' retry
  what is not an answer (a timeout, an unreachable app), and never an answer, not even a
  5xx. Attempts are counted by the sidecars' own metrics, runs by the callee's route
  counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.topology import LOOPBACK
from kaya787_transactions.settings import TransactionsSettings

from tests.support.ledger import Customer, Ledger, customer, fresh_key, transfer_body
from tests.support.platform import ROOT, Platform, eventually
from tests.support.scrape import prometheus_value, sample

pytestmark = pytest.mark.integration

_DEFAULTS = TransactionsSettings.model_fields
LEDGER_TIMEOUT = float(_DEFAULTS["ledger_timeout_seconds"].default)
BREAKER_FAILURES = int(_DEFAULTS["ledger_breaker_failures"].default)
COOLDOWN = float(_DEFAULTS["ledger_breaker_cooldown_seconds"].default)
EDGE_TIMEOUT = float(
    yaml.safe_load((ROOT / "dapr" / "resiliency" / "edge.yaml").read_text())["spec"]["policies"][
        "timeouts"
    ]["call"].removesuffix("s")
)
APP_CALL_TIMEOUT = float(
    yaml.safe_load((ROOT / "dapr" / "resiliency" / "resiliency.yaml").read_text())["spec"][
        "policies"
    ]["timeouts"]["call"].removesuffix("s")
)
APP_RETRIES = int(
    yaml.safe_load((ROOT / "dapr" / "resiliency" / "resiliency.yaml").read_text())["spec"][
        "policies"
    ]["retries"]["call-retry"]["maxRetries"]
)
# Two cores shared with other platforms: what a request may take beyond its budget.
MARGIN = 4.0
FUNDS = 100_000
BREAKER = {"service": "transactions", "target": "accounts"}
STATE_QUERY = 'kaya787_circuit_breaker_state{service="transactions",target="accounts"}'
SENT = "dapr_runtime_service_invocation_req_sent_total"


# ----------------------------------------------------------------------------- helpers
def _app_port(platform: Platform, app_id: str) -> int:
    port = platform.stack.run_file.app(app_id).app_port
    assert port is not None
    return port


def _breaker(platform: Platform, name: str) -> float:
    return sample(_app_port(platform, "transactions"), name, **BREAKER)


def _state(platform: Platform) -> float:
    return _breaker(platform, "kaya787_circuit_breaker_state")


def _sent(platform: Platform, caller: str, callee: str) -> float:
    """Invocations `caller`'s sidecar sent to `callee`: every attempt, retries included."""
    port = platform.stack.run_file.app(caller).metrics_port
    return sample(port, SENT, app_id=caller, dst_app_id=callee)


def _runs(platform: Platform, method: str, route: str, status: str | None = None) -> float:
    """How often accounts ran a route (its own RED counter), optionally with one status."""
    labels = {"service": "accounts", "method": method, "route": route}
    if status is not None:
        labels["status"] = status
    return sample(_app_port(platform, "accounts"), "kaya787_http_requests_total", **labels)


def _accounts_group(platform: Platform) -> int | None:
    tracked = platform.stack.table.get("app-accounts")
    return tracked.pid if tracked else None  # the launcher starts each app in its own group


def _signal_accounts(platform: Platform, sig: signal.Signals) -> None:
    group = _accounts_group(platform)
    assert group is not None, "accounts is not running"
    os.killpg(group, sig)


def _resume_accounts(platform: Platform) -> None:
    """Whatever a test left it in: running, not stopped."""
    group = _accounts_group(platform)
    if group is None:
        platform.stack.start_app("accounts")
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGCONT)


def _probes_passed(platform: Platform) -> float:
    port = platform.stack.run_file.app("accounts").metrics_port
    return sample(port, "dapr_http_healthprobes_completed_count", app_id="accounts", status="200")


def _stopped_for(platform: Platform, seconds: float) -> threading.Timer:
    """SIGSTOP accounts now, SIGCONT it after `seconds` (a peer that hangs, then is back).

    First its sidecar probes it healthy once more: the probes failed while an earlier test
    stopped it, and a few more failures would mark it unhealthy mid-test (then the sidecar
    refuses calls instead of letting them wait)."""
    passed = _probes_passed(platform)
    eventually(
        lambda: _probes_passed(platform) > passed,
        timeout=30.0,
        what="accounts' sidecar to probe it healthy",
    )
    _signal_accounts(platform, signal.SIGSTOP)
    timer = threading.Timer(seconds, lambda: _signal_accounts(platform, signal.SIGCONT))
    timer.start()
    return timer


def _public() -> httpx.Client:
    return httpx.Client(base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=60.0)


def _timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def _is_problem(response: httpx.Response) -> bool:
    return bool(response.headers.get("content-type") == "application/problem+json")


def _nowhere() -> str:
    """An id shaped like a minted account id that names no account."""
    return str(uuid.uuid4())


def _refused_transfer(platform: Platform, payer: Customer) -> httpx.Response:
    """A transfer to no account: accounts refuses it (404) through the breaker."""
    return platform.public(
        "POST",
        "/api/v1/transfers",
        headers={**payer.bearer, "Idempotency-Key": fresh_key()},
        json=transfer_body(payer.accounts[0], _nowhere(), 1),
    )


async def _balances(platform: Platform, payer: Customer) -> list[int]:
    async with Ledger(platform) as ledger:
        return [await ledger.balance(a, payer) for a in payer.accounts]


async def _postings_of(platform: Platform, payer: Customer) -> dict[str, int]:
    """Per transaction id, how many entries it left on the payer's first account."""
    async with Ledger(platform) as ledger:
        entries = await ledger.entries(payer.accounts[0], payer)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["transaction_id"]] = counts.get(entry["transaction_id"], 0) + 1
    return counts


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def payer(platform: Platform) -> Customer:
    """A customer with two USD accounts, the first funded."""
    who = customer(platform, ("USD", "USD"))

    async def fund() -> None:
        async with Ledger(platform) as ledger:
            deposit = await ledger.deposit(who, who.accounts[0], FUNDS)
            assert deposit["status"] == "completed"

    asyncio.run(fund())
    return who


@pytest.fixture(autouse=True)
def ledger_up(platform: Platform, payer: Customer) -> Iterator[None]:
    """Each test starts with accounts running and the breaker closed, and leaves accounts
    running whatever happened. A half-open breaker closes on its next call: a refused
    transfer is one (accounts answers it, and nothing moves)."""
    _resume_accounts(platform)

    def closed() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            _refused_transfer(platform, payer)
        return _state(platform) == 0

    eventually(closed, timeout=90.0, every=1.0, what="the breaker on accounts to be closed")
    yield
    _resume_accounts(platform)


# -------------------------------------------------------------------------- 1. breaker
def test_refusals_from_accounts_never_open_the_breaker(platform: Platform, payer: Customer) -> None:
    opens = _breaker(platform, "kaya787_circuit_breaker_opens_total")
    refused = [_refused_transfer(platform, payer) for _ in range(4 * BREAKER_FAILURES)]
    with _public() as public:
        # Deposits look the account up first (a GET through the breaker): 404 too.
        refused += [
            public.post(
                "/api/v1/deposits",
                headers={**payer.bearer, "Idempotency-Key": fresh_key()},
                json={"account_id": _nowhere(), "amount": 1, "currency": "USD"},
            )
            for _ in range(2 * BREAKER_FAILURES)
        ]
    assert {(r.status_code, r.json()["code"]) for r in refused} == {
        (404, "destination_account_not_found"),
        (404, "account_not_found"),
    }
    # accounts' own routes refusing a burst of unauthenticated calls (past the edge's JWT
    # pre-check, straight to the gateway's sidecar): under Dapr's breaker these 401s
    # would count as failures of accounts.
    with platform.sidecar("gateway") as gateway:
        unauthenticated = [
            gateway.get("/v1.0/invoke/accounts/method/api/v1/accounts")
            for _ in range(4 * BREAKER_FAILURES)
        ]
    assert {r.status_code for r in unauthenticated} == {401}
    assert all(_is_problem(r) for r in refused + unauthenticated)
    assert _state(platform) == 0
    assert _breaker(platform, "kaya787_circuit_breaker_opens_total") == opens
    done = platform.public(
        "POST",
        "/api/v1/transfers",
        headers={**payer.bearer, "Idempotency-Key": fresh_key()},
        json=transfer_body(payer.accounts[0], payer.accounts[1], 1),
    )
    assert (done.status_code, done.json()["status"]) == (201, "completed"), done.text


async def _offer(
    client: httpx.AsyncClient, payer: Customer, key: str, amount: int
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.post(
        "/api/v1/transfers",
        headers={**payer.bearer, "Idempotency-Key": key},
        json=transfer_body(payer.accounts[0], payer.accounts[1], amount),
    )
    return response, time.monotonic() - started


async def test_the_breaker_opens_while_accounts_is_down_and_closes_when_it_is_back(
    platform: Platform, payer: Customer
) -> None:
    before = await _balances(platform, payer)
    opens = _breaker(platform, "kaya787_circuit_breaker_opens_total")
    rejected = _breaker(platform, "kaya787_circuit_breaker_rejected_total")
    offered: dict[str, int] = {}  # Idempotency-Key -> amount, every transfer asked for
    failing: list[float] = []  # how long answers took while the breaker still called
    short: list[float] = []  # ... and once it answered by itself
    await asyncio.to_thread(platform.stack.stop_app, "accounts", kill=True)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=60.0
        ) as client:
            deadline = time.monotonic() + 120.0
            while len(short) < 2 * BREAKER_FAILURES:
                assert time.monotonic() < deadline, f"never open: {failing=} {short=}"
                batch = {fresh_key(): 10 + len(offered) + i for i in range(BREAKER_FAILURES)}
                offered.update(batch)
                answers = await asyncio.gather(
                    *(_offer(client, payer, k, amount) for k, amount in batch.items())
                )
                for response, took in answers:
                    # Never a timeout, never a 500: a problem the client knows to retry.
                    assert response.status_code == 503, response.text
                    assert _is_problem(response), response.text
                    retry_after = int(response.headers["retry-after"])
                    code = response.json()["code"]
                    if code == "circuit_open":
                        assert 1 <= retry_after <= COOLDOWN
                        short.append(took)
                    else:
                        assert code == "ledger_unconfirmed", response.text
                        failing.append(took)
        assert _breaker(platform, "kaya787_circuit_breaker_opens_total") >= opens + 1
        assert _breaker(platform, "kaya787_circuit_breaker_rejected_total") >= rejected + len(short)
        # Refused at once, without waiting on accounts: well inside the ledger's timeout,
        # which each failing call spent most of (Dapr retrying an unreachable app).
        assert max(short) < LEDGER_TIMEOUT, short
        print(
            f"\nwhile accounts was down: {len(failing)} answers after calling it "
            f"(median {statistics.median(failing):.2f}s), {len(short)} circuit_open "
            f"(median {statistics.median(short):.3f}s, max {max(short):.3f}s)"
        )
        eventually(
            lambda: prometheus_value(f"max_over_time({STATE_QUERY}[2m])") == 2,
            timeout=60.0,
            every=1.0,
            what="Prometheus to see the breaker open",
        )
    finally:
        await asyncio.to_thread(platform.stack.start_app, "accounts")

    # A careful client retries each one with its key until it is accepted.
    finals: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=60.0
    ) as client:
        deadline = time.monotonic() + 120.0
        while len(finals) < len(offered):
            assert time.monotonic() < deadline, f"{len(offered) - len(finals)} never accepted"
            for k, amount in offered.items():
                if k in finals:
                    continue
                response, _ = await _offer(client, payer, k, amount)
                if response.status_code in (200, 201):
                    finals[k] = response.json()
                else:
                    assert response.status_code == 503, response.text
            await asyncio.sleep(0.5)
    assert _state(platform) == 0
    eventually(
        lambda: prometheus_value(STATE_QUERY) == 0,
        timeout=60.0,
        every=1.0,
        what="Prometheus to see the breaker closed",
    )
    # Every transfer asked for ended completed, each moved its amount once.
    assert {f["status"] for f in finals.values()} == {"completed"}
    moved = sum(offered.values())
    assert await _balances(platform, payer) == [before[0] - moved, before[1] + moved]
    postings = await _postings_of(platform, payer)
    assert all(postings.get(f["id"]) == 1 for f in finals.values()), postings


# ------------------------------------------------------------------------- 2. timeouts
async def test_a_hung_accounts_costs_a_transfer_the_ledgers_timeout_then_it_completes(
    platform: Platform, payer: Customer
) -> None:
    before = await _balances(platform, payer)
    key, amount = fresh_key(), 7
    hold = LEDGER_TIMEOUT + 3.0
    timer = _stopped_for(platform, hold)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=60.0
        ) as client:
            response, took = await _offer(client, payer, key, amount)
    finally:
        timer.join()
    print(f"\nwith accounts stopped: {response.status_code} after {took:.2f}s")
    assert response.status_code == 503, response.text
    assert _is_problem(response)
    assert response.json()["code"] == "ledger_unconfirmed"
    assert int(response.headers["retry-after"]) >= 1
    # The ledger's budget, well inside the edge's: our problem, not the edge's timeout.
    assert took < LEDGER_TIMEOUT + MARGIN
    assert LEDGER_TIMEOUT < EDGE_TIMEOUT
    # Resumed, the same request completes, and moves the money once.
    async with httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=60.0
    ) as client:

        async def accepted() -> httpx.Response:
            for _ in range(60):
                again, _ = await _offer(client, payer, key, amount)
                if again.status_code in (200, 201):
                    return again
                assert again.status_code == 503, again.text
                await asyncio.sleep(1.0)
            raise AssertionError("never accepted after accounts resumed")

        final = (await accepted()).json()
    assert final["status"] == "completed"
    assert await _balances(platform, payer) == [before[0] - amount, before[1] + amount]
    assert (await _postings_of(platform, payer)).get(final["id"]) == 1
    assert _state(platform) == 0  # one failure is not an outage


# -------------------------------------------------------------------------- 3. retries
def _open_account(platform: Platform, payer: Customer) -> httpx.Response:
    """Not idempotent: every call that runs opens one more account."""
    with _public() as public:
        return public.post("/api/v1/accounts", headers=payer.bearer, json={"currency": "EUR"})


def _euro_accounts(platform: Platform, payer: Customer) -> int:
    listed = platform.public("GET", "/api/v1/accounts", headers=payer.bearer)
    assert listed.status_code == 200, listed.text
    return sum(1 for a in listed.json()["items"] if a["currency"] == "EUR")


def _describe(platform: Platform, account_id: str) -> httpx.Response:
    """Idempotent: accounts' internal lookup, as transactions makes it (its sidecar)."""
    with platform.sidecar("transactions") as sidecar:
        sidecar.timeout = httpx.Timeout(60.0)
        return sidecar.get(f"/v1.0/invoke/accounts/method/internal/accounts/{account_id}")


def test_a_hung_accounts_the_edge_sends_once_and_the_apps_retry_their_idempotent_call(
    platform: Platform, payer: Customer
) -> None:
    euros = _euro_accounts(platform, payer)
    edge_sent = _sent(platform, "gateway", "accounts")
    app_sent = _sent(platform, "transactions", "accounts")
    runs = _runs(platform, "POST", "/api/v1/accounts")
    # Stopped past the call timeout of both sidecars, then back.
    hold = max(EDGE_TIMEOUT, APP_CALL_TIMEOUT) + 2.5
    timer = _stopped_for(platform, hold)
    try:
        lookup: list[tuple[httpx.Response, float]] = []
        looked_up = threading.Thread(
            target=lambda: lookup.append(_timed(lambda: _describe(platform, payer.accounts[0])))
        )
        looked_up.start()
        opened, took = _timed(lambda: _open_account(platform, payer))
        looked_up.join()
    finally:
        timer.join()
    described, described_took = lookup[0]
    print(
        f"\nwith accounts stopped {hold:.1f}s: open account {opened.status_code} after "
        f"{took:.2f}s; lookup {described.status_code} after {described_took:.2f}s"
    )
    # The edge gave up after its timeout and sent the POST once: no second account.
    assert opened.status_code >= 500, opened.text
    assert took < EDGE_TIMEOUT + MARGIN
    time.sleep(2.0)  # anything accounts still had queued runs now
    assert _sent(platform, "gateway", "accounts") == edge_sent + 1
    assert _runs(platform, "POST", "/api/v1/accounts") <= runs + 1
    assert _euro_accounts(platform, payer) <= euros + 1
    # The apps' sidecar timed the lookup out too, and sent it again: it succeeded once
    # accounts was back, later than one call's timeout allows.
    assert described.status_code == 200, described.text
    assert described_took > APP_CALL_TIMEOUT
    assert _sent(platform, "transactions", "accounts") >= app_sent + 2


def test_an_unreachable_accounts_the_edge_sends_once_and_the_apps_retry(
    platform: Platform, payer: Customer
) -> None:
    edge_sent = _sent(platform, "gateway", "accounts")
    app_sent = _sent(platform, "transactions", "accounts")
    platform.stack.stop_app("accounts", kill=True)
    try:
        opened = _open_account(platform, payer)
        described = _describe(platform, payer.accounts[0])
    finally:
        platform.stack.start_app("accounts")
    assert opened.status_code >= 500, opened.text
    assert described.status_code >= 500, described.text
    assert _sent(platform, "gateway", "accounts") == edge_sent + 1
    # The connection to the app refused: not an answer, so retried, all of them.
    assert _sent(platform, "transactions", "accounts") >= app_sent + 1 + APP_RETRIES


@pytest.mark.profiles("local")  # accounts' SQLite file, locked from here
def test_answers_are_never_retried_not_even_a_5xx(platform: Platform, payer: Customer) -> None:
    sent = _sent(platform, "transactions", "accounts")
    lookups = _runs(platform, "GET", "/internal/accounts/{account_id}", "404")
    missing = _describe(platform, _nowhere())
    assert missing.status_code == 404, missing.text
    assert _sent(platform, "transactions", "accounts") == sent + 1
    assert _runs(platform, "GET", "/internal/accounts/{account_id}", "404") == lookups + 1

    # accounts' store refusing writes (its SQLite file write-locked from here): accounts
    # answers 503 itself, and the posting - idempotent or not - ran once.
    posting_id = uuid.uuid4().hex
    posting = {
        "id": f"{posting_id}:transfer",
        "transaction_id": posting_id,
        "kind": "transfer",
        "step": "transfer",
        "debit_account_id": payer.accounts[0],
        "credit_account_id": payer.accounts[1],
        "amount": 1,
        "currency": "USD",
        "authorised_by": None,
        "created_at": datetime.now(UTC).isoformat(),
    }
    sent = _sent(platform, "transactions", "accounts")
    failed = _runs(platform, "POST", "/internal/postings", "503")
    store = sqlite3.connect(platform.layout.data / "accounts-state.db", isolation_level=None)
    try:
        store.execute("BEGIN IMMEDIATE")
        answer = platform.call(
            "accounts", "POST", "/internal/postings", via="transactions", json=posting
        )
    finally:
        store.execute("ROLLBACK")
        store.close()
    assert answer.status_code == 503, answer.text
    assert _is_problem(answer)
    assert _sent(platform, "transactions", "accounts") == sent + 1
    assert _runs(platform, "POST", "/internal/postings", "503") == failed + 1
    # The store back, the same posting applies (the client's retry, not the sidecar's).
    again = platform.call(
        "accounts", "POST", "/internal/postings", via="transactions", json=posting
    )
    assert (again.status_code, again.json()["status"]) == (200, "committed"), again.text
