"""Tasks retry only what a later attempt can cure, and respect a platform's requested wait."""

from types import SimpleNamespace

import pytest
from prefect.states import Failed

import tasks.policy as policy
from oms.domain.errors import RateLimited, Rejected, TokenExpired, Unavailable


def retry_after(error, attempt=1):
    return policy.only_retryable_errors(None, SimpleNamespace(run_count=attempt), Failed(data=error))


@pytest.fixture
def waits(monkeypatch):
    recorded = []
    monkeypatch.setattr(policy.time, "sleep", recorded.append)
    return recorded


@pytest.mark.parametrize("error", [Unavailable("503"), TokenExpired("401"), RateLimited("429", retry_after=1)])
def test_retryable_errors_are_retried(error, waits):
    assert retry_after(error) is True


@pytest.mark.parametrize("error", [Rejected("bad sign"), ValueError("bug"), KeyError("bug")])
def test_permanent_errors_and_bugs_fail_at_once(error, waits):
    assert retry_after(error) is False


def test_a_rate_limit_longer_than_the_backoff_is_waited_out_first(waits):
    retry_after(RateLimited("429", retry_after=7), attempt=1)
    assert waits == [7 - policy.BACKOFF_FACTOR]


def test_a_rate_limit_within_the_backoff_adds_no_wait(waits):
    retry_after(RateLimited("429", retry_after=3), attempt=2)  # backoff already waits 4 s
    assert waits == []


def test_an_absurd_rate_limit_wait_is_capped(waits):
    retry_after(RateLimited("429", retry_after=3600), attempt=1)
    assert waits == [policy.LONGEST_RATE_LIMIT_WAIT_SECONDS - policy.BACKOFF_FACTOR]
