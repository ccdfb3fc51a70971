"""The simulated rail's rules, with no I/O.

Like a card network's test cards, some amounts always fail, so tests (and people trying the
platform) can take every branch on purpose:
- a pay-in whose amount ends in 13 (minor units) is declined: "card_declined";
- a payout whose amount ends in 17 is refused: "beneficiary_bank_refused".
Besides those, `failure_rate` of requests fail, chosen by a hash of the transaction id, so
the same request always gets the same answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PAYIN, PAYOUT = "payin", "payout"
DECLINED_PAYIN_SUFFIX = 13
REFUSED_PAYOUT_SUFFIX = 17


@dataclass(frozen=True)
class RailRequest:
    kind: str  # PAYIN or PAYOUT
    id: str  # the platform's transaction id: one answer per id, forever
    account_id: str
    owner_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class RailOutcome:
    ok: bool
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "reason": self.reason}


def _draw(request_id: str) -> float:
    """A number in [0, 1) fixed by the id."""
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(request: RailRequest, failure_rate: float) -> RailOutcome:
    if request.kind == PAYIN:
        if request.amount % 100 == DECLINED_PAYIN_SUFFIX or _draw(request.id) < failure_rate:
            return RailOutcome(False, "card_declined")
        return RailOutcome(True)
    if request.amount % 100 == REFUSED_PAYOUT_SUFFIX or _draw(request.id) < failure_rate:
        return RailOutcome(False, "beneficiary_bank_refused")
    return RailOutcome(True)
