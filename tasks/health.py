"""Connector health: probe every shop at once, record what came back, alert on trouble.

One task run covers all shops (a task run per shop would cost more than the probes), and
the probes run side by side on a few threads, since each is one slow round trip. A shop
that fails never fails the batch: its error is caught, redacted and recorded. Alerts go
through `oms.db.incidents`, so on-call hears once when a shop goes down or stalls and
once when it is back, however many runs see it in between.

The probes take no slot of the platform's concurrency limit: an ingest holds its slot
for its whole run, so a probe queued behind busy ingests would report a healthy shop as
slow or keep the whole check waiting, and one call per shop every few minutes is
nothing against the platform's budget.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from prefect import get_run_logger, task
from sqlalchemy import Connection

from connectors.base import MarketplaceConnector, ShopAccess
from oms.config import Settings, get_settings
from oms.db.health import HealthRow, health_rows, record_probes
from oms.db.incidents import report_recovery, report_trouble
from oms.domain.errors import ConnectorError, TokenExpired
from oms.domain.health import (
    DOWN_KIND,
    STALL_KIND,
    ProbeResult,
    StallVerdict,
    classify_failure,
    down_headline,
    down_message,
    format_age,
    is_failing,
    looks_stalled,
    owed_window,
    recovered_headline,
    recovered_message,
    stall_verdict,
    stalled_headline,
    stalled_message,
)
from tasks.alerts import (
    ALREADY_ALERTED_MARKER,
    CONNECTOR_RECOVERED,
    CONNECTOR_STALLED,
    CONNECTOR_UNHEALTHY,
    announce,
    redact,
)
from tasks.policy import BATCH_TASK
from tasks.resources import connector_for, engine, http_client, shop_access
from tasks.tokens import renew_after_expiry

# Error texts are stored and sent to on-call; a platform's error body can be long.
ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class ShopCheck:
    """What the thread checking one shop found; `platform_orders` is set only for a shop
    that looked stalled and answered (None: not asked, or asking failed)."""

    probe: ProbeResult
    platform_orders: int | None = None
    count_error: str | None = None


@dataclass(frozen=True)
class Alert:
    event: str
    shop_code: str
    platform: str
    headline: str
    message: str
    facts: dict


@dataclass(frozen=True)
class ShopHealth:
    """One shop's line in the health table: no secrets, no personal data."""

    shop: str
    platform: str
    ok: bool
    latency_ms: float | None
    consecutive_failures: int
    last_success_age: str
    last_nonempty_fetch_age: str
    alert_state: str

    def as_row(self) -> dict:
        return {"shop": self.shop, "platform": self.platform, "ok": self.ok,
                "latency ms": self.latency_ms, "consecutive failures": self.consecutive_failures,
                "last success age": self.last_success_age,
                "last non-empty fetch age": self.last_nonempty_fetch_age,
                "alert state": self.alert_state}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


@task(name="probe-shops", **BATCH_TASK)
def probe_shops(shop_codes: list[str]) -> list[ShopHealth]:
    """Probe every shop, record the results in one transaction, and raise or end alerts."""
    if not shop_codes:
        return []
    settings, now = get_settings(), now_utc()
    stall_after = timedelta(minutes=settings.health_stall_minutes)
    with engine().connect() as conn:
        before = health_rows(conn)
    checks = _check_all(shop_codes, before, now, stall_after, settings.health_probe_workers)
    with engine().begin() as conn:
        record_probes(conn, [check.probe for check in checks], now)
        after = health_rows(conn)
        decided = [_decide(conn, check, after[check.probe.shop_code], now, settings) for check in checks]
    _log(checks)
    # Announced only once the incidents are committed: an alert must never speak of an
    # incident that a rolled-back transaction did not keep.
    for _, alerts in decided:
        for alert in alerts:
            announce(alert.event, shop_code=alert.shop_code, platform=alert.platform,
                     headline=alert.headline, message=alert.message, **alert.facts)
    return [line for line, _ in decided]


# ---- probing ------------------------------------------------------------------------


def _check_all(shop_codes: list[str], before: dict[str, HealthRow], now: datetime,
               stall_after: timedelta, workers: int) -> list[ShopCheck]:
    with http_client() as http, ThreadPoolExecutor(
            max_workers=max(1, min(workers, len(shop_codes))), thread_name_prefix="probe") as pool:
        return list(pool.map(lambda code: _check_shop(code, before.get(code), http, now, stall_after),
                             shop_codes))


