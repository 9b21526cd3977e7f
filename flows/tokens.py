"""`refresh-tokens`: every active shop's token renewed before it lapses, or on-call warned.

Scheduled every 15 minutes, which refreshes Shopee's 4-hour token between its third hour
and a quarter past. Shops whose tokens no refresh renews get re-authorisation warnings
at 7, 3 and 1 days and under 2 hours before they lapse. All shops go through one task
run: a refresh is one HTTP call, so a run per shop would cost more than the work.

The run fails, visibly in the UI, when a shop's refresh failed and on-call has been told
(the failure names the marker the failed-run automation skips, so it pages once); a
passing hiccup of a platform's token service far from expiry is reported in the
artifact and retried by the next run.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from oms.db.incidents import open_incidents
from oms.db.shops import active_shop_codes
from oms.db.tokens import token_overview
from oms.domain.errors import TokenRefreshFailed
from oms.domain.tokens import describe_span
from tasks.alerts import ALREADY_ALERTED_MARKER, redact
from tasks.policy import BATCH_TASK
from tasks.resources import engine
from tasks.tokens import (
    REFRESH_INCIDENT,
    RefreshOutcome,
    refresh_shop,
    shop_secret_values,
    warn_if_expiring,
)

PARALLEL_REFRESHES = 8


@dataclass
class TokenRunReport:
    outcomes: list[RefreshOutcome] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)  # shop -> stage reached

    def count(self, action: str) -> int:
        return sum(o.action == action for o in self.outcomes)


@task(name="refresh-due-tokens", **BATCH_TASK)
def refresh_due_tokens(shop_codes: list[str]) -> TokenRunReport:
    """Refresh every shop whose token is due; warn for those only a person can renew."""
    report = TokenRunReport()
    with ThreadPoolExecutor(max_workers=PARALLEL_REFRESHES) as pool:
        report.outcomes = list(pool.map(_refresh_one, shop_codes))
    for outcome in report.outcomes:
        if outcome.action == "cannot-refresh":
            stage = warn_if_expiring(outcome.shop_code)
            if stage:
                report.warnings[outcome.shop_code] = stage
    return report


def _refresh_one(shop_code: str) -> RefreshOutcome:
    """One shop's refresh; whatever goes wrong stays this shop's outcome."""
    try:
        return refresh_shop(shop_code)
    except Exception as error:  # a bug or an outage for one shop must not stop the rest
        text = redact(f"{type(error).__name__}: {error}", shop_secret_values(shop_code))
        return RefreshOutcome(shop_code, "", "failed", detail=text)


@flow(name="refresh-tokens")
def refresh_tokens(shop_codes: list[str] | None = None) -> TokenRunReport:
    """Renew due tokens of the given shops (default: every active shop)."""
    with engine().connect() as conn:
        codes = shop_codes or active_shop_codes(conn)
    report = refresh_due_tokens(codes)
    _publish(report)
    alerted = _failed_and_alerted(report)
    if alerted:
        raise TokenRefreshFailed(
            f"({ALREADY_ALERTED_MARKER}) token refresh failed for {len(alerted)} shop(s): "
            f"{', '.join(alerted)}", code="refresh_failed",
            next_step="follow the token alert of each shop")
    return report


def _failed_and_alerted(report: TokenRunReport) -> list[str]:
    with engine().connect() as conn:
        open_shops = {i.subject for i in open_incidents(conn, REFRESH_INCIDENT)}
    return sorted(o.shop_code for o in report.outcomes if o.action == "failed" and o.shop_code in open_shops)


def _publish(report: TokenRunReport) -> None:
    now = datetime.now(timezone.utc)
    with engine().connect() as conn:
        overview = {row["code"]: row for row in token_overview(conn)}
    rows = []
    for outcome in report.outcomes:
        meta = overview.get(outcome.shop_code, {})
        rows.append({
            "shop": outcome.shop_code,
            "platform": outcome.platform or meta.get("platform", ""),
            "store": meta.get("store") or "-",
            "action": outcome.action + (" (from journal)" if outcome.recovered_from_journal else ""),
            "access token expires in": _left(meta.get("access_expires_at"), now),
            "refresh token expires in": _left(meta.get("refresh_expires_at"), now),
            "warning": report.warnings.get(outcome.shop_code, ""),
            "error": outcome.detail[:300],
        })
    create_table_artifact(key="token-status", table=rows,
                          description="Token refresh of every shop: what was done, what expires when")


def _left(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    return describe_span(when - now) if when > now else f"expired {describe_span(now - when)} ago"
