"""The chaos report: one row per fault, then what broke in detail."""

from __future__ import annotations

from tests.chaos.phase import Row

HEADER = (
    "| fault | serves again after | accepted | client errors seen | given up | transfers lost "
    "| transfers doubled | events lost | events doubled | invariants |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


def _errors(row: Row) -> str:
    if not row.client_errors:
        return "0"
    return ", ".join(f"{count} x {kind}" for kind, count in sorted(row.client_errors.items()))


def table(rows: list[Row]) -> str:
    lines = [
        f"| {r.fault} | {'never' if r.serves_again is None else f'{r.serves_again:.1f} s'} "
        f"| {r.accepted} | {_errors(r)} | {r.given_up} | {r.transfers_lost} "
        f"| {r.transfers_doubled} | {r.events_lost} | {r.events_doubled} "
        f"| {'hold' if not r.broken else f'{len(r.broken)} broken'} |"
        for r in rows
    ]
    details = [f"- {r.fault}: {d}" for r in rows for d in r.broken + r.details]
    text = HEADER + "\n".join(lines) + "\n"
    if details:
        text += "\nWhat broke:\n" + "\n".join(details[:200]) + "\n"
    return text