def _check_shop(shop_code: str, row: HealthRow | None, http: httpx.Client, now: datetime,
                stall_after: timedelta) -> ShopCheck:
    """Probe one shop, and count the platform's orders if its ingest looks stalled.
    Runs on a pool thread: it raises nothing, and logs nothing (no Prefect run context)."""
    secrets: list[str] = []
    try:
        access = shop_access(shop_code)
        secrets = [value for value in access.credentials.values() if isinstance(value, str)]
        probe, access = _probe_renewing_token(shop_code, access, http, secrets)
        with connector_for(access, http) as connector:
            if not (probe.ok and row is not None
                    and looks_stalled(row.last_fetch_at, row.last_nonempty_fetch_at, now, stall_after)):
                return ShopCheck(probe)
            return _with_order_count(probe, connector, row, now, stall_after, secrets)
    except Exception as error:  # no connector at all: unknown platform, unreadable credentials
        return ShopCheck(_failed_probe(shop_code, error, None, secrets))


def _probe_renewing_token(shop_code: str, access: ShopAccess, http: httpx.Client,
                          secrets: list[str]) -> tuple[ProbeResult, ShopAccess]:
    """One timed probe; a token the platform calls expired is refreshed on the spot and
    the probe made once more, as every other call does (a refreshable token is no outage)."""
    try:
        with connector_for(access, http) as connector:
            return _timed_probe(connector, shop_code, secrets, let_expiry_through=True), access
    except TokenExpired as expired:
        try:
            renew_after_expiry(shop_code, access.credentials.get("access_token", ""), expired)
        except ConnectorError as refused:
            return _failed_probe(shop_code, refused, None, secrets), access
    access = shop_access(shop_code)
    with connector_for(access, http) as connector:
        return _timed_probe(connector, shop_code, secrets), access


