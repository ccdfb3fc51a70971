"""HTTP routes of the partner simulator (internal: only transactions may call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from kaya787_kit.money import MAX_SAFE_INTEGER
from kaya787_kit.problems import problem_responses
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from kaya787_partner.domain import PAYIN, PAYOUT, RailRequest
from kaya787_partner.service import PartnerService

internal = APIRouter(prefix="/internal", responses=problem_responses(422))


class RailBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9:._-]+$")
    account_id: str = Field(min_length=1, max_length=100)
    owner_id: str = Field(min_length=1, max_length=128)
    amount: StrictInt = Field(gt=0, le=MAX_SAFE_INTEGER)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class RailOutcomeOut(BaseModel):
    """The rail's answer, the same for every retry of one id."""

    ok: bool
    reason: str | None = Field(default=None, description="Why the rail refused it.")


def _service(request: Request) -> PartnerService:
    service: PartnerService = request.app.state.partner
    return service


@internal.post("/payins")
async def payin(body: RailBody, request: Request) -> RailOutcomeOut:
    outcome = await _service(request).handle(RailRequest(kind=PAYIN, **body.model_dump()))
    return RailOutcomeOut.model_validate(outcome.to_json())


@internal.post("/payouts")
async def payout(body: RailBody, request: Request) -> RailOutcomeOut:
    outcome = await _service(request).handle(RailRequest(kind=PAYOUT, **body.model_dump()))
    return RailOutcomeOut.model_validate(outcome.to_json())
