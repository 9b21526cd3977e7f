"""Ingest tasks: fetch and land raw pages, clean, validate, store; each on a whole batch.

Landing comes first and commits page by page, so whatever the platform sent is kept even
if a later step fails. Everything after landing works on batches in memory and parks the
orders it cannot use in the review queue with every reason and the raw payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import get_run_logger, task
from prefect.events import emit_event

from connectors.base import RawOrder, ShopAccess
from expectations.raw_records import raw_records
from expectations.runner import SuiteOutcome, load_suite_definition
from oms.config import get_settings
from oms.db.customers import link_orders, order_ids_for_keys
from oms.db.health import record_fetch
from oms.db.orders import LandedPayload, StoreResult, land_raw_orders, store_orders
from oms.db.review import ReviewEntry, open_entries, park, resolve_superseded
from oms.db.shops import get_shop, get_watermark, move_watermark
from oms.domain.cleaning import CleanedOrder, batch_facts, clean_order
from oms.domain.errors import MappingError
from oms.domain.order import Order
from tasks.policy import BATCH_TASK, RETRYING
from tasks.quality import BatchScope, gate_batch
from tasks.resources import CONNECTORS, MAPPERS, connector_for, engine, http_client
from tasks.tokens import call_with_token_retry


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def slices(self, length: timedelta) -> list["Window"]:
        """Consecutive windows of at most `length` covering this one, oldest first."""
        pieces, start = [], self.start
        while start < self.end:
            pieces.append(Window(start, min(start + length, self.end)))
            start = pieces[-1].end
        return pieces


@dataclass
class Fetched:
    platform: str = ""
    raws: list[RawOrder] = field(default_factory=list)
    pages: int = 0
    landed_new: int = 0
    unreadable: int = 0
    unreadable_reasons: list[str] = field(default_factory=list)
    # The platform's own count of orders in the window, when its list API reports one.
    platform_count: int | None = None


@dataclass
class Checked:
    passed: list[Order] = field(default_factory=list)
    parked: list[ReviewEntry] = field(default_factory=list)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


@task(name="plan-window", **BATCH_TASK)
def plan_window(shop_code: str, until: datetime | None = None, since: datetime | None = None) -> Window:
    """From the last watermark, minus the overlap, up to now; `since` and `until` give an
    explicit window instead, for a backfill."""
    settings = get_settings()
    with engine().connect() as conn:
        watermark = get_watermark(conn, shop_code)
        platform = get_shop(conn, shop_code)["platform"]
    # Some platforms serve nothing newer than a few minutes ago (Amazon: 2 minutes).
    end = until or now_utc() - CONNECTORS[platform].fetch_lag
    if since is not None:
        start = since
    elif watermark is None:
        start = end - timedelta(hours=settings.initial_lookback_hours)
    else:
        start = watermark - timedelta(minutes=settings.ingest_overlap_minutes)
    return Window(start=min(start, end), end=end)


@task(name="fetch-and-land", **RETRYING)
def fetch_and_land(shop_code: str, window: Window) -> Fetched:
    # An expired token is refreshed on the spot and the window fetched once more; pages
    # landed before the expiry land again as no-ops.
    fetched = call_with_token_retry(shop_code, lambda access: _fetch_window(access, window))
    _check_raw(shop_code, fetched)
    get_run_logger().info(
        "shop %s: %d pages, %d orders, %d new payloads, %d unreadable",
        shop_code, fetched.pages, len(fetched.raws), fetched.landed_new, fetched.unreadable,
    )
    return fetched


def _fetch_window(access: ShopAccess, window: Window) -> Fetched:
    shop_code = access.code
    fetched = Fetched(platform=access.platform)
    with http_client() as http:
        connector = connector_for(access, http)
        for page in connector.fetch_orders(window.start, window.end):
            fetched.pages += 1
            readable, unreadable = [], []
            for raw in page:
                (readable if raw.platform_order_id and raw.platform_updated_at else unreadable).append(raw)
            with engine().begin() as conn:
                fetched.landed_new += land_raw_orders(
                    conn, access.platform, shop_code,
                    [LandedPayload(r.platform_order_id, r.platform_updated_at, r.payload) for r in readable],
                    now_utc(),
                )
                entries = [_unreadable_entry(access.platform, shop_code, r) for r in unreadable]
                park(conn, entries, now_utc())
            fetched.unreadable += len(unreadable)
            fetched.unreadable_reasons += [entry.reasons[0] for entry in entries]
            fetched.raws.extend(readable)
        # Read after paging: the connector sums the counts of every window it listed.
        fetched.platform_count = getattr(connector, "reported_count", None)
    return fetched


def _check_raw(shop_code: str, fetched: Fetched) -> None:
    """Run the platform's raw suite and compare what arrived with the platform's count.

    Failing payloads are parked (stage raw) with every reason and are not cleaned; they
    are already landed. A failed batch check parks them too before the task fails.
    """
    if not fetched.raws and not fetched.platform_count:
        return
    suite = f"raw_{fetched.platform}"
    records = raw_records(load_suite_definition(suite).get("record", {}), fetched.raws, now_utc())

    def park_failing(outcome: SuiteOutcome) -> None:
        with engine().begin() as conn:
            park(conn, _raw_entries(fetched, shop_code, outcome), now_utc())

    outcome = gate_batch(BatchScope(suite, fetched.platform, shop_code), records,
                         expected_rows=fetched.platform_count,
                         received_rows=len(fetched.raws) + fetched.unreadable, before_failing=park_failing)
    if outcome.success:
        return
    park_failing(outcome)
    failing = outcome.reasons_by_row
    fetched.unreadable += len(failing)
    fetched.unreadable_reasons += [reason for row in sorted(failing) for reason in failing[row]]
    fetched.raws = [raw for row, raw in enumerate(fetched.raws) if row not in failing]


def _raw_entries(fetched: Fetched, shop_code: str, outcome: SuiteOutcome) -> list[ReviewEntry]:
    return [ReviewEntry("raw", fetched.platform, shop_code, fetched.raws[row].platform_order_id, reasons,
                        fetched.raws[row].payload)
            for row, reasons in sorted(outcome.reasons_by_row.items())]


def _unreadable_entry(platform: str, shop_code: str, raw: RawOrder) -> ReviewEntry:
    reason = raw.unreadable_reason or "payload has no readable order id or update time"
    return ReviewEntry("land", platform, shop_code, raw.platform_order_id, [reason], raw.payload)


@task(name="clean-orders", **BATCH_TASK)
def clean_batch(platform: str, shop_code: str, raws: list[RawOrder]) -> tuple[list[CleanedOrder], list[ReviewEntry], list[dict]]:
    """Map and normalise; return the cleaned orders, the unmappable ones, and each cleaned
    order's own payload (row for row, so two versions of one order keep theirs)."""
    to_order = MAPPERS[platform]
    cleaned, parked, payloads = [], [], []
    now = now_utc()
    for raw in raws:
        try:
            cleaned.append(clean_order(to_order(raw.payload, shop_code), now))
            payloads.append(raw.payload)
        except MappingError as error:
            parked.append(ReviewEntry("clean", platform, shop_code, raw.platform_order_id,
                                      error.reasons, raw.payload))
    return cleaned, parked, payloads


