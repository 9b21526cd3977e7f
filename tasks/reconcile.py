"""Reconciliation tasks: one shop's platform listing, the comparison, the backfill, the record.

Per shop the platform's order list is paged through once, holding one slot of the
platform's limit, for every reconciled day together (see `flows.reconcile` for the
window); each page is landed as raw JSON first, as ingest does. The orders we miss, and
those whose newer copy the platform holds, go through the ingest's own clean, validate
and store tasks on the payloads just fetched: no second fetch, and every rule of the
ingest (the quality suite, the review queue, cancellations after allocation) applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from prefect import get_run_logger, task
from prefect.utilities.annotations import quote

from connectors.base import RawOrder, ShopAccess
from oms.config import get_settings
from oms.db.orders import LandedPayload, land_raw_orders
from oms.db.reconciliation import already_reported, our_sightings, record_run, sightings_of, waiting_for_review
from oms.db.review import ReviewEntry, fingerprint, park
from oms.domain.errors import MappingError
from oms.domain.reconciliation import (
    AfterBackfill,
    DayComparison,
    DayWindow,
    Settled,
    ShopDay,
    Sighting,
    compare_days,
    settle,
)
from tasks.alerts import RECONCILIATION_DIFFERENCES, announce
from tasks.ingest import clean_batch, now_utc, store_batch, validate_batch
from tasks.pacing import platform_slot
from tasks.policy import BATCH_TASK, RETRYING
from tasks.resources import MAPPERS, connector_for, engine, http_client
from tasks.tokens import call_with_token_retry

# Order ids an alert names before it says "and N more".
IDS_PER_ALERT = 10


@dataclass
class PlatformListing:
    """What the platform listed for the window: its latest copy of each order."""

    platform: str
    copies: dict[str, RawOrder] = field(default_factory=dict)  # platform order id -> newest payload
    sightings: dict[str, Sighting] = field(default_factory=dict)
    fetched: int = 0
    pages: int = 0
    unreadable: int = 0


@dataclass
class Compared:
    comparisons: list[DayComparison]
    # Open review entries of the differing orders, fingerprint -> (platform order id, reasons).
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def already_waiting(self) -> frozenset[str]:
        """The differing orders a person was asked about in the review queue before this run."""
        return frozenset(pid for pid, _ in self.waiting.values())


@dataclass
class ShopOutcome:
    shop_code: str
    platform: str
    shop_days: list[ShopDay]
    to_tell: list[Settled]  # need a person, and no earlier run over the day recorded them


@task(name="list-platform-orders", task_run_name="list-orders-{shop_code}", **RETRYING)
def list_platform_orders(shop_code: str, start: datetime, end: datetime) -> PlatformListing:
    """Page through the platform's orders updated in [start, end), landing each page."""
    listing = call_with_token_retry(shop_code, lambda access: _list(access, start, end))
    get_run_logger().info("shop %s: %d pages, %d orders listed (%d distinct), %d unreadable",
                          shop_code, listing.pages, listing.fetched, len(listing.copies), listing.unreadable)
    return listing


def _list(access: ShopAccess, start: datetime, end: datetime) -> PlatformListing:
    listing = PlatformListing(access.platform)  # a retry after a token refresh starts over
    with http_client() as http, platform_slot(access.platform):
        for page in connector_for(access, http).fetch_orders(start, end):
            listing.pages += 1
            listing.fetched += len(page)
            readable, unreadable = [], []
            for raw in page:
                (readable if raw.platform_order_id and raw.platform_updated_at else unreadable).append(raw)
            _land(access, readable, unreadable)
            listing.unreadable += len(unreadable)
            for raw in readable:
                _keep_newest(listing, access, raw)
    return listing


def _land(access: ShopAccess, readable: list[RawOrder], unreadable: list[RawOrder]) -> None:
    # Parked as ingest parks them (same stage and payload, so the same review entry).
    entries = [ReviewEntry("land", access.platform, access.code, raw.platform_order_id,
                           [raw.unreadable_reason or "payload has no readable order id or update time"], raw.payload)
               for raw in unreadable]
    with engine().begin() as conn:
        land_raw_orders(conn, access.platform, access.code,
                        [LandedPayload(r.platform_order_id, r.platform_updated_at, r.payload) for r in readable],
                        now_utc())
        park(conn, entries, now_utc())


def _keep_newest(listing: PlatformListing, access: ShopAccess, raw: RawOrder) -> None:
    seen = _sighting(access, raw)
    kept = listing.sightings.get(seen.platform_order_id)
    if kept is None or seen.updated_at > kept.updated_at:
        listing.sightings[seen.platform_order_id] = seen
        listing.copies[seen.platform_order_id] = raw


def _sighting(access: ShopAccess, raw: RawOrder) -> Sighting:
    try:
        order = MAPPERS[access.platform](raw.payload, access.code)
    except MappingError:
        # Its status cannot be read; if we miss the order the backfill parks it with the reasons.
        return Sighting(raw.platform_order_id, None, "unreadable", raw.platform_updated_at)
    return Sighting(order.platform_order_id, order.status, order.platform_status, order.updated_at)


