"""tests/support/ledger.money_problems: what the soak (and any load run) calls money lost."""

from __future__ import annotations

from tests.support.ledger import Entry, money_problems

# Two accounts funded by deposits before the run, then two transfers between them.
FUNDED = {"a": [Entry("dep-a", 1_000)], "b": [Entry("dep-b", 500)]}
BEFORE = {"a": 1_000, "b": 500}


def entries(*extra: tuple[str, str, int]) -> dict[str, list[Entry]]:
    listed = {account: list(found) for account, found in FUNDED.items()}
    for account, transaction, amount in extra:
        listed[account].append(Entry(transaction, amount))
    return listed


GOOD = entries(("a", "t1", -100), ("b", "t1", 100), ("b", "t2", -30), ("a", "t2", 30))
AFTER = {"a": 930, "b": 570}


def test_balanced_transfers_and_a_failed_one_that_posted_nothing_are_fine() -> None:
    transfers = {"t1": "completed", "t2": "completed", "t3": "failed"}
    assert money_problems(transfers, GOOD, BEFORE, AFTER) == []


def test_a_double_posting_is_found() -> None:
    doubled = entries(
        ("a", "t1", -100), ("b", "t1", 100), ("a", "t1", -100), ("b", "t1", 100)
    )  # the same transfer posted twice: the sum still holds, the balances agree
    problems = money_problems({"t1": "completed"}, doubled, BEFORE, {"a": 800, "b": 700})
    assert problems == ["completed t1 posted [-100, -100, 100, 100]"]


def test_a_lost_leg_changes_the_sum() -> None:
    one_leg = entries(("a", "t1", -100))
    problems = money_problems({"t1": "completed"}, one_leg, BEFORE, {"a": 900, "b": 500})
    assert "sum of balances 1500 -> 1400" in problems
    assert "completed t1 posted [-100]" in problems


def test_a_failed_transfer_that_posted_and_an_open_one_are_found() -> None:
    problems = money_problems({"t1": "failed", "t2": "pending"}, GOOD, BEFORE, AFTER)
    assert "failed t1 posted [-100, 100]" in problems
    assert "t2 is pending" in problems


def test_a_balance_that_disagrees_with_its_entries_is_found() -> None:
    transfers = {"t1": "completed", "t2": "completed"}
    # Money conserved overall, but a moved without an entry saying so.
    problems = money_problems(transfers, GOOD, BEFORE, {"a": 920, "b": 580})
    assert problems == ["a: 1000 + entries -70 != 920", "b: 500 + entries 70 != 580"]


def test_a_stray_posting_during_the_run_is_found() -> None:
    transfers = {"t1": "completed", "t2": "completed"}
    stray = {account: [*found] for account, found in GOOD.items()}
    stray["a"].append(Entry("someone-else", 5))
    problems = money_problems(transfers, stray, BEFORE, {"a": 935, "b": 570})
    assert "sum of balances 1500 -> 1505" in problems
    assert "a: other entries sum to 1005, was 1000" in problems


def test_a_negative_balance_is_found() -> None:
    problems = money_problems({}, entries(), {"a": -1, "b": 1}, {"a": -1, "b": 1})
    assert "a is negative: -1" in problems
