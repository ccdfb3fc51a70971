"""HTTP routes of accounts: translate requests to use cases, nothing more."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from kaya787_kit.auth import Principal, require_scopes
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from kaya787_accounts.domain import Posting
from kaya787_accounts.service import AccountsService

public = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])
internal = APIRouter(prefix="/internal", include_in_schema=False)

SCOPE = "accounts"
Caller = Annotated[Principal, Depends(require_scopes(SCOPE))]
# The largest amount one posting may move, in minor units (a sanity bound, not a limit policy).
MAX_POSTING = 10**12


def _service(request: Request) -> AccountsService:
    service: AccountsService = request.app.state.accounts
    return service


class OpenAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")


@public.post("", status_code=201)
async def open_account(body: OpenAccount, request: Request, caller: Caller) -> JSONResponse:
    account = await _service(request).open(caller.subject, body.currency)
    return JSONResponse(
        account.public(), status_code=201, headers={"Location": f"/api/v1/accounts/{account.id}"}
    )


@public.get("")
async def list_accounts(request: Request, caller: Caller) -> dict[str, Any]:
    accounts = await _service(request).list_owned(caller.subject)
    return {"items": [a.public() for a in accounts]}


@public.get("/{account_id}")
async def get_account(account_id: str, request: Request, caller: Caller) -> dict[str, Any]:
    return (await _service(request).get_owned(caller.subject, account_id)).public()


@public.get("/{account_id}/entries")
async def entries(
    account_id: str,
    request: Request,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    items, next_cursor = await _service(request).entries(caller.subject, account_id, limit, cursor)
    return {
        "items": [
            {k: item[k] for k in ("transaction_id", "amount", "balance_after", "created_at")}
            for item in items
        ],
        "next_cursor": None if next_cursor is None else str(next_cursor),
    }


class PostingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction_id: str = Field(min_length=1, max_length=100)
    account_id: str = Field(min_length=1, max_length=100)
    amount: StrictInt = Field(gt=0, le=MAX_POSTING)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # Which step of the transaction this is; the same step twice is applied once.
    step: str = Field(default="", max_length=40)


async def _post(request: Request, body: PostingRequest, sign: int, step: str) -> dict[str, Any]:
    result = await _service(request).apply(
        Posting(
            transaction_id=body.transaction_id,
            step=body.step or step,
            account_id=body.account_id,
            amount=sign * body.amount,
            currency=body.currency,
        )
    )
    return {"balance_after": result.balance_after, "duplicate": result.duplicate}


@internal.post("/debit")
async def debit(body: PostingRequest, request: Request) -> dict[str, Any]:
    return await _post(request, body, -1, "debit")


@internal.post("/credit")
async def credit(body: PostingRequest, request: Request) -> dict[str, Any]:
    return await _post(request, body, +1, "credit")


@internal.get("/accounts/{account_id}")
async def describe(account_id: str, request: Request) -> dict[str, str]:
    return await _service(request).describe(account_id)
