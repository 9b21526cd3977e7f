"""After-sales intake: one shop's refund, return and exchange requests in, per window.

The window runs from the shop's `after_sales` watermark (less the ingest overlap) to now;
each page is mapped and stored in one transaction (`oms.db.after_sales.store_requests`:
once per request, linked to its order and lines), so a re-run over the same window
stores nothing twice. A payload that cannot be mapped goes to the review queue with the
mapping's reasons and the payload, and the rest of the page goes on. The watermark moves
only after every page is stored. Shops whose platform has no after-sales API in our
connectors are skipped by the flow, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prefect import task

from oms.config import get_settings
from oms.db.after_sales import store_requests
from oms.db.review import ReviewEntry, park
from oms.db.shops import get_watermark, move_watermark
from oms.domain.errors import MappingError
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import CONNECTORS, connector_for, engine, http_client
from tasks.tokens import call_with_token_retry

STREAM = "after_sales"


@dataclass
class AfterSalesIntake:
    shop_code: str
    platform: str = ""
    pages: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unlinked: int = 0
    parked: int = 0
    new_ids: list[int] = field(default_factory=list)


def handles_after_sales(platform: str) -> bool:
    return hasattr(CONNECTORS.get(platform), "fetch_after_sales")


@task(name="ingest-after-sales-shop", task_run_name="after-sales-{shop_code}", **RETRYING)
def ingest_shop_after_sales(shop_code: str, now: datetime | None = None) -> AfterSalesIntake:
    now = now or datetime.now(timezone.utc)
    start = _window_start(shop_code, now)
    intake = call_with_token_retry(shop_code, lambda access: _fetch_and_store(access, start, now))
    with engine().begin() as conn:
        move_watermark(conn, shop_code, now, now, stream=STREAM)
    return intake


def _window_start(shop_code: str, now: datetime) -> datetime:
    settings = get_settings()
    with engine().connect() as conn:
        watermark = get_watermark(conn, shop_code, stream=STREAM)
    if watermark is None:
        return now - timedelta(hours=settings.initial_lookback_hours)
    return watermark - timedelta(minutes=settings.ingest_overlap_minutes)


def _fetch_and_store(access, start: datetime, end: datetime) -> AfterSalesIntake:
    intake = AfterSalesIntake(access.code, access.platform)
    with platform_slot(access.platform), http_client() as http:
        connector = connector_for(access, http)
        for page in connector.fetch_after_sales(start, end):
            intake.pages += 1
            intake.fetched += len(page)
            requests, parked = [], []
            for raw in page:
                try:
                    requests.append(connector.to_after_sales(raw))
                except MappingError as error:
                    parked.append(_unmappable(access, raw, error))
            now = datetime.now(timezone.utc)
            with engine().begin() as conn:
                stored = store_requests(conn, requests, now,
                                        domestic_currencies=tuple(get_settings().domestic_currencies))
                park(conn, parked, now)
            intake.new += len(stored.new)
            intake.updated += len(stored.updated)
            intake.unlinked += len(stored.unlinked)
            intake.parked += len(parked)
            intake.new_ids += stored.new
    return intake


def _unmappable(access, raw, error: MappingError) -> ReviewEntry:
    return ReviewEntry("after_sales", access.platform, access.code, raw.platform_request_id,
                       list(error.reasons), raw.payload)
