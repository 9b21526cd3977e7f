"""The retry policy every task that talks to the outside world shares.

Exponential backoff with jitter, and a retry only when the error says a later attempt
can succeed (a token to refresh, a rate limit, an outage); a rejected request or a bug
fails at once instead of hammering the platform.
"""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from oms.domain.errors import is_retryable


def only_retryable_errors(task, task_run, state) -> bool:
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # an unreadable result is not a reason to retry
            return False
    return isinstance(error, BaseException) and is_retryable(error)


# Batches of thousands must not be hashed for a cache key on every call.
BATCH_TASK = {"cache_policy": NO_CACHE, "persist_result": False}

RETRYING = BATCH_TASK | {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": only_retryable_errors,
}
