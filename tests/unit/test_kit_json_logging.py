import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from kaya787_kit.json_logging import (
    REDACTED,
    JsonFormatter,
    current_request_id,
    redact,
    redact_text,
)
from kaya787_kit.service_app import create_service_app
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.tracing import Tracing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


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


# --- correlation: trace, span and request ids -------------------------------------------


def _tracer() -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return provider.get_tracer("test")


def test_lines_carry_the_active_spans_trace_and_span_id() -> None:
    tracer = _tracer()
    with tracer.start_as_current_span("work") as span:
        entry = _format("inside")
    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
    assert len(str(entry["trace_id"])) == 32


def test_lines_outside_any_span_have_no_trace_fields() -> None:
    entry = _format("outside")
    assert "trace_id" not in entry
    assert "span_id" not in entry


def test_lines_carry_the_request_id_while_it_is_set() -> None:
    reset = current_request_id.set("req-42")
    try:
        assert _format("x")["request_id"] == "req-42"
    finally:
        current_request_id.reset(reset)
    assert "request_id" not in _format("x")


# --- redaction ------------------------------------------------------------------------------

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
PASSWORD = "correct horse battery staple"


def _format_exception(exc: Exception, message: str = "failed") -> dict[str, object]:
    try:
        raise exc
    except Exception:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, message, None, sys.exc_info())
    parsed: dict[str, object] = json.loads(JsonFormatter("identity").format(record))
    return parsed


def test_a_token_and_a_password_never_reach_the_line() -> None:
    entry = _format(
        "login for %s with %s",
        "ada@example.com",
        {"password": PASSWORD, "access_token": JWT},
        password=PASSWORD,
        headers={"Authorization": f"Bearer {JWT}", "x-request-id": "r"},
    )
    line = json.dumps(entry)
    assert PASSWORD not in line
    assert "horse" not in line
    assert JWT not in line
    assert "c2lnbmF0dXJl" not in line  # not even the signature part
    assert entry["headers"] == {"Authorization": REDACTED, "x-request-id": "r"}
    assert "ada@example.com" in str(entry["message"])


def test_secrets_in_exception_text_are_redacted() -> None:
    entry = _format_exception(
        ValueError(
            f"bad input_value={{'email': 'a@b.c', 'password': '{PASSWORD}'}} "
            f"while sending Authorization: Bearer {JWT}"
        )
    )
    text = str(entry["exception"])
    assert "ValueError" in text
    assert PASSWORD not in text
    assert JWT not in text
    assert "a@b.c" in text


def test_basic_credentials_and_api_tokens_in_text_are_redacted() -> None:
    text = redact(
        'authorization: Basic dXNlcjpodW50ZXIy dapr-api-token="tok-123456" '
        "client_secret=s3cr3t refresh_token: 'rt-987'"
    )
    for leaked in ("dXNlcjpodW50ZXIy", "tok-123456", "s3cr3t", "rt-987"):
        assert leaked not in text, leaked


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = "transfer t-1 completed: 1234 USD from a-1 to a-2"
    assert redact(text) == text


# --- access lines ---------------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("demo"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Lines()
    logger = logging.getLogger("kaya787.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _logged_app(exporter: InMemorySpanExporter) -> TestClient:
    router = APIRouter()

    @router.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        logging.getLogger("demo").info("looked up %s", thing_id)
        return {"id": thing_id}

    settings = ServiceSettings(
        app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token="a" * 40
    )
    tracing = Tracing("demo", exporter=exporter, environ={})

    class Idle(Sidecar):
        async def open(self) -> None:
            pass

        async def close(self) -> None:
            pass

    app = create_service_app(
        settings, title="demo", routers=[router], sidecar=Idle(settings, tracing), tracing=tracing
    )
    return TestClient(app, headers={"dapr-api-token": "a" * 40})


def test_one_access_line_per_request_with_route_status_and_duration(
    access_lines: list[dict[str, Any]],
) -> None:
    exporter = InMemorySpanExporter()
    with _logged_app(exporter) as client:
        response = client.get(
            f"/api/v1/things/7?token={JWT}&password=x", headers={"x-request-id": "req-7"}
        )
    assert response.headers["x-request-id"] == "req-7"
    (line,) = [entry for entry in access_lines if entry["logger"] == "kaya787.access"]
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/things/{thing_id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == "req-7"
    assert line["level"] == "INFO"
    # Logged inside the request's server span, so it names its trace.
    (server,) = exporter.get_finished_spans()
    assert server.context is not None
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    text = json.dumps(access_lines)
    assert JWT not in text
    assert "?" not in str(line["route"])
    assert "/things/7" not in text


def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent(
    access_lines: list[dict[str, Any]],
) -> None:
    with _logged_app(InMemorySpanExporter()) as client:
        made = client.get("/api/v1/things/1").headers["x-request-id"]
        forged = client.get("/api/v1/things/1", headers={"x-request-id": 'x" injected="1'}).headers[
            "x-request-id"
        ]
    assert len(made) == 32
    assert forged != 'x" injected="1'
    assert len(forged) == 32
    assert made != forged


def test_probes_log_at_debug_only(access_lines: list[dict[str, Any]]) -> None:
    with _logged_app(InMemorySpanExporter()) as client:
        client.get("/healthz")
    (line,) = access_lines
    assert line["level"] == "DEBUG"
    assert line["route"] == "/healthz"


def test_redacting_a_long_word_takes_time_in_proportion_to_it() -> None:
    # It runs on every request's URL on the event loop: the key pattern, tried from every
    # position of a 5,000-character query value, once took 3 s (and 200,000 takes hours).
    url = "/api/v1/transactions?account_id=" + "x" * 200_000 + "&token=abc"
    started = time.perf_counter()
    redacted = redact_text(url)
    assert time.perf_counter() - started < 2.0
    assert redacted.endswith("&token=[REDACTED]")
