import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.errors import (
    AppError,
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    Unauthenticated,
)
from kaya787_kit.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    error_for_status,
    install_problem_handlers,
    problem_of,
)
from pydantic import BaseModel


class Body(BaseModel):
    amount: int


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "email_taken", "That email is registered.", extra={"field": "email"})

    @app.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"amount": body.amount}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    return app


def test_problem_is_rendered_as_rfc9457() -> None:
    response = TestClient(_app()).get("/conflict")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["code"] == "email_taken"
    assert body["status"] == 409
    assert body["type"].endswith("/email_taken")
    assert body["title"] == "Conflict"
    assert body["field"] == "email"
    assert body["instance"] == "/conflict"


def test_validation_error_is_422_without_echoing_input() -> None:
    response = TestClient(_app()).post("/things", json={"amount": "hunter2-password"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["code"] == "validation_error"
    assert "hunter2" not in response.text


def test_unknown_route_and_wrong_method_are_problems() -> None:
    client = TestClient(_app())
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = client.delete("/things")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


def test_unexpected_error_is_500_with_no_internals() -> None:
    response = TestClient(_app(), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "passwd" not in response.text
    assert "Traceback" not in response.text


def test_malformed_json_body_is_4xx() -> None:
    response = TestClient(_app()).post(
        "/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("idempotency_key_required", "x"), 400),
        (Unauthenticated("invalid_token", "x"), 401),
        (Forbidden("insufficient_scope", "x"), 403),
        (NotFound("account_not_found", "x"), 404),
        (Conflict("email_taken", "x"), 409),
        (Invalid("invalid_currency", "x"), 422),
        (Throttled("locked_out", "x", retry_after=7), 429),
        (Busy("contention", "x", retry_after=2), 503),
    ],
)
def test_each_kind_of_refusal_has_one_status(error: AppError, status: int) -> None:
    problem = problem_of(error)
    assert (problem.status, problem.code, problem.detail) == (status, error.code, "x")
    if status in (429, 503):
        assert problem.headers["Retry-After"] == str(getattr(error, "retry_after", None))
    if status == 401:
        assert problem.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_use_case_refusal_reaches_the_client_as_problem_json() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/busy")
    async def busy() -> None:
        raise Busy("contention", "The account is busy; retry.", extra={"account": "a1"})

    response = TestClient(app).get("/busy")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert (body["code"], body["status"], body["account"]) == ("contention", 503, "a1")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, NotFound),
        (422, Invalid),
        (409, Conflict),
        (429, Throttled),
        (502, Busy),
        (418, Invalid),
    ],
)
def test_a_peers_refusal_becomes_the_same_kind_here(status: int, kind: type[AppError]) -> None:
    error = error_for_status(status, "code", "detail")
    assert type(error) is kind
