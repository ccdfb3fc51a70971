"""Bounds on integer money: what survives a trip through the sidecar exactly.

The sidecar decodes JSON state values and event payloads into Go's float64, which holds
every integer only up to 2^53 - 1; 9007199254740993 would come back as ...992. Amounts and
balances are therefore kept within ±MAX_SAFE_INTEGER everywhere one crosses the sidecar.
"""

from typing import Final

MAX_SAFE_INTEGER: Final = 2**53 - 1


def is_safe(value: int) -> bool:
    return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER


def minor_limit(exponent: int, max_major: int) -> int:
    """`max_major` whole units of a currency with this ISO 4217 exponent, in minor units,
    never beyond MAX_SAFE_INTEGER (10^6 USD is 10^8 cents; 10^6 JPY is 10^6 yen)."""
    return min(max_major * int(10**exponent), MAX_SAFE_INTEGER)
