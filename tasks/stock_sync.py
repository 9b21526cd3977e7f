"""Stock sync out: tell one shop's platform how many units of each listing it may sell.

The number is absolute (all warehouses' free units, times the shop's share), so a
retried push sets the same number again rather than adding it twice. Only listings
whose number changed since the last accepted push are sent, unless `full`: platforms
count their own sales down between pushes, and a full push now and then puts them
back on our numbers.

Failures are never dropped: each listing's refusal is stored with its reason; a
retryable one fails the task at the end so the retry policy sends what is still
different; and once retries run out, or a platform refuses a listing for good, on-call
hears it once per incident (closed with a "recovered" alert when a push goes through).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prefect import get_run_logger, task
from prefect.runtime import task_run

from connectors.base import Listing, StockLevel, StockPushOutcome
from oms.config import get_settings
from oms.db.incidents import report_recovery, report_trouble
from oms.db.listings import listings_age, record_stock_pushes, save_listings, shop_listings
from oms.db.stock import sellable_by_sku
from oms.domain.errors import ConnectorError
from tasks.alerts import ALREADY_ALERTED_MARKER, STOCK_SYNC_FAILED, STOCK_SYNC_RECOVERED, announce, redact
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import CONNECTORS, connector_for, engine, http_client, shop_access
from tasks.tokens import call_with_token_retry, shop_secret_values

INCIDENT = "stock-sync"
PUSH_CHUNK = 200  # listings per connector call; connectors batch further as the platform allows


@dataclass
class StockSyncSummary:
    shop: str
    listings: int = 0
    pushed: int = 0
    unchanged: int = 0
    refused: int = 0
    to_retry: int = 0
    refused_skus: list[str] = field(default_factory=list)


def syncs_stock(platform: str) -> bool:
    return hasattr(CONNECTORS.get(platform), "push_stock")


@task(name="sync-stock", task_run_name="sync-stock-{shop_code}", **RETRYING)
def sync_shop_stock(shop_code: str, only_skus: list[str] | None = None, full: bool = False) -> StockSyncSummary:
    summary = StockSyncSummary(shop=shop_code)
    access = shop_access(shop_code)
    try:
        with http_client() as http:
            _refresh_listings_if_old(shop_code, http)
            levels = _levels_to_push(shop_code, only_skus, full, summary)
            outcomes = _push(shop_code, http, levels)
    except ConnectorError as error:
        _alert_if_final(shop_code, access.platform, str(error), retryable=error.retryable)
        raise
    last_retryable = _record(outcomes, levels, summary)
    if summary.refused or last_retryable is not None:
        detail = _failure_text(summary, last_retryable)
        alerted = _alert_if_final(shop_code, access.platform, detail, retryable=last_retryable is not None,
                                  permanent=bool(summary.refused))
        if last_retryable is not None:
            raise type(last_retryable)(f"{ALREADY_ALERTED_MARKER}: {detail}" if alerted else detail)
    else:
        _announce_recovery(shop_code, access.platform, summary)
    return summary


def _refresh_listings_if_old(shop_code: str, http) -> None:
    max_age = timedelta(hours=get_settings().listing_refresh_hours)
    now = datetime.now(timezone.utc)
    with engine().connect() as conn:
        seen = listings_age(conn, shop_code)
    if seen is not None and now - seen < max_age:
        return

    def read_all(access) -> list[Listing]:
        with platform_slot(access.platform):
            return [item for page in connector_for(access, http).list_listings() for item in page]

    found = call_with_token_retry(shop_code, read_all)
    with engine().begin() as conn:
        save_listings(conn, shop_code, found, now)
    get_run_logger().info("shop %s: %d listings read from the platform", shop_code, len(found))


def _levels_to_push(shop_code: str, only_skus: list[str] | None, full: bool,
                    summary: StockSyncSummary) -> list[tuple[int, StockLevel]]:
    share = get_settings().stock_sync_share.get(shop_code, 1.0)
    with engine().connect() as conn:
        stored = shop_listings(conn, shop_code)
        asked = None if only_skus is None else set(only_skus)
        wanted = [item for item in stored if asked is None or item.sku in asked]
        sellable = sellable_by_sku(conn, sorted({item.sku for item in wanted})) if wanted else {}
    summary.listings = len(stored)
    levels = []
    for item in wanted:
        # Rounded down: a platform told 2.6 of one unit would sell three.
        quantity = max(math.floor(sellable.get(item.sku, 0) * share), 0)
        if not full and item.pushed_quantity == quantity and item.failures == 0:
            summary.unchanged += 1
            continue
        listing = Listing(item.sku, item.item_id, item.variant_id, item.location_id, product_type=item.product_type)
        levels.append((item.id, StockLevel(listing, quantity)))
    return levels


def _push(shop_code: str, http, levels: list[tuple[int, StockLevel]]) -> list[StockPushOutcome]:
    if not levels:
        return []

    def push_all(access) -> list[StockPushOutcome]:
        connector = connector_for(access, http)
        outcomes: list[StockPushOutcome] = []
        with platform_slot(access.platform):
            for start in range(0, len(levels), PUSH_CHUNK):
                outcomes.extend(connector.push_stock([level for _, level in levels[start:start + PUSH_CHUNK]]))
        return outcomes

    return call_with_token_retry(shop_code, push_all)


def _record(outcomes: list[StockPushOutcome], levels: list[tuple[int, StockLevel]],
            summary: StockSyncSummary) -> ConnectorError | None:
    accepted, failed = [], []
    last_retryable: ConnectorError | None = None
    for (listing_id, level), outcome in zip(levels, outcomes):
        if outcome.ok:
            accepted.append((listing_id, level.quantity))
            continue
        failed.append((listing_id, str(outcome.error)))
        if outcome.error.retryable:
            summary.to_retry += 1
            last_retryable = outcome.error
        else:
            summary.refused += 1
            summary.refused_skus.append(level.listing.sku)
    summary.pushed = len(accepted)
    with engine().begin() as conn:
        record_stock_pushes(conn, accepted, failed, datetime.now(timezone.utc))
    return last_retryable


def _failure_text(summary: StockSyncSummary, last_retryable: ConnectorError | None) -> str:
    parts = []
    if summary.refused:
        parts.append(f"{summary.refused} listing(s) refused for good ({', '.join(sorted(set(summary.refused_skus)))})")
    if last_retryable is not None:
        parts.append(f"{summary.to_retry} listing(s) failed and will be retried: {last_retryable}")
    return "; ".join(parts)


def _alert_if_final(shop_code: str, platform: str, detail: str, *, retryable: bool, permanent: bool = False) -> bool:
    """Open the incident when no retry is left or a refusal is permanent; True if on-call knows."""
    if retryable and not permanent and task_run.run_count <= RETRYING["retries"]:
        return False
    detail = redact(detail, shop_secret_values(shop_code))
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        trouble = report_trouble(conn, INCIDENT, shop_code, now, platform=platform, detail={"error": detail})
    if trouble.notify:
        announce(STOCK_SYNC_FAILED, shop_code=shop_code, platform=platform,
                 headline=f"Stock sync failing for {shop_code} ({platform})",
                 message=(f"The stock of shop {shop_code} on {platform} could not be updated: {detail}. "
                          "The platform may sell units we no longer have; check the listings in "
                          "`oms stock listings` and the shop's connector."),
                 error=detail)
    return True


def _announce_recovery(shop_code: str, platform: str, summary: StockSyncSummary) -> None:
    with engine().begin() as conn:
        closed = report_recovery(conn, INCIDENT, shop_code, datetime.now(timezone.utc))
    if closed is not None:
        announce(STOCK_SYNC_RECOVERED, shop_code=shop_code, platform=platform,
                 headline=f"Stock sync working again for {shop_code} ({platform})",
                 message=f"{summary.pushed} listing(s) of {shop_code} updated; the platform shows our stock again.")
