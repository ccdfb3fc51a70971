import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.app_token import AppTokenMiddleware

TOKEN = "t" * 40


def _client() -> TestClient:
    app = FastAPI()
    app.add_middleware(AppTokenMiddleware, token=TOKEN)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> dict[str, str]:
        return {"series": "none"}

    @app.get("/metrics/{rest:path}")
    async def under_metrics(rest: str) -> dict[str, str]:
        return {"rest": rest}

    @app.get("/api/v1/things")
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    return TestClient(app)


def test_missing_token_is_rejected_as_problem() -> None:
    response = _client().get("/api/v1/things")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "app_token_invalid"


def test_wrong_token_is_rejected() -> None:
    response = _client().get("/api/v1/things", headers={"dapr-api-token": TOKEN[:-1] + "x"})
    assert response.status_code == 401


def test_right_token_passes() -> None:
    response = _client().get("/api/v1/things", headers={"dapr-api-token": TOKEN})
    assert response.status_code == 200
    assert response.json() == {"ok": "yes"}


def test_liveness_needs_no_token() -> None:
    assert _client().get("/healthz").status_code == 200


def test_prometheus_scrapes_metrics_without_a_token() -> None:
    assert _client().get("/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/things", "/metrics/extra", "/metrics/", "/METRICS"])
def test_paths_other_than_the_exempt_ones_still_need_the_token(path: str) -> None:
    response = _client().get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "app_token_invalid"
