"""Graceful shutdown and rolling restarts on the real platform (local profile).

SIGTERM to an app: /readyz says 503 at once, a slow request already accepted still gets
its 200, and the process exits 0 within drain + grace. A rolling restart of accounts,
transactions and identity under steady load through the gateway: every request answered
2xx (429 and 503 count as failures), every transfer final, and the books exact.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kaya787_launcher.processes import listens_on

from tests.support import steady_load
from tests.support.platform import Platform, eventually

pytestmark = [pytest.mark.integration, pytest.mark.profiles("local")]

DRAIN, GRACE = 2.0, 8.0
# Past drain + grace the process has its lifespan's shutdown left (sidecar client, tracing).
EXIT_WITHIN = DRAIN + GRACE + 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SecondPartner:
    """A second process of the partner simulator, on a port of its own, against the real
    partner sidecar: slow on purpose (LATENCY_MS), and ours to signal and reap."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def slow_partner(
    platform: Platform, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SecondPartner]:
    latency_ms: int = getattr(request, "param", 6000)
    port = _free_port()
    env = {
        **os.environ,
        **platform.stack.app_environment("partner"),
        "APP_PORT": str(port),
        "LATENCY_MS": str(latency_ms),
        "SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
        "SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "OTEL_SDK_DISABLED": "true",
    }
    log = tmp_path / "partner.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kaya787_partner"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    partner = SecondPartner(process, port, platform.app_token("partner"), log)
    try:
        eventually(
            lambda: listens_on(process.pid, port) or process.poll() is not None,
            timeout=60.0,
            what="the second partner process to listen",
        )
        assert process.poll() is None, log.read_text()
        yield partner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _payin(partner: SecondPartner, results: list[tuple[float, httpx.Response | Exception]]) -> None:
    body = {
        "id": f"drain-{uuid.uuid4().hex}",
        "account_id": "acc-drain-test",
        "owner_id": "owner-drain-test",
        "amount": 100,
        "currency": "USD",
    }
    try:
        answer: httpx.Response | Exception = httpx.post(
            partner.url("/internal/payins"),
            json=body,
            headers={"dapr-api-token": partner.token},
            timeout=60.0,
        )
    except httpx.HTTPError as exc:
        answer = exc
    results.append((time.monotonic(), answer))


def _in_flight(partner: SecondPartner) -> list[tuple[float, httpx.Response | Exception]]:
    """Start a slow pay-in; return once it is being handled (the simulator sleeps in it)."""
    results: list[tuple[float, httpx.Response | Exception]] = []
    threading.Thread(target=_payin, args=(partner, results), daemon=True).start()
    time.sleep(2.0)  # read its outcome from the store, then asleep for LATENCY_MS
    assert not results, f"answered before SIGTERM: {results}"
    return results


def test_sigterm_lets_a_slow_request_finish_while_readyz_says_503(
    slow_partner: SecondPartner,
) -> None:
    results = _in_flight(slow_partner)
    signalled = time.monotonic()
    slow_partner.process.send_signal(signal.SIGTERM)
    # Within the drain window the app still accepts, and says it is not ready.
    with httpx.Client(timeout=5.0) as client:
        ready = client.get(slow_partner.url("/readyz"))
    assert ready.status_code == 503, ready.text
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["code"] == "not_ready"
    assert ready.headers["connection"] == "close"
    code = slow_partner.process.wait(timeout=EXIT_WITHIN + 30)
    exited = time.monotonic() - signalled
    assert results, "the in-flight request got no answer"
    finished, answer = results[0]
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] in (True, False)
    assert finished > signalled  # it was in flight when the signal came
    log = slow_partner.log.read_text()
    assert code == 0, log
    assert exited < EXIT_WITHIN, f"exited {exited:.1f}s after SIGTERM"
    assert "shutting down: draining" in log
    assert "Application shutdown complete" in log


@pytest.mark.parametrize("slow_partner", [30_000], indirect=True)
def test_a_request_past_the_grace_period_is_cut_and_the_app_still_exits_0_in_time(
    slow_partner: SecondPartner,
) -> None:
    results = _in_flight(slow_partner)
    signalled = time.monotonic()
    slow_partner.process.send_signal(signal.SIGTERM)
    code = slow_partner.process.wait(timeout=EXIT_WITHIN + 30)
    exited = time.monotonic() - signalled
    assert code == 0, slow_partner.log.read_text()
    assert DRAIN + GRACE - 1.0 < exited < EXIT_WITHIN, f"exited after {exited:.1f}s"
    eventually(lambda: results, timeout=10.0, what="the cut request to end")
    _, answer = results[0]
    # Cancelled by the server: no 200 (the connection ends, or a 500 in its place).
    assert not (isinstance(answer, httpx.Response) and answer.status_code == 200)


# ------------------------------------------------------------------------ rolling restart
ROLLED = ("accounts", "transactions", "identity")


@dataclass
class Rolls:
    pids: dict[str, tuple[int, int]] = field(default_factory=dict)  # app: (old, new)
    seconds: dict[str, float] = field(default_factory=dict)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _roll_each(platform: Platform, rolls: Rolls) -> None:
    try:
        time.sleep(3.0)  # the load is steady first
        for app_id in ROLLED:
            before = platform.stack.table.get(f"app-{app_id}")
            assert before is not None, f"app-{app_id} is not running"
            started = time.monotonic()
            platform.stack.roll_app(app_id)
            rolls.seconds[app_id] = time.monotonic() - started
            after = platform.stack.table.get(f"app-{app_id}")
            assert after is not None, f"no app-{app_id} after its roll"
            rolls.pids[app_id] = (before.pid, after.pid)
            time.sleep(1.0)
    except BaseException as exc:  # reported by the test, not lost in the thread
        rolls.error = exc
    finally:
        rolls.done.set()


def test_rolling_restarts_under_load_fail_no_request_and_lose_no_money(
    platform: Platform,
) -> None:
    payers = steady_load.funded_payers(platform, 6)
    rolls = Rolls()
    roller = threading.Thread(target=_roll_each, args=(platform, rolls), daemon=True)
    roller.start()
    # 10 transfers a second for 20 s, and on until every roll is done (at most 90 s).
    outcome = steady_load.run(
        payers, 10.0, 20.0, busy=lambda: not rolls.done.is_set(), max_seconds=90.0
    )
    roller.join(timeout=120.0)
    assert rolls.done.is_set(), "the rolling restarts did not finish"
    assert rolls.error is None, repr(rolls.error)
    for app_id, (old, new) in rolls.pids.items():
        assert new != old, app_id
        assert listens_on(new, platform.stack.run_file.app(app_id).app_port or 0), app_id
        assert not Path(f"/proc/{old}").exists() or _zombie(old), f"old {app_id} still runs"
    statuses = Counter(a.status for a in outcome.answers)
    failures = Counter((a.status, a.body[:160]) for a in outcome.failures())
    assert not failures, f"{dict(statuses)}; rolls {rolls.seconds}; failures {failures}"
    bodies = [json.loads(a.body) for a in outcome.answers]
    assert len(bodies) >= 10 * 20
    assert {b["status"] for b in bodies} == {"completed"}, Counter(b["status"] for b in bodies)
    expected = steady_load.expected_balances(payers, outcome)
    assert steady_load.balances(platform, payers) == expected
    assert sum(expected) == steady_load.FUNDS * len(payers)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
