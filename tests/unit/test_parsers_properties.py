"""Property-based tests (Hypothesis) of the parsers that stand between outside input and
state keys, sidecar URLs and money: whatever the text, they answer or refuse in their one
documented way, and never raise anything else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kaya787_accounts.domain import (
    LedgerError,
    check_currency,
    parse_system_account,
    system_account_id,
)
from kaya787_identity.domain import InvalidInput, normalise_email, parse_scope
from kaya787_kit.currencies import MINOR_UNITS
from kaya787_kit.ids import is_minted_id, url_segment
from kaya787_kit.money import MAX_SAFE_INTEGER, is_safe, minor_limit
from kaya787_kit.timestamps import parse_time
from kaya787_transactions.domain import transaction_id_for

# Text as hostile clients send it: any code point, NUL, surrogate-free unicode, bidi marks.
hostile = st.text(max_size=300)
SYSTEM_ROLES = ("partner", "payouts")
pytestmark = pytest.mark.filterwarnings("ignore")


@given(st.uuids())
def test_every_uuid_we_mint_is_a_minted_id_and_no_other_spelling_is(value: uuid.UUID) -> None:
    assert is_minted_id(str(value))
    assert not is_minted_id(str(value).replace("-", ""))
    assert not is_minted_id("{" + str(value) + "}")
    assert not is_minted_id(f" {value}")


@given(hostile)
def test_a_minted_id_is_exactly_36_lowercase_hex_and_dash(value: str) -> None:
    if is_minted_id(value):
        assert len(value) == 36
        assert set(value) <= set("0123456789abcdef-")
        assert str(uuid.UUID(value)) == value


@given(hostile)
def test_a_url_segment_is_one_segment_and_decodes_back(value: str) -> None:
    segment = url_segment(value)
    assert unquote(segment) == value
    assert "/" not in segment
    assert "?" not in segment
    assert "#" not in segment
    assert "\\" not in segment
    assert segment.isascii()
    assert segment.isprintable()
    # Neither "." nor ".." (nor any dot): a sidecar normalising the path must not climb.
    assert "." not in segment


@given(hostile, hostile)
def test_a_transaction_id_is_minted_and_one_per_owner_and_key(owner: str, key: str) -> None:
    first = transaction_id_for(owner, key)
    assert is_minted_id(first)
    assert transaction_id_for(owner, key) == first
    assert transaction_id_for(owner, key + "x") != first


@given(hostile)
def test_currency_codes_are_iso_4217_or_refused_with_a_code(value: str) -> None:
    if value in MINOR_UNITS:
        assert check_currency(value) == value
        return
    with pytest.raises(LedgerError) as refused:
        check_currency(value)
    assert refused.value.code == "invalid_currency"


@given(st.sampled_from(SYSTEM_ROLES), st.sampled_from(sorted(MINOR_UNITS)))
def test_system_account_ids_round_trip(role: str, currency: str) -> None:
    assert parse_system_account(system_account_id(role, currency)) == (role, currency)


@given(hostile)
def test_only_system_account_ids_parse_as_system_accounts(value: str) -> None:
    parsed = parse_system_account(value)
    if parsed is not None:
        assert system_account_id(*parsed) == value
        assert not is_minted_id(value)  # a customer's account never passes for one


@given(hostile)
def test_emails_normalise_once_or_are_refused_on_the_email_field(value: str) -> None:
    refused: InvalidInput | None = None
    try:
        normal = normalise_email(value)
    except InvalidInput as error:
        refused = error
    if refused is not None:
        assert refused.field == "email"
        return
    assert normal == normal.lower()
    assert normalise_email(normal) == normal


@given(st.one_of(st.none(), hostile))
def test_granted_scopes_are_never_more_than_allowed(requested: str | None) -> None:
    allowed = frozenset({"profile", "accounts", "transactions"})
    granted = parse_scope(requested, allowed)
    assert granted is None or granted <= allowed


@given(st.one_of(st.none(), hostile))
def test_event_times_parse_to_aware_utc_or_none(value: str | None) -> None:
    parsed = parse_time(value)
    assert parsed is None or parsed.tzinfo == UTC


@given(st.datetimes(timezones=st.just(UTC)))
@settings(max_examples=200)
def test_event_times_round_trip_with_nanoseconds(moment: datetime) -> None:
    # Dapr (Go) writes nanoseconds and a Z.
    go_style = moment.isoformat(timespec="microseconds").replace("+00:00", "123Z")
    assert parse_time(go_style) == moment


@given(st.sampled_from(sorted(set(MINOR_UNITS.values()))), st.integers(0, 10**15))
def test_money_limits_stay_exact_through_the_sidecar(exponent: int, max_major: int) -> None:
    limit = minor_limit(exponent, max_major)
    assert is_safe(limit)
    assert limit <= MAX_SAFE_INTEGER
    assert limit == min(max_major * 10**exponent, MAX_SAFE_INTEGER)
