"""The events analytics consumes; their models and topics are the contracts'
(kaya787_contracts), which the producers build too."""

from typing import Final

from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.identity import UserRegisteredV1

# Each with a dead-letter topic of analytics' own (and a counter of what landed there).
DOMAIN_TOPICS: Final = (UserRegisteredV1.TOPIC, AccountOpenedV1.TOPIC, PostingV1.TOPIC)
