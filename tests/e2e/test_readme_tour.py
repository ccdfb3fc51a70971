"""The README's six-step tour, run literally: its bash blocks, in order, in one shell.

The blocks are taken from README.md as they are written (nothing here rewrites them), so a
tour that stops working, or a step whose output no longer says what the README promises,
fails this test. `set -euo pipefail` is stricter than a reader's shell: a failed command
stops the tour at its step.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass

import pytest

from tests.support.platform import ROOT, Platform

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
TOUR_HEADING = "## A tour in six steps"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MARK = "@@kaya787-tour-step@@"


@dataclass(frozen=True)
class Step:
    title: str
    code: str


def tour_steps(readme: str) -> list[Step]:
    """Each `### N. …` step of the tour with the bash block under it."""
    start = readme.index(TOUR_HEADING)
    end = readme.find("\n## ", start + len(TOUR_HEADING))
    section = readme[start : end if end >= 0 else len(readme)]
    steps = []
    for part in re.split(r"^### ", section, flags=re.M)[1:]:
        title = part.splitlines()[0]
        blocks = re.findall(r"^```bash\n(.*?)^```$", part, flags=re.M | re.S)
        assert len(blocks) == 1, f"step {title!r} should have exactly one bash block"
        steps.append(Step(title, blocks[0]))
    return steps


@dataclass(frozen=True)
class TourRun:
    returncode: int
    outputs: list[str]  # stdout of each step that started
    stderr: str


@pytest.fixture(scope="module")
def tour(platform: Platform) -> TourRun:
    steps = tour_steps(README.read_text())
    script = "set -euo pipefail\n" + "".join(f"echo {MARK}\n{step.code}" for step in steps)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,  # the checkout: step 6 reads the dev reporting client's secret
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outputs = result.stdout.split(f"{MARK}\n")[1:]
    return TourRun(result.returncode, outputs, result.stderr)


def test_the_tour_has_the_six_steps_of_the_readme() -> None:
    titles = [step.title for step in tour_steps(README.read_text())]
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5", "6"]
    for word, title in zip(
        ("Register", "account", "Deposit", "Transfer", "trace", "dashboard"), titles, strict=True
    ):
        assert word in title


def test_every_step_runs_to_the_end(tour: TourRun) -> None:
    steps = tour_steps(README.read_text())
    failed = steps[len(tour.outputs) - 1].title if tour.outputs else "before the first step"
    assert tour.returncode == 0, f"the tour stopped at step {failed!r}:\n{tour.stderr}"
    assert len(tour.outputs) == len(steps)


def _out(tour: TourRun, step: int) -> str:
    if len(tour.outputs) < step:
        pytest.fail(f"step {step} never ran:\n{tour.stderr}")
    return tour.outputs[step - 1]


def test_step_1_registers_and_signs_in(tour: TourRun) -> None:
    registered, me = [json.loads(line) for line in _out(tour, 1).splitlines()]
    assert re.fullmatch(r"tour-\d+-\d+@example\.com", registered["email"])
    assert me == registered


def test_step_2_opens_two_accounts(tour: TourRun) -> None:
    assert re.fullmatch(f"checking {UUID}, savings {UUID}\n", _out(tour, 2))


def test_step_3_the_deposit_completes(tour: TourRun) -> None:
    assert re.fullmatch(f"deposit {UUID}: completed\n", _out(tour, 3))


def test_step_4_the_transfer_is_final_and_moves_the_money(tour: TourRun) -> None:
    line, account = _out(tour, 4).splitlines()
    assert re.fullmatch(f"transfer {UUID} completed", line)
    savings = json.loads(account)
    assert savings["balance"] == 2500
    assert savings["currency"] == "EUR"
    assert f"savings {savings['id']}" in _out(tour, 2)


def test_step_5_finds_the_transfers_trace_in_jaeger(tour: TourRun) -> None:
    found = re.fullmatch(r"trace ([0-9a-f]{32}) (\d+) spans: (.*)\n", _out(tour, 5))
    assert found, _out(tour, 5)
    assert set(found[3].split()) >= {"gateway", "transactions", "accounts", "analytics"}
    assert int(found[2]) >= 4


def test_step_6_the_dashboard_answers_and_counts_the_transfer(tour: TourRun) -> None:
    out = _out(tour, 6)
    status, customer, rest = out.split("\n", 2)
    assert status == "dashboard: HTTP 200"
    assert customer == "as a customer: HTTP 403"
    overview_text, link = rest.rstrip("\n").rsplit("\n", 1)
    overview = json.loads(overview_text)
    assert overview["transfers_completed"] >= 1
    assert overview["deposits_completed"] >= 1
    assert overview["volume"].get("EUR", 0) >= 12_500
    assert re.fullmatch(r"open http://127\.0\.0\.1:8080/dashboard#access_token=[\w.-]+", link)


def test_the_tour_needs_nothing_but_bash_curl_and_python3() -> None:
    """A reader pastes it into a plain shell anywhere: no jq (not in the bootstrap), no venv,
    nothing of the checkout but the dev reporting client's secret."""
    code = "\n".join(step.code for step in tour_steps(README.read_text()))
    assert re.search(r"\bjq\b", code) is None
    assert ".venv" not in code
    # The one file of the checkout it reads: the dev secret of the reporting client.
    assert set(re.findall(r"var/[\w/.-]+", code)) <= {"var/secrets/clients.json"}
