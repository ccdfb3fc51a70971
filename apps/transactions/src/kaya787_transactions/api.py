"""HTTP routes of transactions: translate requests to use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from kaya787_kit.auth import require_scopes
from kaya787_kit.ids import MINTED_ID_PATTERN
from kaya787_kit.money import MAX_SAFE_INTEGER
from kaya787_kit.pagination import Page, page_of
from kaya787_kit.principal import Principal
from kaya787_kit.problems import problem_responses
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from kaya787_transactions.responses import TransactionOut
from kaya787_transactions.service import TransactionsService

router = APIRouter(
    prefix="/api/v1", tags=["transactions"], responses=problem_responses(401, 403, 422, 503)
)
# Money POSTs answer the transaction as stored, without re-validating it; this documents it.
_MONEY: dict[int | str, dict[str, Any]] = {
    201: {"model": TransactionOut, "description": "A transfer, final at once."},
    202: {"model": TransactionOut, "description": "A deposit or withdrawal, pending."},
    200: {"model": TransactionOut, "description": "A replay (Idempotent-Replayed: true)."},
    **problem_responses(400, 404),
}
Caller = Annotated[Principal, Depends(require_scopes("transactions"))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$"),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
AccountId = Annotated[str, Field(min_length=1, max_length=100)]
# Strict: 10.5, "10", true and 1e3 are refused. Bounded by the largest integer a JSON
# number keeps exactly through the sidecar; the service enforces the per-currency limit.
Amount = Annotated[StrictInt, Field(gt=0, le=MAX_SAFE_INTEGER)]


def _service(request: Request) -> TransactionsService:
    service: TransactionsService = request.app.state.transactions
    return service


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountMove(_Body):
    account_id: AccountId
    amount: Amount
    currency: Currency


class TransferRequest(_Body):
    source_account_id: AccountId
    destination_account_id: AccountId
    amount: Amount
    currency: Currency


async def _submit(
    request: Request, caller: Principal, kind: str, body: _Body, key: str | None
) -> JSONResponse:
    submitted = await _service(request).submit(caller.subject, kind, body.model_dump(), key)
    transaction = submitted.transaction
    # Lets an operator find this request's trace by transaction id (the ops console).
    trace.get_current_span().set_attribute("kaya787.transaction_id", transaction.id)
    headers = {"Location": f"/api/v1/transfers/{transaction.id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    # A transfer is final at once (201); a rail transaction is accepted and pending (202).
    status = 202 if transaction.status == "pending" else 201
    return JSONResponse(transaction.public(), status_code=status, headers=headers)


@router.post("/deposits", status_code=202, responses=_MONEY)
async def deposit(
    body: AccountMove, request: Request, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    return await _submit(request, caller, "deposit", body, key)


@router.post("/withdrawals", status_code=202, responses=_MONEY)
async def withdrawal(
    body: AccountMove, request: Request, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    return await _submit(request, caller, "withdrawal", body, key)


@router.post("/transfers", status_code=201, responses=_MONEY)
async def transfer(
    body: TransferRequest, request: Request, caller: Caller, key: IdempotencyKey = None
) -> JSONResponse:
    return await _submit(request, caller, "transfer", body, key)


# Unset optional fields stay out: a deposit has no source_account_id, not a null one.
@router.get(
    "/transfers/{transaction_id}",
    responses=problem_responses(404),
    response_model_exclude_unset=True,
)
async def get_transfer(transaction_id: str, request: Request, caller: Caller) -> TransactionOut:
    return TransactionOut(**(await _service(request).get(caller.subject, transaction_id)).public())


@router.get("/transactions", response_model_exclude_unset=True)
async def history(
    request: Request,
    caller: Caller,
    account_id: Annotated[str | None, Query(pattern=MINTED_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> Page[TransactionOut]:
    items, next_cursor = await _service(request).history(caller.subject, account_id, limit, cursor)
    return page_of([TransactionOut(**t.public()) for t in items], next_cursor)
