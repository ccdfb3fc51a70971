import pytest
from kaya787_kit.settings import ServiceSettings
from pydantic import ValidationError

GOOD = {
    "app_id": "identity",
    "app_port": 8101,
    "dapr_api_token": "a" * 32,
    "app_api_token": "b" * 32,
}


def test_defaults_bind_loopback() -> None:
    settings = ServiceSettings(**GOOD)  # type: ignore[arg-type]
    assert settings.app_host == "127.0.0.1"
    assert settings.sidecar_http_url == "http://127.0.0.1:3500"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="loopback"):
        ServiceSettings(**{**GOOD, "app_host": host})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["dapr_api_token", "app_api_token"])
def test_short_or_missing_tokens_are_refused(field: str) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(**{**GOOD, field: "short"})  # type: ignore[arg-type]
    without = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(ValidationError):
        ServiceSettings(**without)  # type: ignore[arg-type]


def test_tokens_do_not_show_in_repr() -> None:
    assert "aaaa" not in repr(ServiceSettings(**GOOD))  # type: ignore[arg-type]
