import pytest
from kaya787_identity.domain import (
    USER_SCOPES,
    InvalidInput,
    KeyRing,
    LoginFailures,
    normalise_email,
    parse_scope,
)


def test_email_is_normalised_and_validated() -> None:
    assert normalise_email("Jane.Doe@Example.ORG") == "jane.doe@example.org"
    for bad in ("", "jane", "jane@", "@example.org", "jane@@example.org", "a b@example.org"):
        with pytest.raises(InvalidInput):
            normalise_email(bad)


def test_scope_requests_must_stay_within_what_is_allowed() -> None:
    assert parse_scope(None, USER_SCOPES) == USER_SCOPES
    assert parse_scope("profile", USER_SCOPES) == frozenset({"profile"})
    assert parse_scope("profile identity:admin", USER_SCOPES) is None


def test_lockout_doubles_after_the_free_failures_and_is_capped() -> None:
    failures = LoginFailures()
    waits = []
    for _ in range(12):
        failures = failures.failed(now=0.0, free=3, max_lockout=60)
        waits.append(failures.locked(0.0))
    assert waits[:3] == [0, 0, 0]
    assert waits[3:7] == [2, 4, 8, 16]
    assert max(waits) == 60


def test_key_ring_publishes_ahead_and_retires_after_expiry() -> None:
    ring = KeyRing.first(["a", "b", "c"])
    assert ring.published(0) == ["a", "b"]
    rotated = ring.rotate(["a", "b", "c"], now=100, keep_old_for=50)
    assert (rotated.active, rotated.next) == ("b", "c")
    assert rotated.published(120) == ["b", "c", "a"]
    assert rotated.published(151) == ["b", "c"]
    with pytest.raises(ValueError, match="two"):
        KeyRing.first(["a"]).rotate(["a"], now=0, keep_old_for=1)
