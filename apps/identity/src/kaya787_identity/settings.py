"""Settings of the identity service."""

from kaya787_kit.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    app_id: str = "identity"