@task(name="compare-with-ours", task_run_name="compare-{shop_code}", **BATCH_TASK)
def compare_with_ours(shop_code: str, windows: list[DayWindow], platform: dict[str, Sighting]) -> Compared:
    """Each day's differences between the platform's listing and our orders."""
    with engine().connect() as conn:
        ours = our_sightings(conn, shop_code, windows[0].start, windows[-1].end, also=platform)
        comparisons = compare_days(windows, platform, ours)
        ids = [d.platform_order_id for c in comparisons for d in c.differences]
        waiting = waiting_for_review(conn, shop_code, ids)
    return Compared(comparisons, waiting)


def take_platform_copies(shop_code: str, listing: PlatformListing, platform_order_ids: list[str],
                         waiting: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Run the ingest's clean, validate and store tasks on the platform's copies of these
    orders, a batch per task run; returns why each order the ingest parked was parked.

    A copy that already waits in the review queue, payload for payload, is not run again:
    it would fail the same way and raise the quality alert once more for nothing."""
    parked: dict[str, str] = {}
    raws = []
    for pid in sorted(set(platform_order_ids) & set(listing.copies)):
        raw = listing.copies[pid]
        entry = next((waiting[f] for f in _fingerprints(listing.platform, shop_code, raw) if f in waiting), None)
        if entry is None:
            raws.append(raw)
        else:
            parked[pid] = entry[1]
    size = get_settings().batch_size
    for start in range(0, len(raws), size):
        cleaned, unmappable, payloads = clean_batch(listing.platform, shop_code, quote(raws[start: start + size]))
        passed, rejected = [], list(unmappable)
        if cleaned:
            checked = validate_batch(quote(cleaned), quote(payloads))
            passed, rejected = checked.passed, rejected + checked.parked
        store_batch(quote(passed), quote(rejected))
        parked.update((entry.platform_order_id, "; ".join(entry.reasons)) for entry in rejected)
    return parked


def _fingerprints(platform: str, shop_code: str, raw: RawOrder) -> list[str]:
    """The review entries the ingest would park this payload as, at either stage."""
    return [fingerprint(ReviewEntry(stage, platform, shop_code, raw.platform_order_id, [], raw.payload))
            for stage in ("clean", "validate")]


@task(name="settle-and-record", task_run_name="settle-{shop_code}", **BATCH_TASK)
def settle_and_record(shop_code: str, platform: str, compared: Compared, parked: dict[str, str],
                      flow_run_id: str | None = None) -> ShopOutcome:
    """Name what became of each difference, store the run, and pick what to tell a person."""
    now = now_utc()
    ids = [d.platform_order_id for c in compared.comparisons for d in c.differences]
    outcome = ShopOutcome(shop_code, platform, [], [])
    with engine().begin() as conn:
        after = AfterBackfill(sightings_of(conn, shop_code, ids), parked, compared.already_waiting)
        for comparison in compared.comparisons:
            shop_day = ShopDay(shop_code, platform, comparison, [Settled(d, settle(d, after))
                                                                  for d in comparison.differences])
            outcome.to_tell += _not_yet_told(conn, shop_day)
            record_run(conn, shop_day, now, flow_run_id)
            outcome.shop_days.append(shop_day)
    return outcome


def _not_yet_told(conn, shop_day: ShopDay) -> list[Settled]:
    waiting = [s for s in shop_day.settled if s.resolution.needs_person]
    told = already_reported(conn, shop_day.shop_code, shop_day.comparison.window.day.isoformat(),
                            [(s.difference.platform_order_id, s.difference.kind.value) for s in waiting])
    return [s for s in waiting if (s.difference.platform_order_id, s.difference.kind.value) not in told]


def tell_about_differences(outcome: ShopOutcome) -> bool:
    """One alert per shop for the differences a person must settle; returns whether one
    went out. Differences this run settled itself, and ones only awaiting the platform's
    catching up, tell nobody."""
    if not outcome.to_tell:
        return False
    by_kind: dict[str, int] = {}
    for s in outcome.to_tell:
        by_kind[s.difference.kind.value] = by_kind.get(s.difference.kind.value, 0) + 1
    ids = [s.difference.platform_order_id for s in outcome.to_tell]
    more = len(ids) - IDS_PER_ALERT
    named = ", ".join(ids[:IDS_PER_ALERT]) + (f" and {more} more" if more > 0 else "")
    days = sorted({sd.comparison.window.day.isoformat() for sd in outcome.shop_days})
    summary = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(by_kind.items()))
    announce(RECONCILIATION_DIFFERENCES, shop_code=outcome.shop_code, platform=outcome.platform,
             headline=f"[OMS] Reconciliation: {len(ids)} difference(s) of shop {outcome.shop_code} need a person",
             message=(f"Reconciling {outcome.platform} shop {outcome.shop_code} for {', '.join(days)} left "
                      f"{summary} that the pipeline could not settle: orders {named}. The "
                      "reconciliation-report artifact and the reconciliation_differences table give each "
                      "one's resolution; parked orders wait in the review queue."),
             differences=len(ids), by_kind=by_kind, orders=named)
    return True

