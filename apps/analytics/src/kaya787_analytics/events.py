"""The versioned domain events analytics consumes: topic names and payload models."""

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

USER_REGISTERED_V1: Final = "identity.user-registered.v1"


class UserRegisteredV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(min_length=1, max_length=128)
