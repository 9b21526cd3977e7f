"""Request pacing per shop: a token bucket each connector waits on before every call.

Platforms count calls per app and shop and answer with their own throttling error when a
caller goes too fast; a throttled call costs a round trip and a back-off, so it is cheaper
to stay under the limit. Each connector names its platform's documented rate
(`RequestRate`) and takes the process-wide bucket of its shop from `shop_bucket`, so two
connectors of one shop (a fetch and a write-back in one worker) share the budget.

Coarse concurrency across workers is Prefect's job (a global concurrency limit per
platform, see `tasks.pacing`); this bucket only smooths calls within one process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRate:
    """At most `per_second` calls on average, with bursts of up to `burst` calls."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a request rate needs per_second > 0 and burst >= 1")


class TokenBucket:
    """Thread-safe token bucket; `take()` blocks until a call may go out."""

    def __init__(
        self,
        rate: RequestRate,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self._tokens = float(rate.burst)
        self._stamp = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # total time callers spent waiting, for reports

    def take(self) -> float:
        """Spend one token, waiting first if none is left; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate.burst, self._tokens + (now - self._stamp) * self.rate.per_second)
            self._stamp = now
            self._tokens -= 1
            # A negative balance is a debt: this caller waits until it is paid back,
            # and later callers queue behind it because they inherit the debt.
            wait = -self._tokens / self.rate.per_second if self._tokens < 0 else 0.0
            self.waited_seconds += wait
        if wait:
            self._sleep(wait)
        return wait


_buckets: dict[tuple[str, str], TokenBucket] = {}
_buckets_lock = threading.Lock()


def shop_bucket(platform: str, shop_code: str, rate: RequestRate) -> TokenBucket:
    """The one bucket of this shop in this process; a changed rate replaces it."""
    key = (platform, shop_code)
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = _buckets[key] = TokenBucket(rate)
        return bucket
