import json
import logging

from kaya787_kit.json_logging import REDACTED, JsonFormatter, redact


def _format(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    line = JsonFormatter("identity").format(record)
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_line_has_the_fields_elk_needs() -> None:
    entry = _format("hello %s", "world")
    assert entry["message"] == "hello world"
    assert entry["service"] == "identity"
    assert entry["level"] == "INFO"
    assert "timestamp" in entry


def test_sensitive_keys_are_redacted() -> None:
    entry = _format("login", password="hunter2", user={"email": "a@b.c", "api_key": "k"})
    assert entry["password"] == REDACTED
    assert entry["user"] == {"email": "a@b.c", "api_key": REDACTED}


def test_bearer_tokens_and_jwts_in_messages_are_redacted() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    entry = _format("header Authorization: Bearer abc.def and %s", jwt)
    assert "abc.def" not in str(entry["message"])
    assert jwt not in str(entry["message"])


def test_form_encoded_secrets_are_redacted() -> None:
    assert redact("grant_type=password&password=hunter2&x=1") == (
        f"grant_type=password&password={REDACTED}&x=1"
    )
