"""Write (or check) the JSON Schema of every event: one file per topic.

    python -m kaya787_contracts.export           # rewrite libs/contracts/schemas/*.json
    python -m kaya787_contracts.export --check   # exit 1 if a committed schema differs

A schema describes what a producer publishes (every field present); see `Event`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kaya787_contracts import EVENTS
from kaya787_contracts.base import Event

# libs/contracts/schemas, next to src/ (the package is installed editable in the workspace).
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_of(event: type[Event]) -> dict[str, Any]:
    schema = event.model_json_schema(mode="serialization")
    return {
        "$schema": DIALECT,
        "$id": f"urn:kaya787:event:{event.TOPIC}",
        "x-topic": event.TOPIC,
        "x-event-types": list(event.EVENT_TYPES),
        "x-version": event.VERSION,
        **schema,
    }


def rendered() -> dict[str, str]:
    """File name -> text of every schema, exactly as committed."""
    return {
        f"{event.TOPIC}.json": json.dumps(schema_of(event), indent=2, ensure_ascii=False) + "\n"
        for event in EVENTS
    }


def drift(directory: Path) -> list[str]:
    """The schema files in `directory` that are missing, differ, or name no event."""
    wanted = rendered()
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    changed = [
        name
        for name, text in wanted.items()
        if name not in present or (directory / name).read_text() != text
    ]
    return sorted(changed + [name for name in present if name not in wanted])


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for stale in directory.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (directory / name).write_text(text)
    return sorted(wanted)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kaya787_contracts.export",
        description="Write the JSON Schema of every event (one <topic>.json per topic), "
        "generated from the kaya787_contracts models.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"where the schemas live (default: {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and name the files that differ from the models",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = drift(args.dir)
        for name in stale:
            print(f"out of date: {args.dir / name}", file=sys.stderr)
        if stale:
            print("run: python -m kaya787_contracts.export (or make schemas)", file=sys.stderr)
        return 1 if stale else 0
    for name in write(args.dir):
        print(args.dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
