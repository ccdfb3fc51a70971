"""The event contracts (kaya787_contracts): the committed schemas match the models, every
producer's real payload is valid against them and unchanged on the wire, and consumers
read it with the same model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaya787_accounts.domain import USER, Account, PostingRequest
from kaya787_accounts.service import AccountsService
from kaya787_contracts import EVENTS
from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.base import MAX_SAFE_INTEGER, Event
from kaya787_contracts.export import DEFAULT_DIR, drift, main, rendered
from kaya787_contracts.identity import TokenRevokedV1, UserRegisteredV1
from kaya787_identity.adapters import revocation_event
from kaya787_kit import money

from tests.fakes.accounts import FakeAccounts
from tests.fakes.identity import (
    FakeUsers,
    fake_identity,
)
from tests.support.contracts import SCHEMAS, problems
from tests.support.platform import ROOT

A1 = "00000000-0000-4000-8000-0000000000a1"
A2 = "00000000-0000-4000-8000-0000000000a2"
REGENERATE = "python -m kaya787_contracts.export (or: make schemas)"


# ------------------------------------------------------------------ the schemas themselves
def test_the_committed_schemas_are_what_the_models_generate() -> None:
    assert DEFAULT_DIR == SCHEMAS
    stale = drift(SCHEMAS)
    assert not stale, f"event schemas out of date: {stale}; run {REGENERATE}"


def test_drift_is_found_in_a_changed_a_missing_and_a_stray_schema(tmp_path: Path) -> None:
    assert main(["--dir", str(tmp_path)]) == 0
    assert drift(tmp_path) == []
    names = sorted(rendered())
    changed = tmp_path / names[0]
    changed.write_text(changed.read_text().replace('"maxLength"', '"maxItems"', 1))
    (tmp_path / names[1]).unlink()
    (tmp_path / "accounts.gone.v1.json").write_text("{}\n")
    assert drift(tmp_path) == sorted([names[0], names[1], "accounts.gone.v1.json"])
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--dir", str(tmp_path)]) == 0  # rewritten, the stray one removed
    assert main(["--check", "--dir", str(tmp_path)]) == 0


def test_the_export_command_documents_itself() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "kaya787_contracts.export", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--check" in shown
    assert "--dir" in shown


def test_there_is_one_schema_per_topic_and_it_says_where_the_event_goes() -> None:
    topics = [event.TOPIC for event in EVENTS]
    assert len(set(topics)) == len(topics)
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(f"{t}.json" for t in topics)
    for event in EVENTS:
        schema = json.loads((SCHEMAS / f"{event.TOPIC}.json").read_text())
        assert schema["x-topic"] == event.TOPIC
        assert schema["x-event-types"] == list(event.EVENT_TYPES)
        # Producers write every field: a consumer may rely on each key being there.
        assert sorted(schema["required"]) == sorted(event.model_fields)
        suffix = f".v{event.VERSION}"
        assert event.TOPIC.endswith(suffix)
        assert all(kind.endswith(suffix) for kind in event.EVENT_TYPES)


def test_the_contracts_load_no_web_framework_http_client_or_dapr() -> None:
    code = (
        "import sys, kaya787_contracts, kaya787_contracts.export; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'httpx', 'dapr', "
        "'starlette', 'kaya787_kit'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_money_bound_is_the_kits() -> None:
    assert MAX_SAFE_INTEGER == money.MAX_SAFE_INTEGER


@pytest.mark.parametrize("profile", ["local", "kafka"])
def test_the_components_publish_the_contracts_topics(profile: str) -> None:
    components = ROOT / "components" / profile
    identity = yaml.safe_load((components / "state" / "identity" / "statestore.yaml").read_text())
    metadata = {m["name"]: m.get("value") for m in identity["spec"]["metadata"]}
    # Dapr's outbox, not our code, publishes user-registered: its topic is set here.
    assert metadata["outboxPublishTopic"] == UserRegisteredV1.TOPIC
    pubsub = yaml.safe_load((components / "pubsub.yaml").read_text())
    scopes = {m["name"]: m.get("value", "") for m in pubsub["spec"]["metadata"]}
    publishing = dict(entry.split("=", 1) for entry in scopes["publishingScopes"].split(";"))
    producers: dict[type[Event], str] = {
        UserRegisteredV1: "identity",
        TokenRevokedV1: "identity",
        AccountOpenedV1: "accounts",
        PostingV1: "accounts",
    }
    assert set(producers) == set(EVENTS)
    for event, producer in producers.items():
        assert event.TOPIC in publishing[producer].split(","), (event.TOPIC, producer)


# -------------------------------------------------- what each producer really publishes
def _check(topic: str, payload: dict[str, Any]) -> None:
    assert problems(topic, payload) == []
    # What was published is what a consumer reads, with the same class, and back again.
    model = next(event for event in EVENTS if topic == event.TOPIC)
    assert model.model_validate(payload).model_dump(mode="json") == payload


async def test_a_registration_publishes_a_valid_user_registered_unchanged_on_the_wire() -> None:
    users = FakeUsers()
    service = fake_identity(users=users)
    user = await service.register("ada@example.com", "correct horse battery", None)
    (event,) = users.events
    payload = event.model_dump(mode="json")
    _check(UserRegisteredV1.TOPIC, payload)
    # The same bytes as before the contract existed ("+00:00", not "Z").
    assert json.dumps(payload) == json.dumps({"user_id": user.id, "registered_at": user.created_at})


def test_a_revocation_publishes_a_valid_token_revoked_unchanged_on_the_wire() -> None:
    expires_at = int(time.time()) + 900
    event = revocation_event("jti-1", expires_at)
    assert (event.topic, event.event_type, event.event_id, event.partition_key) == (
        TokenRevokedV1.TOPIC,
        "identity.token-revoked.v1",
        "jti-1:revoked",
        "jti-1",
    )
    _check(TokenRevokedV1.TOPIC, event.data)
    assert json.dumps(event.data) == json.dumps({"token_id": "jti-1", "expires_at": expires_at})


async def test_opening_an_account_publishes_a_valid_account_opened_unchanged_on_the_wire() -> None:
    repo = FakeAccounts()
    account = await AccountsService(repo).open("u1", "EUR")
    (event,) = repo.events
    assert (event.topic, event.event_type, event.event_id, event.partition_key) == (
        "accounts.account-opened.v1",
        "accounts.account-opened.v1",
        f"{account.id}:opened",
        account.id,
    )
    _check(AccountOpenedV1.TOPIC, event.data)
    before = {
        "event_type": "accounts.account-opened.v1",
        "event_id": f"{account.id}:opened",
        "account_id": account.id,
        "owner_id": "u1",
        "currency": "EUR",
        "opened_at": account.created_at,
    }
    assert json.dumps(event.data) == json.dumps(before)


def _account(account_id: str, balance: int, owner: str) -> Account:
    return Account(account_id, owner, "USD", USER, balance, "2026-12-01T10:00:00+00:00")


def _transfer(txn: str, amount: int) -> PostingRequest:
    return PostingRequest(
        id=f"{txn}:transfer",
        transaction_id=txn,
        kind="transfer",
        step="transfer",
        debit_account_id=A1,
        credit_account_id=A2,
        amount=amount,
        currency="USD",
        authorised_by="u1",
        created_at="2026-12-01T10:29:59.500000+00:00",
    )


@pytest.mark.parametrize(
    ("amount", "event_type", "code"),
    [
        (400, "accounts.posting-committed.v1", None),
        (5_000, "accounts.posting-rejected.v1", "insufficient_funds"),
    ],
)
async def test_a_posting_publishes_a_valid_posting_event_unchanged_on_the_wire(
    amount: int, event_type: str, code: str | None
) -> None:
    repo = FakeAccounts(_account(A1, 1_000, "u1"), _account(A2, 0, "u2"))
    result = await AccountsService(repo).post(_transfer("t1", amount))
    (event,) = repo.events
    assert (event.topic, event.event_type, event.event_id) == (
        "accounts.postings.v1",
        event_type,
        "t1:transfer",
    )
    _check(PostingV1.TOPIC, event.data)
    record = result.record
    assert record.code == code
    # The payload as it was built before the contract: the record between the ids.
    before = {"event_type": event_type, "event_id": record.id, **record.to_json()}
    before["posting_id"] = record.id
    assert json.dumps(event.data) == json.dumps(before)


# --------------------------------------------------- the schema check itself can fail
@pytest.mark.parametrize(
    ("topic", "payload", "broken"),
    [
        (UserRegisteredV1.TOPIC, {"user_id": "u", "registered_at": None}, None),
        (UserRegisteredV1.TOPIC, {"user_id": "u"}, "registered_at"),
        (UserRegisteredV1.TOPIC, {"user_id": "u", "registered_at": "yesterday"}, "registered_at"),
        (UserRegisteredV1.TOPIC, {"user_id": "", "registered_at": None}, "user_id"),
        (TokenRevokedV1.TOPIC, {"token_id": "j", "expires_at": -1}, "expires_at"),
        (TokenRevokedV1.TOPIC, {"token_id": "j", "expires_at": "soon"}, "expires_at"),
    ],
)
def test_the_schema_check_names_what_is_wrong(
    topic: str, payload: dict[str, Any], broken: str | None
) -> None:
    found = problems(topic, payload)
    if broken is None:
        assert found == []
    else:
        assert found
        assert any(broken in line for line in found), found


def test_a_posting_out_of_bounds_breaks_the_schema() -> None:
    repo_payload = {
        "event_type": "accounts.posting-committed.v1",
        "event_id": "t:transfer",
        "id": "t:transfer",
        "transaction_id": "t",
        "kind": "transfer",
        "step": "transfer",
        "status": "committed",
        "code": None,
        "amount": 1,
        "currency": "USD",
        "debit_account_id": A1,
        "credit_account_id": A2,
        "posted_at": "2026-12-01T10:30:00+00:00",
        "created_at": None,
        "balances": {A1: 0},
        "posting_id": "t:transfer",
    }
    assert problems(PostingV1.TOPIC, repo_payload) == []
    for field, bad in (
        ("amount", 0),
        ("amount", MAX_SAFE_INTEGER + 1),
        ("currency", "usd"),
        ("status", "pending"),
        ("event_type", "accounts.posting-lost.v1"),
        ("posted_at", "2026-12-01T10:30:00"),  # no offset
    ):
        assert problems(PostingV1.TOPIC, {**repo_payload, field: bad}), (field, bad)
