"""Check a payload against the committed JSON Schema of its topic (libs/contracts/schemas),
the file other teams read, not the pydantic model it was generated from."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import (  # type: ignore[import-untyped]
    Draft202012Validator,
    FormatChecker,
)

from tests.support.platform import ROOT

SCHEMAS = ROOT / "libs" / "contracts" / "schemas"


# jsonschema checks "date-time" only with an optional package installed; check it here,
# the way the consumers read a stamp (RFC 3339, with an offset).
def _rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the schema's "type" judges non-strings
    if "T" not in value.upper():
        raise ValueError(f"{value!r} has no time")
    return datetime.fromisoformat(value).tzinfo is not None


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_rfc3339)


@cache
def validator(topic: str) -> Draft202012Validator:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{topic}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def problems(topic: str, payload: Any) -> list[str]:
    """Every way `payload` breaks the committed schema of `topic` (none: it is valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(topic).iter_errors(payload)
    ]
