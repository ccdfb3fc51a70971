"""HTTP routes of accounts: translate requests to use cases, nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from kaya787_contracts.base import Stamp
from kaya787_kit.auth import require_scopes
from kaya787_kit.money import MAX_SAFE_INTEGER
from kaya787_kit.pagination import Page, page_of
from kaya787_kit.principal import Principal
from kaya787_kit.problems import problem_responses
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, TypeAdapter

from kaya787_accounts.domain import PostingRecord, PostingRequest
from kaya787_accounts.responses import AccountDescription, AccountOut, EntryOut, PostingOut
from kaya787_accounts.service import AccountsService

public = APIRouter(
    prefix="/api/v1/accounts", tags=["accounts"], responses=problem_responses(401, 403, 422, 503)
)
internal = APIRouter(prefix="/internal", responses=problem_responses(404, 422, 503))

SCOPE = "accounts"
Caller = Annotated[Principal, Depends(require_scopes(SCOPE))]
# Ids we mint are UUIDs (with a step suffix); system accounts are "<role>-<currency>".
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:._-]*$"


def _service(request: Request) -> AccountsService:
    service: AccountsService = request.app.state.accounts
    return service


class OpenAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[A-Z]{3}$")


@public.post("", status_code=201, response_model=AccountOut)
async def open_account(body: OpenAccount, request: Request, caller: Caller) -> JSONResponse:
    account = await _service(request).open(caller.subject, body.currency)
    return JSONResponse(
        account.public(), status_code=201, headers={"Location": f"/api/v1/accounts/{account.id}"}
    )


@public.get("")
async def list_accounts(request: Request, caller: Caller) -> Page[AccountOut]:
    accounts = await _service(request).list_owned(caller.subject)
    return page_of([AccountOut(**a.public()) for a in accounts], None)


@public.get("/{account_id}", responses=problem_responses(404))
async def get_account(account_id: str, request: Request, caller: Caller) -> AccountOut:
    return AccountOut(**(await _service(request).get_owned(caller.subject, account_id)).public())


@public.get("/{account_id}/entries", responses=problem_responses(404))
async def entries(
    account_id: str,
    request: Request,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> Page[EntryOut]:
    items, next_cursor = await _service(request).entries(caller.subject, account_id, limit, cursor)
    return page_of([EntryOut.model_validate(item) for item in items], next_cursor)


# The posting event's own rule for stamps (kaya787_contracts), applied at the edge.
_STAMP: TypeAdapter[datetime] = TypeAdapter(Stamp)


def _aware_time(value: str) -> str:
    _STAMP.validate_python(value)
    return value


class PostingBody(BaseModel):
    """One posting: `amount` moves from the debited to the credited account, atomically."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=160, pattern=ID_PATTERN)
    transaction_id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
    kind: str = Field(max_length=20)
    step: str = Field(max_length=20)
    debit_account_id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
    credit_account_id: str = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
    # Bounded by the largest integer a JSON number keeps exactly through the sidecar; the
    # currency's own bound (its exponent) is the domain's.
    amount: StrictInt = Field(gt=0, le=MAX_SAFE_INTEGER)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    authorised_by: str | None = Field(default=None, max_length=128)
    # Checked here, by the event's rule, not when the event is built: a bad stamp is the
    # caller's 422.
    created_at: Annotated[str, AfterValidator(_aware_time)] | None = Field(
        default=None, max_length=40
    )


# The money path answers its plain JSON without re-validating it; the models document it.
_POSTING: dict[int | str, dict[str, Any]] = {200: {"model": PostingOut}}


def _posting_json(record: PostingRecord, duplicate: bool) -> JSONResponse:
    return JSONResponse({**record.to_json(), "duplicate": duplicate})


@internal.post("/postings", responses=_POSTING)
async def post(body: PostingBody, request: Request) -> JSONResponse:
    result = await _service(request).post(PostingRequest(**body.model_dump()))
    return _posting_json(result.record, result.duplicate)


@internal.get("/postings/{posting_id}", responses=_POSTING)
async def get_posting(posting_id: str, request: Request) -> JSONResponse:
    return _posting_json(await _service(request).posting(posting_id), duplicate=True)


@internal.get("/accounts/{account_id}")
async def describe(account_id: str, request: Request) -> AccountDescription:
    return AccountDescription(**await _service(request).describe(account_id))
