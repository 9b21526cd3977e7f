"""Tracking write-back rules: what a push's outcome means and when to try it again.

Every push of a tracking number to a platform is kept as one attempt with an outcome:

    success   the platform holds the number: nothing more to do, ever
    rejected  the platform refused it (or we knew it would, and sent nothing): a person
              decides; never retried by itself
    retry     a retryable failure (outage, 5xx, timeout): tried again after an interval
    gave_up   the retryable failure that used up the retries: parked for a person
    deferred  not the order's fault (an expired token, renewed and sent again at once; a
              rate limit or a token only a person can renew: tried again on the next
              run); never counted against the order's retries
    requeued  not a request: an operator asked for a parked push to be tried again, which
              starts a fresh round of retries

`next_step` decides, from an order's earlier attempts, what a new retryable failure
leads to. It is pure: no clock (pass `now`), no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SUCCESS = "success"
REJECTED = "rejected"
RETRY = "retry"
GAVE_UP = "gave_up"
DEFERRED = "deferred"
REQUEUED = "requeued"

# Outcomes after which nobody pushes the number again without a person's say-so.
PARKED = frozenset({REJECTED, GAVE_UP})
# What an operator runs once the platform answers again (see oms.db.tracking.retry_parked).
RETRY_COMMAND = "oms writeback retry --shop {shop}"

PLATFORM_NAMES = {
    "pdd": "Pinduoduo", "taobao": "Taobao", "jd": "JD", "douyin": "Douyin", "shopee": "Shopee",
    "lazada": "Lazada", "amazon": "Amazon", "shopify": "Shopify", "spreadsheet": "the spreadsheet outbox",
}


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3  # tries after the first one
    interval: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Attempt:
    outcome: str
    at: datetime


@dataclass(frozen=True)
class Retry:
    at: datetime


@dataclass(frozen=True)
class GiveUp:
    attempts: int
    since: datetime


def failure_streak(history: Sequence[Attempt]) -> list[Attempt]:
    """The retryable failures since the last success, refusal or operator's requeue."""
    streak: list[Attempt] = []
    for attempt in reversed(history):
        if attempt.outcome == RETRY:
            streak.append(attempt)
        elif attempt.outcome != DEFERRED:
            break
    return list(reversed(streak))


def next_step(history: Sequence[Attempt], now: datetime, policy: RetryPolicy) -> Retry | GiveUp:
    """What a retryable failure at `now` leads to, given the order's earlier attempts."""
    streak = failure_streak(history)
    failures = len(streak) + 1  # this one included
    if failures > policy.retries:
        return GiveUp(attempts=failures, since=streak[0].at if streak else now)
    return Retry(at=now + policy.interval)


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


def gave_up_reason(step: GiveUp, now: datetime, last_error: str, platform: str, shop: str) -> str:
    minutes = round((now - step.since).total_seconds() / 60)
    return (f"gave up after {step.attempts} attempts over {minutes} minutes: {last_error}; "
            f"push it again with `{RETRY_COMMAND.format(shop=shop)}` once {platform_name(platform)} "
            f"answers again")


def not_accepted_reason(platform: str, carrier: str, accepted: Iterable[str]) -> str:
    return (f"{platform_name(platform)} does not accept carrier {carrier}; accepted: "
            f"{', '.join(sorted(accepted)) or 'none'}. Nothing was sent: re-issue the waybill with an "
            f"accepted carrier, or add {carrier} to the {platform} connector's carrier table once "
            f"the platform's code for it is known")


def refused_reason(platform: str, error: str) -> str:
    return (f"{platform_name(platform)} refused the tracking number: {error}. Check the order in "
            f"the platform's back office (shipped already with another number? carrier not "
            f"enabled for the shop?), fix it there or re-issue the waybill, then resolve this entry")
