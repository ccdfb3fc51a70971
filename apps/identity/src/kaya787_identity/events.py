"""Versioned events identity publishes (through the Dapr outbox)."""

from typing import Final

USER_REGISTERED_V1: Final = "identity.user-registered.v1"
