"""A circuit breaker on calls to one peer, as a pure state machine.

    closed --`failures` failures in a row, within `window_seconds`--> open
    open --`cooldown_seconds`--> half-open (the next call is let through as a trial)
    half-open --the trial succeeds--> closed; --it fails--> open again

While it is open every call is refused at once with CircuitOpen (and how long until the
trial), instead of each caller waiting for a peer that is down. Only what the caller says
is a failure moves it: a peer that answers a refusal (4xx) is up, so that is a success.
That is why the project has its own breaker and not Dapr's: Dapr 1.18's counts every
non-2xx answer of an app as a failure (dapr/resiliency/resiliency.yaml).

No I/O, no framework, no asyncio: time comes from the clock given (a fake one in tests).
Thread-safe, because transactions shares one breaker between its API's event loop and the
workflow worker's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

CLOSED, HALF_OPEN, OPEN = "closed", "half-open", "open"
# The gauge's values, as Dapr's own dapr_resiliency_cb_state counts them.
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
# While a trial is out, other callers are told to come back after this long: the trial
# ends within the call's timeout, usually much sooner.
TRIAL_RETRY_AFTER_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 5  # in a row, to open it
    window_seconds: float = 30.0  # a streak older than this starts over
    cooldown_seconds: float = 5.0  # open this long before the trial

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window_seconds <= 0 or self.cooldown_seconds <= 0:
            raise ValueError(f"not a breaker policy: {self}")


class CircuitOpen(Exception):
    """The breaker refused the call without making it; try again after `retry_after` s."""

    def __init__(self, target: str, retry_after: float) -> None:
        super().__init__(f"calls to {target} are paused for {retry_after:.1f}s")
        self.target = target
        self.retry_after = retry_after


class BreakerListener(Protocol):
    """Told of every change of state and every refused call (metrics, logs)."""

    def on_change(self, target: str, old: str, new: str) -> None: ...

    def on_reject(self, target: str) -> None: ...


class CircuitBreaker:
    def __init__(
        self,
        target: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        listener: BreakerListener | None = None,
    ) -> None:
        self.target = target
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._listener = listener
        self._lock = threading.Lock()
        self._state = CLOSED
        self._streak = 0
        self._streak_started = 0.0
        self._opened_at = 0.0
        self._trial_out = False

    @property
    def state(self) -> str:
        """Half-open as soon as the cool-down is over, though no call has come yet."""
        with self._lock:
            return self._current(self._clock())

    def _current(self, now: float) -> str:
        if self._state == OPEN and now - self._opened_at >= self.policy.cooldown_seconds:
            return HALF_OPEN
        return self._state

    def admit(self) -> bool:
        """Let a call through, True when it is the half-open trial; or raise CircuitOpen."""
        changes: list[tuple[str, str]] = []
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state == CLOSED:
                return False
            if state == HALF_OPEN and not self._trial_out:
                changes += self._move(HALF_OPEN)
                self._trial_out = True
                refused = None
            elif state == OPEN:
                refused = self.policy.cooldown_seconds - (now - self._opened_at)
            else:
                refused = TRIAL_RETRY_AFTER_SECONDS
        self._tell(changes)
        if refused is None:
            return True
        if self._listener is not None:
            self._listener.on_reject(self.target)
        raise CircuitOpen(self.target, refused)

    def record(self, trial: bool, *, failed: bool) -> None:
        """The outcome of a call `admit` let through (`trial` as it answered)."""
        changes: list[tuple[str, str]] = []
        with self._lock:
            now = self._clock()
            if trial:
                self._trial_out = False
                changes += self._open(now) if failed else self._move(CLOSED)
            elif self._state != CLOSED:
                pass  # a call from before it opened: the trial decides, not this one
            elif not failed:
                self._streak = 0
            else:
                if self._streak == 0 or now - self._streak_started > self.policy.window_seconds:
                    self._streak, self._streak_started = 0, now
                self._streak += 1
                if self._streak >= self.policy.failures:
                    changes += self._open(now)
        self._tell(changes)

    def abandon(self, trial: bool) -> None:
        """A call let through ended without an outcome (cancelled): the next call is the
        trial instead."""
        if trial:
            with self._lock:
                self._trial_out = False

    def _open(self, now: float) -> list[tuple[str, str]]:
        self._opened_at = now
        return self._move(OPEN)

    def _move(self, new: str) -> list[tuple[str, str]]:
        old, self._state = self._state, new
        self._streak = 0
        return [] if old == new else [(old, new)]

    def _tell(self, changes: list[tuple[str, str]]) -> None:
        # Outside the lock: a listener may take its own.
        if self._listener is not None:
            for old, new in changes:
                self._listener.on_change(self.target, old, new)


async def guarded_call(
    breaker: CircuitBreaker,
    call: Callable[[], Awaitable[T]],
    failed: Callable[[T], bool],
) -> T:
    """`call()` through `breaker` (CircuitOpen, without calling, while it is open).

    An exception from the call is a failure (the peer did not answer); a result is one
    when `failed(result)` says so (say, a 5xx); a cancelled call has no outcome.
    """
    trial = breaker.admit()
    try:
        result = await call()
    except Exception:
        breaker.record(trial, failed=True)
        raise
    except BaseException:
        breaker.abandon(trial)
        raise
    breaker.record(trial, failed=failed(result))
    return result
