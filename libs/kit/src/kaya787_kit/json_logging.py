"""JSON-lines logging for ELK, with secrets redacted before anything is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

REDACTED = "[REDACTED]"

# The id of the request being served (X-Request-ID), set by RequestLogMiddleware and by
# workflow activities from their carried context; every line logged meanwhile carries it.
current_request_id: ContextVar[str | None] = ContextVar("kaya787_request_id", default=None)

# Keys whose values are never logged, whatever their content.
_SENSITIVE_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|api[-_]?key|cookie|credential|private)", re.I
)
# Values that look like credentials even under an innocent key, in messages and in
# exception text (reprs of request bodies, validation errors that echo their input).
_SENSITIVE_VALUE = (
    # The whole header value, scheme and credential: `Authorization: Basic dXNlcjpwdw==`.
    re.compile(r"(?i)\bauthorization\b['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic)\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # a JWT
    # key=value (forms, query strings) and 'key': 'value' / "key": "value" (reprs, JSON)
    # for any key naming a secret: password, client_secret, refresh_token, dapr-api-token...
    # Tried only where a word starts: from every position inside a long word the engine
    # would rescan the rest of it, and a 5,000-character query value cost 3 s of CPU.
    re.compile(
        r"(?i)(?<![\w-])"
        r"([\w-]*(?:pass(?:word)?|secret|token|api[-_]?key|credential)[\w-]*['\"]?\s*[:=]\s*)"
        r"(?:'[^']*'|\"[^\"]*\"|[^&\s,;}'\"]+)"
    ),
)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def redact_text(text: str) -> str:
    for pattern in _SENSITIVE_VALUE:
        text = pattern.sub(lambda m: (m.group(1) + REDACTED) if m.lastindex else REDACTED, text)
    return text


def _correlation() -> dict[str, str]:
    """trace_id / span_id of the active span (hex, as Jaeger shows them) and the request id."""
    fields: dict[str, str] = {}
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        fields["trace_id"] = format(context.trace_id, "032x")
        fields["span_id"] = format(context.span_id, "016x")
    request_id = current_request_id.get()
    if request_id:
        fields["request_id"] = request_id
    return fields


def redact(value: Any, key: str | None = None) -> Any:
    if key is not None and _SENSITIVE_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
            **_correlation(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route root, uvicorn and dapr loggers to one JSON stream on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # One line per sidecar call is noise; failures surface as errors of their own.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
