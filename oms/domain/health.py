"""Connector health rules: when a shop counts as down or silently stalled, and what
on-call is told about it.

A shop is *down* when its cheap authenticated probe has failed several times in a row:
one failure is usually a blip the next ingest retries through, a run of them is not.
A shop is *stalled* when its ingest keeps finishing but brings nothing while the
platform lists orders the ingest should already have fetched: nothing fails, so no
other alert would ever fire. Everything here is pure; callers pass `now` in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from oms.domain.errors import RateLimited, Rejected, TokenExpired, Unavailable

# An ingest's window ends before the fetch that reads it finishes (a long fetch takes
# minutes, and the window is planned before it starts), so orders of the last minutes
# before `last_fetch_at` are not yet owed; counting them would cry stall on quiet shops.
INGEST_GRACE = timedelta(minutes=5)

# Incident kinds (see `oms.db.incidents`); the subject is the shop code.
DOWN_KIND = "connector-down"
STALL_KIND = "connector-stalled"


class ProbeFailure(StrEnum):
    """What kind of failure a probe met; it decides the next step on-call is given."""

    AUTHORISATION = "authorisation"  # token lapsed or revoked
    REFUSED = "refused"  # signature, app key or parameters refused
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"  # platform down, timeouts, network
    INTERNAL = "internal"  # our own code or configuration raised


class StallVerdict(StrEnum):
    STALLED = "stalled"
    CLEAR = "clear"
    UNKNOWN = "unknown"  # not enough known to say either way: leave incidents as they are


@dataclass(frozen=True)
class ProbeResult:
    """One shop's probe: whether it answered, how fast, and the error text (redacted)."""

    shop_code: str
    ok: bool
    latency_ms: float | None
    error: str | None = None
    failure: ProbeFailure | None = None


def classify_failure(error: BaseException) -> ProbeFailure:
    if isinstance(error, TokenExpired):
        return ProbeFailure.AUTHORISATION
    if isinstance(error, RateLimited):
        return ProbeFailure.THROTTLED
    if isinstance(error, Unavailable):
        return ProbeFailure.UNAVAILABLE
    if isinstance(error, Rejected):
        return ProbeFailure.REFUSED
    return ProbeFailure.INTERNAL


def is_failing(consecutive_failures: int, threshold: int) -> bool:
    """True once the probe has failed `threshold` times in a row (a threshold below one
    would alert on a healthy shop, so it counts as one)."""
    return consecutive_failures >= max(threshold, 1)


def fetched_orders_recently(last_nonempty_fetch_at: datetime | None, now: datetime,
                            stall_after: timedelta) -> bool:
    return last_nonempty_fetch_at is not None and now - last_nonempty_fetch_at <= stall_after


def ingest_is_running(last_fetch_at: datetime | None, now: datetime, stall_after: timedelta) -> bool:
    """Ingest fetches finished within the span; if not, the trouble is the ingest itself
    (its runs fail or are not scheduled), which the ingest's own alerts cover."""
    return last_fetch_at is not None and now - last_fetch_at <= stall_after


def looks_stalled(last_fetch_at: datetime | None, last_nonempty_fetch_at: datetime | None,
                  now: datetime, stall_after: timedelta) -> bool:
    """Ingest runs finish but have brought nothing for longer than `stall_after`: worth
    asking the platform whether it has orders (only then is it a stall)."""
    return (ingest_is_running(last_fetch_at, now, stall_after)
            and not fetched_orders_recently(last_nonempty_fetch_at, now, stall_after))


def owed_window(last_fetch_at: datetime, now: datetime, stall_after: timedelta,
                fetch_lag: timedelta) -> tuple[datetime, datetime] | None:
    """The update times of orders the ingest should already have fetched: from
    `stall_after` ago up to where its last fetch's window ended. None when that is empty."""
    start = now - stall_after
    end = min(last_fetch_at, now) - fetch_lag - INGEST_GRACE
    return (start, end) if start < end else None