def _timed_probe(connector: MarketplaceConnector, shop_code: str, secrets: list[str], *,
                 let_expiry_through: bool = False) -> ProbeResult:
    started = time.perf_counter()
    try:
        connector.probe()
    except Exception as error:
        if let_expiry_through and isinstance(error, TokenExpired):
            raise
        return _failed_probe(shop_code, error, _elapsed_ms(started), secrets)
    return ProbeResult(shop_code, ok=True, latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _failed_probe(shop_code: str, error: Exception, latency_ms: float | None,
                  secrets: list[str]) -> ProbeResult:
    return ProbeResult(shop_code, ok=False, latency_ms=latency_ms,
                       error=_error_text(error, secrets), failure=classify_failure(error))


def _error_text(error: Exception, secrets: list[str]) -> str:
    # Connector errors name their platform and code already; anything else is ours,
    # and its class says more than its message alone.
    text = str(error) if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
    return redact(text, secrets)[:ERROR_TEXT_LIMIT]


def _with_order_count(probe: ProbeResult, connector: MarketplaceConnector, row: HealthRow,
                      now: datetime, stall_after: timedelta, secrets: list[str]) -> ShopCheck:
    """The probe, plus how many orders the platform lists that ingest should have fetched
    (the first non-empty page is enough: one order owed makes a stall)."""
    window = owed_window(row.last_fetch_at, now, stall_after, connector.fetch_lag)
    if window is None:
        return ShopCheck(probe)
    try:
        # Pages come oldest slice first and platforms with short windows split the
        # span, so the first page may be an empty slice: read on to the first orders.
        with closing(connector.fetch_orders(*window)) as pages:
            first = next((page for page in pages if page), [])
    except Exception as error:
        return ShopCheck(probe, count_error=_error_text(error, secrets))
    return ShopCheck(probe, platform_orders=len(first))


# ---- deciding -----------------------------------------------------------------------


def _decide(conn: Connection, check: ShopCheck, row: HealthRow, now: datetime,
            settings: Settings) -> tuple[ShopHealth, list[Alert]]:
    stall_after = timedelta(minutes=settings.health_stall_minutes)
    down, down_alerts = _decide_down(conn, check.probe, row, now, settings.health_failure_threshold)
    verdict = stall_verdict(row.last_fetch_at, row.last_nonempty_fetch_at, now, stall_after,
                            check.platform_orders)
    stall_alerts = _decide_stall(conn, verdict, check.platform_orders, row, now)
    state = _alert_state(check.probe, row, down, verdict, settings.health_failure_threshold)
    return _table_line(check.probe, row, now, state), down_alerts + stall_alerts


def _decide_down(conn: Connection, probe: ProbeResult, row: HealthRow, now: datetime,
                 threshold: int) -> tuple[bool, list[Alert]]:
    """(is the shop down, alerts to send)."""
    if probe.ok:
        return False, _recovery(conn, DOWN_KIND, row, now)
    if not is_failing(row.consecutive_failures, threshold):
        return False, []  # a blip so far: the count grows, on-call is left in peace
    if ALREADY_ALERTED_MARKER in (probe.error or ""):
        return True, []  # the token alert already told on-call why this shop is down
    failure = probe.failure.value if probe.failure else None
    trouble = report_trouble(conn, DOWN_KIND, row.shop_code, now, platform=row.platform, detail={
        "consecutive_failures": row.consecutive_failures, "error": probe.error, "failure": failure})
    if not trouble.notify:
        return True, []
    since = now - row.last_success_at if row.last_success_at else None
    return True, [Alert(
        CONNECTOR_UNHEALTHY, row.shop_code, row.platform, down_headline(row.platform, row.shop_code),
        down_message(row.platform, row.shop_code, row.consecutive_failures, probe.error,
                     probe.failure, since),
        {"consecutive_failures": row.consecutive_failures, "failure": failure or "",
         "error": probe.error or ""})]


def _decide_stall(conn: Connection, verdict: StallVerdict, platform_orders: int | None,
                  row: HealthRow, now: datetime) -> list[Alert]:
    if verdict is StallVerdict.CLEAR:
        return _recovery(conn, STALL_KIND, row, now)
    if verdict is not StallVerdict.STALLED:
        return []  # could not tell: an open stall stays open, none is opened
    quiet_for = now - row.last_nonempty_fetch_at if row.last_nonempty_fetch_at else None
    trouble = report_trouble(conn, STALL_KIND, row.shop_code, now, platform=row.platform, detail={
        "platform_orders": platform_orders, "quiet_for": format_age(quiet_for)})
    if not trouble.notify:
        return []
    return [Alert(
        CONNECTOR_STALLED, row.shop_code, row.platform, stalled_headline(row.platform, row.shop_code),
        stalled_message(row.platform, row.shop_code, quiet_for, platform_orders or 0),
        {"platform_orders": platform_orders or 0, "quiet_for": format_age(quiet_for)})]


def _recovery(conn: Connection, kind: str, row: HealthRow, now: datetime) -> list[Alert]:
    incident = report_recovery(conn, kind, row.shop_code, now)
    if incident is None:
        return []
    lasted = now - incident.opened_at
    return [Alert(
        CONNECTOR_RECOVERED, row.shop_code, row.platform,
        recovered_headline(row.platform, row.shop_code, kind),
        recovered_message(row.platform, row.shop_code, kind, lasted),
        {"incident": kind, "lasted": format_age(lasted)})]


def _alert_state(probe: ProbeResult, row: HealthRow, down: bool, verdict: StallVerdict,
                 threshold: int) -> str:
    if down:
        return f"down ({probe.failure})" if probe.failure else "down"
    if not probe.ok:
        return f"failing {row.consecutive_failures}/{threshold}"
    return "stalled" if verdict is StallVerdict.STALLED else "ok"


def _table_line(probe: ProbeResult, row: HealthRow, now: datetime, state: str) -> ShopHealth:
    return ShopHealth(
        shop=row.shop_code, platform=row.platform, ok=probe.ok,
        latency_ms=None if probe.latency_ms is None else round(probe.latency_ms, 1),
        consecutive_failures=row.consecutive_failures,
        last_success_age=format_age(now - row.last_success_at if row.last_success_at else None),
        last_nonempty_fetch_age=format_age(
            now - row.last_nonempty_fetch_at if row.last_nonempty_fetch_at else None),
        alert_state=state,
    )


def _log(checks: list[ShopCheck]) -> None:
    logger = get_run_logger()
    for check in checks:
        if not check.probe.ok:
            logger.warning("shop %s: probe failed: %s", check.probe.shop_code, check.probe.error)
        if check.count_error:
            logger.warning("shop %s: could not count the platform's orders for the stall check: %s",
                           check.probe.shop_code, check.count_error)
    answered = sum(check.probe.ok for check in checks)
    logger.info("probed %d shops: %d answered", len(checks), answered)
