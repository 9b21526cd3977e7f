"""Status drift task: one shop's recent orders as the platform shows them, against ours.

One task per shop, never per order: the platform's order list is paged through once for
the window that covers every order worth comparing, each page landed as raw JSON (as
ingest does, so nothing the platform said is lost), mapped, and compared in one
transaction that records the drifts and applies the safe repairs. Only drifts first seen
in this run alert: an interception to ask for (INTERCEPTION_NEEDED), or a difference a
person must settle (STATUS_DRIFT_FOUND). Later runs that see them again stay quiet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prefect import get_run_logger, task

from connectors.base import ShopAccess
from oms.db.drift import Comparison, Found, Observation, compare_and_repair, oldest_platform_update
from oms.db.orders import LandedPayload, land_raw_orders
from oms.db.shops import get_shop
from oms.domain.errors import MappingError
from tasks.alerts import INTERCEPTION_NEEDED, STATUS_DRIFT_FOUND, announce
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import CONNECTORS, MAPPERS, connector_for, engine, http_client
from tasks.tokens import call_with_token_retry


@dataclass
class ShopDrift:
    shop_code: str
    platform: str = ""
    window_start: str = ""
    window_end: str = ""
    fetched: int = 0
    unmappable: int = 0
    checked: int = 0
    not_ours: int = 0
    closed: int = 0
    interceptions_raised: int = 0
    found: list[Found] = field(default_factory=list)


@task(name="check-shop-drift", task_run_name="check-drift-{shop_code}", **RETRYING)
def check_shop_drift(shop_code: str, now: datetime, lookback: timedelta) -> ShopDrift:
    cutoff = now - lookback
    with engine().connect() as conn:
        platform = get_shop(conn, shop_code)["platform"]
        start = oldest_platform_update(conn, shop_code, cutoff)
    summary = ShopDrift(shop_code, platform)
    end = now - CONNECTORS[platform].fetch_lag
    if start is None or start >= end:
        return summary
    summary.window_start, summary.window_end = start.isoformat(), end.isoformat()
    views = call_with_token_retry(shop_code, lambda access: _platform_views(access, start, end, now, summary))
    with engine().begin() as conn:
        compared = compare_and_repair(conn, shop_code, views, now, cutoff)
    _fill(summary, compared)
    _alert(summary)
    get_run_logger().info("shop %s: %d orders compared, %d drifts (%d new), %d interceptions raised, %d closed",
                          shop_code, summary.checked, len(summary.found), sum(f.new for f in summary.found),
                          summary.interceptions_raised, summary.closed)
    return summary


def _platform_views(access: ShopAccess, start: datetime, end: datetime, now: datetime,
                    summary: ShopDrift) -> list[Observation]:
    to_order = MAPPERS[access.platform]
    views: list[Observation] = []
    summary.fetched = summary.unmappable = 0  # a retry after a token refresh starts over
    with http_client() as http, platform_slot(access.platform):
        for page in connector_for(access, http).fetch_orders(start, end):
            readable = [raw for raw in page if raw.platform_order_id and raw.platform_updated_at]
            with engine().begin() as conn:
                land_raw_orders(conn, access.platform, access.code,
                                [LandedPayload(r.platform_order_id, r.platform_updated_at, r.payload)
                                 for r in readable], now)
            summary.fetched += len(page)
            for raw in readable:
                try:
                    order = to_order(raw.payload, access.code)
                except MappingError:
                    # Ingest parks it with its reasons; a status we cannot read is no drift.
                    summary.unmappable += 1
                    continue
                views.append(Observation(order.platform_order_id, order.status, order.platform_status,
                                         order.updated_at))
    return views


def _fill(summary: ShopDrift, compared: Comparison) -> None:
    summary.checked = compared.checked
    summary.not_ours = compared.not_ours
    summary.closed = compared.closed
    summary.interceptions_raised = compared.interceptions_raised
    summary.found = compared.found


def _alert(summary: ShopDrift) -> None:
    for found in summary.found:
        if not found.new:
            continue
        if found.action == "interception":
            announce(INTERCEPTION_NEEDED, shop_code=summary.shop_code, platform=summary.platform,
                     headline=f"Stop parcel of order {found.platform_order_id}: cancelled after handover",
                     message=(f"{summary.platform} shop {summary.shop_code} cancelled order {found.platform_order_id} "
                              "after its parcel left the warehouse (or may have left). Ask the carrier to "
                              "intercept it (see the open interception and the review queue); its stock stays "
                              "locked until the parcel comes back or is delivered."),
                     order=found.platform_order_id, kind=found.kind)
        elif found.action == "review":
            announce(STATUS_DRIFT_FOUND, shop_code=summary.shop_code, platform=summary.platform,
                     headline=f"Order {found.platform_order_id}: our status and {summary.platform}'s disagree",
                     message=(f"Order {found.platform_order_id} of shop {summary.shop_code} is {found.our_status} "
                              f"here but {found.platform_status} on {summary.platform} ({found.kind}). "
                              "The review queue says what to check."),
                     order=found.platform_order_id, kind=found.kind)