def stall_verdict(last_fetch_at: datetime | None, last_nonempty_fetch_at: datetime | None,
                  now: datetime, stall_after: timedelta, platform_orders: int | None) -> StallVerdict:
    """`platform_orders` is how many orders the platform lists in the owed window (None
    when it could not be asked)."""
    if fetched_orders_recently(last_nonempty_fetch_at, now, stall_after):
        return StallVerdict.CLEAR
    if not ingest_is_running(last_fetch_at, now, stall_after) or platform_orders is None:
        return StallVerdict.UNKNOWN
    return StallVerdict.STALLED if platform_orders > 0 else StallVerdict.CLEAR


# ---- what on-call reads -------------------------------------------------------------


def format_age(age: timedelta | None) -> str:
    """A short human duration: "40 s", "12 min", "2 h", "3 d"; "never" for None."""
    if age is None:
        return "never"
    seconds = max(age.total_seconds(), 0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        hours = seconds / 3600
        return f"{round(hours, 1 if hours < 10 else 0):g} h"
    return f"{seconds // 86400:.0f} d"


def next_step_when_down(failure: ProbeFailure | None, shop_code: str, platform: str) -> str:
    steps = {
        ProbeFailure.AUTHORISATION: (
            f"check the shop's authorisation in the {platform} seller centre; "
            f"run `oms tokens refresh {shop_code}`"),
        ProbeFailure.REFUSED: (
            f"check the shop's app key and secret and that the app is still authorised in "
            f"the {platform} seller centre; then run `oms tokens refresh {shop_code}`"),
        ProbeFailure.THROTTLED: (
            f"{platform} is throttling our app: look for other jobs spending the same app's "
            f"quota, or lower OMS_PLATFORM_CONCURRENCY for {platform}"),
        ProbeFailure.UNAVAILABLE: (
            f"check {platform}'s status page and our network to its API; ingest retries by "
            f"itself once it answers"),
        ProbeFailure.INTERNAL: (
            f"our side failed before or while calling {platform}: read the "
            f"check-connector-health run's logs and the shop's settings"),
    }
    return steps.get(failure, steps[ProbeFailure.INTERNAL])


def down_headline(platform: str, shop_code: str) -> str:
    return f"{platform} shop {shop_code} is not answering"


def down_message(platform: str, shop_code: str, failures: int, error: str | None,
                 failure: ProbeFailure | None, since: timedelta | None) -> str:
    last_answer = f"last answered {format_age(since)} ago" if since is not None else "never answered"
    what = f" ({failure})" if failure is not None else ""
    return (f"The health probe of {platform} shop {shop_code} failed {failures} times in a "
            f"row{what}; it {last_answer}. Error: {error or 'none recorded'}. "
            f"Next step: {next_step_when_down(failure, shop_code, platform)}.")


def stalled_headline(platform: str, shop_code: str) -> str:
    return f"{platform} shop {shop_code} ingests nothing while the platform has orders"


def stalled_message(platform: str, shop_code: str, quiet_for: timedelta | None,
                    platform_orders: int) -> str:
    quiet = f"for {format_age(quiet_for)}" if quiet_for is not None else "since it was connected"
    return (f"{platform} answers, but our ingest stored nothing {quiet} while it lists at least "
            f"{platform_orders} orders updated in that time. Next step: check the ingest-orders "
            f"runs of {shop_code} (fetched counts, window) and its watermark.")


def recovered_headline(platform: str, shop_code: str, kind: str) -> str:
    what = "ingests orders again" if kind == STALL_KIND else "answers again"
    return f"{platform} shop {shop_code} {what}"


def recovered_message(platform: str, shop_code: str, kind: str, trouble_for: timedelta) -> str:
    trouble = "ingest stall" if kind == STALL_KIND else "outage"
    return (f"The {trouble} of {platform} shop {shop_code} is over after "
            f"{format_age(trouble_for)}. Nothing to do; check that the next ingest-orders run "
            f"catches up.")
