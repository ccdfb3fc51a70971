"""The chaos run's verdicts: what counts as lost, doubled or broken, and which processes it
kills. The run itself is exercised against the real platform (test_chaos.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.bench.payers import Payer
from tests.chaos.audit import LedgerView, judge_ledger
from tests.chaos.careful_client import Submission
from tests.chaos.faults import catalogue, select
from tests.chaos.phase import Row
from tests.chaos.table import table

PAYER = Payer("Bearer t", ["acc-1", "acc-2"], "r")


def _accepted(transaction_id: str, status: str = "completed") -> Submission:
    submission = Submission(PAYER, {"amount": 1})
    submission.ids.add(transaction_id)
    submission.accepted = {"id": transaction_id, "status": status}
    return submission


def _view(entries: dict[str, list[int]], balances: dict[str, int] | None = None) -> LedgerView:
    view = LedgerView()
    view.entries.update(entries)
    balances = balances if balances is not None else {"acc-1": 100, "acc-2": 100}
    view.balances = balances
    view.entry_sums = dict(balances)
    return view


def test_a_completed_transfer_with_its_two_entries_is_clean() -> None:
    known = {"fund"}
    audit = judge_ledger(
        [_accepted("t1")], _view({"fund": [200], "t1": [-1, 1]}), known, funded=200
    )
    assert (audit.lost, audit.doubled, audit.broken) == ([], [], [])
    assert known == {"fund", "t1"}


@pytest.mark.parametrize(
    ("entries", "submission", "verdict"),
    [
        ({}, _accepted("t1"), "lost"),  # completed, nothing posted
        ({"t1": [-1]}, _accepted("t1"), "lost"),  # half-written
        ({}, _accepted("t1", "pending"), "lost"),  # never final
        ({"t1": [-1, 1, -1, 1]}, _accepted("t1"), "doubled"),  # applied twice
        ({"t1": [-1, 1], "t9": [-1, 1]}, _accepted("t1"), "doubled"),  # nobody was told of t9
        ({"t1": [-1, 1]}, _accepted("t1", "failed"), "broken"),  # failed yet posted
        ({"t1": [-1, 2]}, _accepted("t1"), "broken"),  # does not balance
    ],
)
def test_what_counts_as_lost_doubled_or_broken(
    entries: dict[str, list[int]], submission: Submission, verdict: str
) -> None:
    audit = judge_ledger([submission], _view({"fund": [200], **entries}), {"fund"}, funded=200)
    found = {"lost": audit.lost, "doubled": audit.doubled, "broken": audit.broken}
    assert found[verdict], found
    assert not any(v for k, v in found.items() if k != verdict), found


def test_one_key_answered_with_two_transactions_is_doubled() -> None:
    submission = _accepted("t1")
    submission.ids.add("t2")
    audit = judge_ledger([submission], _view({"fund": [200], "t1": [-1, 1]}), {"fund"}, 200)
    assert audit.doubled
    assert "answered" in audit.doubled[0]


@pytest.mark.parametrize(
    ("balances", "sums", "funded"),
    [
        ({"acc-1": 150, "acc-2": 50}, {"acc-1": 150, "acc-2": 50}, 199),  # money appeared
        ({"acc-1": 201, "acc-2": -1}, {"acc-1": 201, "acc-2": -1}, 200),  # negative
        ({"acc-1": 100, "acc-2": 100}, {"acc-1": 99, "acc-2": 101}, 200),  # balance vs entries
    ],
)
def test_ledger_invariants(balances: dict[str, int], sums: dict[str, int], funded: int) -> None:
    view = _view({"fund": [200]}, balances)
    view.entry_sums = sums
    assert judge_ledger([], view, {"fund"}, funded).broken


def test_a_refused_valid_transfer_breaks_an_invariant() -> None:
    submission = Submission(PAYER, {"amount": 1})
    submission.refused = "401 unauthenticated"
    assert judge_ledger([submission], _view({"fund": [200]}), {"fund"}, 200).broken


def test_every_process_but_observability_is_a_fault_and_labels_say_what_it_is() -> None:
    names = ["redis", "jaeger", "daprd-accounts", "app-accounts", "prometheus", "ops-console"]
    faults = catalogue(names)
    assert [f.label for f in faults] == ["redis", "sidecar accounts", "app accounts"]
    assert select(faults, ["app accounts", "redis"]) == [faults[2], faults[0]]
    with pytest.raises(SystemExit, match="unknown fault"):
        select(faults, ["jaeger"])


def test_a_row_is_clean_only_with_zeros_and_a_recovery() -> None:
    clean = Row("app accounts", 4.2, accepted=50, client_errors=Counter({"503": 3}))
    assert clean.clean
    variants: list[dict[str, Any]] = [
        {"serves_again": None},
        {"given_up": 1},
        {"transfers_lost": 1},
        {"transfers_doubled": 1},
        {"events_lost": 1},
        {"events_doubled": 1},
        {"broken": ["x"]},
    ]
    for change in variants:
        row = Row("app accounts", 4.2)
        for name, value in change.items():
            setattr(row, name, value)
        assert not row.clean, change
    text = table([clean, Row("redis", None, broken=["balances sum to 1, not 2"])])
    assert "| app accounts | 4.2 s | 50 | 3 x 503 |" in text
    assert "| redis | never |" in text
    assert "redis: balances sum to 1, not 2" in text
