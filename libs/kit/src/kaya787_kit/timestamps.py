"""RFC 3339 times as the platform's events carry them (CloudEvent `time`, payload stamps)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime; None when absent or unparseable.

    Go (Dapr) writes nanoseconds: digits past microseconds are cut, whatever the parser
    of the running Python accepts. A time without an offset is taken as UTC.
    """
    if not value:
        return None
    text = value.strip().replace("z", "Z").replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
