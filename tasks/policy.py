"""The retry policy every task that talks to the outside world shares.

Exponential backoff with jitter, and a retry only when the error says a later attempt
can succeed (a token to refresh, a rate limit, an outage); a rejected request or a bug
fails at once instead of hammering the platform.
"""

from __future__ import annotations

import time

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from oms.domain.errors import RateLimited, is_retryable

BACKOFF_FACTOR = 2
# A platform asking for a longer pause than this is down in all but name: let the
# backoff and, failing that, the alert take over rather than holding a worker.
LONGEST_RATE_LIMIT_WAIT_SECONDS = 60.0


def only_retryable_errors(task, task_run, state) -> bool:
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # an unreadable result is not a reason to retry
            return False
    if not (isinstance(error, BaseException) and is_retryable(error)):
        return False
    if isinstance(error, RateLimited):
        _honour_rate_limit(error, attempt=task_run.run_count)
    return True


def _honour_rate_limit(error: RateLimited, attempt: int) -> None:
    """Prefect's retry delay cannot depend on the error, so the part of the platform's
    requested wait that the backoff does not already cover is waited here."""
    planned = BACKOFF_FACTOR * 2 ** max(attempt - 1, 0)
    extra = min(error.retry_after, LONGEST_RATE_LIMIT_WAIT_SECONDS) - planned
    if extra > 0:
        time.sleep(extra)


# Batches of thousands must not be hashed for a cache key on every call.
BATCH_TASK = {"cache_policy": NO_CACHE, "persist_result": False}

RETRYING = BATCH_TASK | {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_FACTOR),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": only_retryable_errors,
}