@task(name="validate-orders", **BATCH_TASK)
def validate_batch(cleaned: list[CleanedOrder], payloads: list[dict]) -> Checked:
    """Run the `orders` suite on the batch; failing orders are parked with every reason.

    A batch with too many failing orders fails the task (QualityGateFailed) after its
    failing orders are parked; the rest are not stored until the cause is fixed.
    """
    if not cleaned:
        return Checked()
    sample = cleaned[0].order

    def park_failing(outcome: SuiteOutcome) -> None:
        with engine().begin() as conn:
            park(conn, _split(cleaned, payloads, outcome).parked, now_utc())

    outcome = gate_batch(BatchScope("orders", sample.platform, sample.shop_code), batch_facts(cleaned, payloads),
                         before_failing=park_failing)
    if not outcome.success:
        _announce_quality_failure(sample, outcome)
    return _split(cleaned, payloads, outcome)


def _split(cleaned: list[CleanedOrder], payloads: list[dict], outcome: SuiteOutcome) -> Checked:
    checked = Checked()
    for row, (item, payload) in enumerate(zip(cleaned, payloads)):
        reasons = outcome.reasons_by_row.get(row)
        if not reasons:
            checked.passed.append(item.order)
            continue
        order = item.order
        checked.parked.append(ReviewEntry("validate", order.platform, order.shop_code,
                                          order.platform_order_id, reasons, payload))
    return checked


# A notice for dashboards, not a page: on-call hears of a batch that failed its gate
# (tasks.alerts.QUALITY_FAILED), not of every bad order of a batch that went on.
ROWS_PARKED = "oms.quality.rows-parked"


def _announce_quality_failure(sample: Order, outcome) -> None:
    """A notice that some orders of the batch were parked; counts only, no personal data.

    Row-level: the batch went on. The batch-level alert is tasks.quality's."""
    emit_event(
        event=ROWS_PARKED,
        resource={"prefect.resource.id": f"oms.shop.{sample.shop_code}",
                  "oms.platform": sample.platform, "oms.suite": "orders"},
        payload={"checked": outcome.checked, "failed": len(outcome.reasons_by_row),
                 "by_reason": outcome.failed_expectations},
    )


@task(name="store-orders", **RETRYING)
def store_batch(orders: list[Order], parked: list[ReviewEntry]) -> tuple[StoreResult, int]:
    """Park the rejects, upsert the rest and give them their master customer, in one
    transaction: an order is never stored without its customer (nor linked but lost)."""
    now = now_utc()
    keys = [o.global_key for o in orders]
    with engine().begin() as conn:
        newly_parked = park(conn, parked, now)
        result = store_orders(conn, orders, now=now)
        resolve_superseded(conn, keys, now)
        linked = link_orders(conn, order_ids_for_keys(conn, keys), now)
    if linked.customers_merged:
        get_run_logger().info("customers: %d pairs found to be one person and joined", linked.customers_merged)
    return result, newly_parked


@task(name="review-queue-snapshot", **BATCH_TASK)
def review_snapshot(shop_code: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest open review entries of a shop, for operators in the UI. Reasons and ids
    only: the payloads carry buyers' personal data and stay in the database."""
    with engine().connect() as conn:
        entries = open_entries(conn, shop_code, limit)
    return [
        {"entry": e["id"], "stage": e["stage"], "order": e["platform_order_id"] or "-",
         "reasons": "; ".join(e["reasons"]), "since": e["created_at"].isoformat(timespec="seconds")}
        for e in entries
    ]


@task(name="move-watermark", **BATCH_TASK)
def advance_watermark(shop_code: str, window: Window, orders_fetched: int = 0) -> None:
    """Move the sync on, and note for the health check whether this fetch brought orders
    (an ingest that keeps succeeding with nothing is how a silent stall shows)."""
    with engine().begin() as conn:
        now = now_utc()
        move_watermark(conn, shop_code, window.end, now)
        record_fetch(conn, shop_code, orders_fetched, now)
