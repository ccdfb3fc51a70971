"""What a use case may refuse with, free of any web framework.

Use cases raise these; the edge of each app maps every kind to one HTTP status and an RFC
9457 problem (kaya787_kit.problems) once, so the use cases stay callable from a test, a
worker or a CLI without FastAPI or httpx loaded. `code` is the stable, documented
machine-readable reason clients switch on (docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AppError(Exception):
    code: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.code}: {self.detail}"


class BadRequest(AppError):
    """The request is malformed or incomplete in a way the schema cannot say."""


class Unauthenticated(AppError):
    """No valid credentials came with the request."""


class Forbidden(AppError):
    """The caller is known but may not do this."""


class NotFound(AppError):
    """Nothing by that id - or nothing the caller may see: the two look the same."""


class Conflict(AppError):
    """The request is valid but the current state forbids it (a taken email, a key in use)."""


class Invalid(AppError):
    """Well-formed but unacceptable input (unknown currency, over a limit)."""


@dataclass
class Busy(AppError):
    """Nothing is wrong with the request; try again after `retry_after` seconds."""

    retry_after: int = 1


@dataclass
class Throttled(AppError):
    """Too many attempts by this caller; try again after `retry_after` seconds."""

    retry_after: int = 1
