"""Where benchmark tables go: printed, and kept as var/reports/<name>-<time>.md."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.support.platform import ROOT


def publish(name: str, title: str, table: str) -> Path:
    print(table)
    reports = ROOT / "var" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = reports / f"{name}-{stamp}.md"
    path.write_text(f"# {title} {stamp}\n\n{table}\n")
    print(f"\nreport: {path}")
    return path
