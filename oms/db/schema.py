"""The database schema, as SQLAlchemy Core tables shared by SQLite and PostgreSQL.

Core tables rather than ORM classes: the pipeline moves orders in batches of thousands,
and bulk INSERT ... ON CONFLICT and executemany UPDATEs are what it needs. Alembic's
migrations in `oms/db/migrations` are written against this metadata.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back aware UTC datetimes.

    SQLite keeps no time zone, so a naive value read back would be ambiguous; this type
    converts on the way in and labels on the way out, identically on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Json = JSON().with_variant(JSONB(), "postgresql")
Money = Numeric(14, 2)
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _id() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


shops = Table(
    "shops",
    metadata,
    _id(),
    Column("code", String(64), nullable=False, unique=True),
    Column("platform", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("base_url", String(500), nullable=False),
    # Identifiers only (app key, shop id, region): secrets (app secrets, partner keys)
    # are sealed in `sealed_secrets`, and tokens live in the token store (`shop_tokens`).
    Column("credentials", Json, nullable=False, default=dict),
    Column("sealed_secrets", Text),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
)

raw_orders = Table(
    "raw_orders",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("shop_code", String(64), nullable=False),
    Column("platform_order_id", String(128), nullable=False),
    Column("platform_updated_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("platform", "shop_code", "platform_order_id", "platform_updated_at"),
)

orders = Table(
    "orders",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("shop_code", String(64), nullable=False),
    Column("platform_order_id", String(128), nullable=False),
    Column("platform_status", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("platform_updated_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime),
    Column("ship_by", UTCDateTime),
    Column("currency", String(3), nullable=False),
    Column("total_amount", Money, nullable=False),
    Column("shipping_fee", Money, nullable=False),
    Column("receiver_name", String(200)),
    Column("receiver_phone", String(64)),
    Column("receiver_province", String(64)),
    Column("receiver_city", String(64)),
    Column("receiver_district", String(64)),
    Column("receiver_address", Text),
    Column("receiver_postal_code", String(16)),
    Column("receiver_country", String(2), nullable=False),
    Column("receiver_masked", Boolean, nullable=False, default=False),
    Column("receiver_encrypted", Json),
    Column("buyer_ref", String(128)),
    Column("buyer_note", Text),
    Column("warehouse_id", ForeignKey("warehouses.id")),
    # Same shop, buyer and normalised address: such orders may share one parcel
    # (oms.domain.identity.merge_key); NULL when the receiver is masked.
    Column("merge_key", String(40)),
    # One buyer across shops and platforms (oms.domain.identity.resolve_customers). No
    # foreign key: when two customers turn out to be one, their orders are re-pointed in
    # bulk and the absorbed id is kept in `customers.merged_into`.
    Column("master_customer_id", Id),
    Column("raw_order_id", ForeignKey("raw_orders.id")),
    Column("first_seen_at", UTCDateTime, nullable=False, default=utcnow),
    Column("modified_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("platform", "shop_code", "platform_order_id"),
    Index("ix_orders_status_paid_at", "status", "paid_at"),
    Index("ix_orders_merge_key", "merge_key"),
    Index("ix_orders_master_customer_id", "master_customer_id"),
    # The risk rules count a buyer's and a shop's recent orders.
    Index("ix_orders_platform_buyer_ref", "platform", "buyer_ref"),
    Index("ix_orders_shop_code_created_at", "shop_code", "created_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("platform_line_id", String(128)),
    Column("sku", String(128), nullable=False),
    Column("title", String(500)),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Money, nullable=False),
    UniqueConstraint("order_id", "line_no"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

order_status_history = Table(
    "order_status_history",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("from_status", String(32)),
    Column("to_status", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", Text, nullable=False),
)

review_queue = Table(
    "review_queue",
    metadata,
    _id(),
    # Same stage + payload parked twice is one entry: re-runs must not flood operators.
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("stage", String(32), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("shop_code", String(64), nullable=False),
    Column("platform_order_id", String(128)),
    Column("reasons", Json, nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("resolved_at", UTCDateTime),
    Column("resolution", Text),
    Column("resolved_by", String(64)),
    Index("ix_review_queue_open", "resolved_at", "stage"),
)

warehouses = Table(
    "warehouses",
    metadata,
    _id(),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("province", String(64)),
    Column("priority", Integer, nullable=False, default=100),  # lower is tried first
    Column("active", Boolean, nullable=False, default=True),
)

skus = Table(
    "skus",
    metadata,
    _id(),
    Column("code", String(128), nullable=False, unique=True),
    Column("title", String(500), nullable=False),
    Column("weight_grams", Integer, nullable=False, default=500),
    # Below this many sellable units (all warehouses together) a replenishment event and
    # alert go out; NULL means nobody set a threshold for this SKU.
    Column("reorder_point", Integer),
)

stock = Table(
    "stock",
    metadata,
    _id(),
    Column("warehouse_id", ForeignKey("warehouses.id"), nullable=False),
    Column("sku_id", ForeignKey("skus.id"), nullable=False),
    Column("on_hand", Integer, nullable=False, default=0),
    # Sum of the active reservations, kept in the same transaction as those rows so the
    # guarded UPDATE can check availability in one statement.
    Column("reserved", Integer, nullable=False, default=0),
    Column("safety_stock", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime),
    UniqueConstraint("warehouse_id", "sku_id"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
)

# One row per order line and warehouse (a line split across two warehouses has two).
# held: counted in stock.reserved; locked: still counted, and a cancellation no longer
# gives it back (its tracking number reached a platform, so the parcel may be on its way);
# consumed: the carrier collected it, the units left on-hand stock; released: given back.
reservations = Table(
    "reservations",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("order_line_id", ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    Column("warehouse_id", ForeignKey("warehouses.id"), nullable=False),
    Column("sku_id", ForeignKey("skus.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("state", String(16), nullable=False, default="held"),  # held|locked|consumed|released
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    # An unpaid order's hold lapses at this time unless payment arrives first.
    Column("hold_until", UTCDateTime),
    Column("locked_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("close_reason", String(32)),  # shipped|cancelled|unpaid_timeout|voided|...
    UniqueConstraint("order_line_id", "warehouse_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("state IN ('held', 'locked', 'consumed', 'released')", name="state_known"),
    Index("ix_reservations_open", "state", "warehouse_id", "sku_id"),
)

# Parcels booked per warehouse and local day: the daily capacity is checked and taken
# by one guarded UPDATE, like stock, so two allocators cannot both take the last slot.
warehouse_days = Table(
    "warehouse_days",
    metadata,
    Column("warehouse_id", ForeignKey("warehouses.id"), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in the warehouse's time zone
    Column("parcels", Integer, nullable=False, default=0),
    CheckConstraint("parcels >= 0", name="parcels_not_negative"),
)

# The last routing decision of each order: which rule chose which warehouse and why, or
# why nothing could fill it (the backorder queue is the backordered orders with this).
order_routing = Table(
    "order_routing",
    metadata,
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("outcome", String(16), nullable=False),  # allocated|backordered
    Column("parcels", Json, nullable=False),  # [{"warehouse": code, "lines": [[line, sku, n]]}]
    Column("explanation", Json, nullable=False),  # sentences, one per rule applied
    Column("reason", Text),  # why it waits, when backordered
    Column("short", Json),  # [{"sku", "wanted", "available"}] when backordered
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_decided_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Index("ix_order_routing_outcome", "outcome"),
)

# Every repair the daily stock audit made: the reserved total it found beside the sum of
# the reservation rows it recomputed, so drift is visible long after it was fixed.
stock_audits = Table(
    "stock_audits",
    metadata,
    _id(),
    Column("run_at", UTCDateTime, nullable=False, index=True),
    Column("warehouse_id", ForeignKey("warehouses.id"), nullable=False),
    Column("sku_id", ForeignKey("skus.id"), nullable=False),
    Column("recorded_reserved", Integer, nullable=False),
    Column("actual_reserved", Integer, nullable=False),
    Column("on_hand", Integer, nullable=False),
)

# The shop's listings of our SKUs on its platform, and what stock sync last told it.
listings = Table(
    "listings",
    metadata,
    _id(),
    Column("shop_code", String(64), ForeignKey("shops.code", ondelete="CASCADE"), nullable=False),
    Column("sku", String(128), nullable=False),
    Column("item_id", String(128), nullable=False),
    Column("variant_id", String(128), nullable=False, default=""),
    Column("location_id", String(128), nullable=False, default=""),
    Column("product_type", String(64), nullable=False, default=""),  # Amazon's productType
    Column("platform_quantity", Integer),  # what the platform said when listed
    Column("pushed_quantity", Integer),  # the last quantity the platform accepted
    Column("pushed_at", UTCDateTime),
    Column("failures", Integer, nullable=False, default=0),  # failed pushes in a row
    Column("last_error", Text),
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("shop_code", "item_id", "variant_id", "location_id"),
    Index("ix_listings_sku", "sku"),
)

# One row per order and warehouse parcel. Orders merged into one parcel share its
# carrier and tracking number (and `parcel_ref`); an order split across warehouses has a
# row per warehouse, and only the row that `writes_back` has its number sent to the platform.
shipments = Table(
    "shipments",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id"), nullable=False),
    Column("warehouse_id", ForeignKey("warehouses.id"), nullable=False),
    Column("carrier", String(16), nullable=False),
    Column("tracking_number", String(64), nullable=False),
    # label_created -> picked_up; voided when the order was cancelled before any push
    Column("status", String(16), nullable=False, default="label_created"),
    Column("parcel_ref", String(200)),  # the order reference the carrier knows the parcel by
    Column("writes_back", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("tracking_pushed_at", UTCDateTime),
    Column("picked_up_at", UTCDateTime),
    Column("cancel_requested_at", UTCDateTime),  # the platform cancelled after the push
    Column("voided_at", UTCDateTime),
    Column("carrier_cancelled_at", UTCDateTime),
    # Carrier choice (oms.domain.shipping): the rate card's reason in one sentence.
    Column("carrier_reason", Text),
    # Who issued the number when it is not the carrier itself ("cainiao"): pickups and
    # cancellations are asked of the same service.
    Column("waybill_source", String(16)),
    # Warehouse steps, the last one scanned (printed|packed|weighed|handed_over); every
    # scan is a `shipment_steps` row. `weighed_grams` is the scale's figure.
    Column("warehouse_step", String(16)),
    Column("weighed_grams", Integer),
    Column("handed_over_at", UTCDateTime),
    # Write-back: when the next attempt is due after a retryable failure (NULL: now).
    Column("next_push_at", UTCDateTime),
    UniqueConstraint("order_id", "warehouse_id"),
    # Scans and pickups look parcels up by number alone; write-back by carrier and number.
    Index("ix_shipments_tracking", "tracking_number", "carrier"),
    Index("ix_shipments_status", "status"),
)

tracking_pushes = Table(
    "tracking_pushes",
    metadata,
    _id(),
    Column("shipment_id", ForeignKey("shipments.id"), nullable=False, index=True),
    Column("platform", String(32), nullable=False),
    Column("shop_code", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    # success|retry|rejected|gave_up|deferred|requeued (oms.domain.write_back)
    Column("outcome", String(16), nullable=False),
    Column("request", Json),
    Column("response", Json),
    Column("error", Text),
    Column("at", UTCDateTime, nullable=False, default=utcnow),
)

# Every warehouse scan of a parcel: one row per step, so a scan repeated by a jittery
# scanner is one row, and the history shows who scanned what, where and when.
shipment_steps = Table(
    "shipment_steps",
    metadata,
    _id(),
    Column("shipment_id", ForeignKey("shipments.id"), nullable=False),
    Column("step", String(16), nullable=False),  # printed|packed|weighed|handed_over
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # cli|scanner|carrier
    Column("station", String(64)),  # the scanner or desk that sent it
    Column("operator", String(64)),
    Column("weight_grams", Integer),
    UniqueConstraint("shipment_id", "step"),
)

# Each order's ship-by deadline (oms.domain.sla), stored so an operator can see it and the
# sla-watch flow can tell a warning or a breach once: `stage` is the last one announced.
ship_deadlines = Table(
    "ship_deadlines",
    metadata,
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("deadline", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # platform|rule
    Column("rule", String(64)),
    Column("stage", String(16), nullable=False, default="ok"),  # ok|warning|breached|done|done_late
    Column("warned_at", UTCDateTime),
    Column("breached_at", UTCDateTime),
    Column("settled_at", UTCDateTime),  # tracking accepted, or the order cancelled
    Column("computed_at", UTCDateTime, nullable=False),
    Index("ix_ship_deadlines_open", "stage", "deadline"),
)

# A difference between our status of an order and its platform's, while it lasts: one
# open row per order and kind, closed when the two agree again or it was repaired.
status_drifts = Table(
    "status_drifts",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(48), nullable=False),
    # "order_id/kind" while open, NULL once closed: one open drift per order and kind.
    Column("open_key", String(80), unique=True),
    Column("our_status", String(32), nullable=False),
    Column("platform_status", String(64), nullable=False),
    Column("since", UTCDateTime, nullable=False),  # the platform's update time, else first seen
    Column("detected_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("action", String(32)),  # repaired|interception|review|none
    Column("detail", Json),
    Column("resolved_at", UTCDateTime),
)

# A parcel that must be stopped on its way (the platform cancelled after handover): a task
# for a person, or for the carrier's interception service, until it is settled.
interceptions = Table(
    "interceptions",
    metadata,
    _id(),
    Column("shipment_id", ForeignKey("shipments.id"), nullable=False, unique=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("carrier", String(16), nullable=False),
    Column("tracking_number", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False, default="open"),  # open|requested|intercepted|failed|closed
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("note", Text),
)

sync_watermarks = Table(
    "sync_watermarks",
    metadata,
    _id(),
    Column("shop_code", String(64), nullable=False),
    Column("stream", String(32), nullable=False),
    Column("watermark", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("shop_code", "stream"),
)


# One row per shop: what the token store knows that is not secret (expiry times, whether
# the token can be refreshed at all, the refresh lease), plus the sealed tokens when the
# store is this database rather than a Prefect Secret block.
shop_tokens = Table(
    "shop_tokens",
    metadata,
    Column("shop_code", String(64), ForeignKey("shops.code", ondelete="CASCADE"), primary_key=True),
    Column("store", String(16), nullable=False),  # database|prefect
    Column("sealed", Text),  # Fernet token of the JSON tokens; NULL when held by Prefect
    Column("access_expires_at", UTCDateTime),
    Column("refresh_expires_at", UTCDateTime),
    Column("issued_at", UTCDateTime),
    Column("refreshable", Boolean, nullable=False, default=True),
    Column("version", Integer, nullable=False, default=1),  # bumped by every save
    Column("lease_holder", String(64)),
    Column("lease_until", UTCDateTime),
    Column("last_refresh_at", UTCDateTime),
    Column("last_refresh_error", Text),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

# An incident is one stretch of trouble of one kind for one subject (a shop's refresh
# failing, a connector down, a token about to lapse): alerting opens it once, stays
# quiet while it lasts, and announces its end once.
alert_incidents = Table(
    "alert_incidents",
    metadata,
    _id(),
    Column("kind", String(48), nullable=False),
    Column("subject", String(128), nullable=False),  # usually the shop code
    # "kind/subject" while open, NULL once resolved: the unique index lets only one
    # incident per kind and subject be open, even with several workers failing at once.
    Column("open_key", String(200), unique=True),
    Column("platform", String(32)),
    Column("stage", String(16)),  # escalating kinds (expiry warnings): the last stage sent
    Column("opened_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("occurrences", Integer, nullable=False, default=1),
    Column("detail", Json),
    Column("resolved_at", UTCDateTime),
)

# Per shop, what the last health probes and ingests saw.
connector_health = Table(
    "connector_health",
    metadata,
    Column("shop_code", String(64), ForeignKey("shops.code", ondelete="CASCADE"), primary_key=True),
    Column("last_probe_at", UTCDateTime),
    Column("last_probe_ok", Boolean),
    Column("last_latency_ms", Numeric(10, 1)),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_success_at", UTCDateTime),  # last probe that answered
    Column("last_fetch_at", UTCDateTime),  # last ingest fetch that finished
    Column("last_nonempty_fetch_at", UTCDateTime),  # last ingest fetch that brought orders
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
)

# A buyer's after-sales request (refund only, return and refund, exchange) as its platform
# reported it, once per platform request id; `lines` name the order lines it covers
# (with our order_line_id once linked), `respond_by` is the platform's own deadline to
# answer. `status` is ours (oms.domain.refunds); the approval flow run is kept to resume it.
after_sales_requests = Table(
    "after_sales_requests",
    metadata,
    _id(),
    Column("platform", String(32), nullable=False),
    Column("shop_code", String(64), nullable=False),
    Column("platform_request_id", String(128), nullable=False),
    Column("platform_order_id", String(128), nullable=False),
    Column("order_id", ForeignKey("orders.id")),
    Column("kind", String(24), nullable=False),  # refund_only|return_and_refund|exchange
    Column("status", String(24), nullable=False),
    Column("platform_status", String(64), nullable=False),
    Column("amount", Money, nullable=False),
    Column("approved_amount", Money),
    Column("currency", String(3), nullable=False),
    Column("reason_code", String(64)),
    Column("reason_text", Text),
    Column("lines", Json, nullable=False, default=list),
    Column("evidence", Json, nullable=False, default=list),
    Column("buyer_ref", String(128)),
    Column("cross_border", Boolean, nullable=False, default=False),
    Column("respond_by", UTCDateTime),
    Column("platform_created_at", UTCDateTime, nullable=False),
    Column("platform_updated_at", UTCDateTime, nullable=False),
    Column("node", String(48)),  # the lifecycle node it waits at, if any
    Column("flow_run_id", String(64)),
    Column("payload", Json, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime, nullable=False, default=utcnow),
    UniqueConstraint("platform", "shop_code", "platform_request_id"),
    Index("ix_after_sales_requests_status", "status", "respond_by"),
    Index("ix_after_sales_requests_order", "order_id"),
)

# Every step of a request's handling: who (a person, a rule, the pipeline), when, what,
# why, and the input they gave (the approval form's fields).
after_sales_audit = Table(
    "after_sales_audit",
    metadata,
    _id(),
    Column("request_id", ForeignKey("after_sales_requests.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(32)),
    Column("action", String(32), nullable=False),
    Column("node", String(48)),
    Column("reason", Text, nullable=False),
    Column("input", Json),
)

# Returned goods, once the warehouse inspected them: back to sellable stock in the
# warehouse that shipped them, or written off with the inspector's reason.
returned_goods = Table(
    "returned_goods",
    metadata,
    _id(),
    Column("request_id", ForeignKey("after_sales_requests.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("order_line_id", ForeignKey("order_lines.id")),
    Column("sku", String(128), nullable=False),
    Column("warehouse_id", ForeignKey("warehouses.id")),
    Column("units", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # restocked|written_off
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("units > 0", name="units_positive"),
    CheckConstraint("outcome IN ('restocked', 'written_off')", name="outcome_known"),
)


# --- Data you can trust (issue 8) -------------------------------------------------------

# One run of a quality suite over one batch; the rule counts are in quality_rule_failures.
# The daily data-quality summary reads failure rates by platform and rule from these.
quality_runs = Table(
    "quality_runs",
    metadata,
    _id(),
    Column("suite", String(64), nullable=False),
    Column("platform", String(32)),
    Column("shop_code", String(64)),
    Column("checked", Integer, nullable=False),
    Column("failed_rows", Integer, nullable=False),
    # The platform's own count for the window, when its API reports one.
    Column("expected_rows", Integer),
    # Batch-level checks that failed (row count, failure share), each with its figures.
    Column("batch_failures", Json, nullable=False, default=list),
    Column("validated_at", UTCDateTime, nullable=False),
    Column("flow_run_id", String(64)),
    Index("ix_quality_runs_validated_at", "validated_at"),
)

quality_rule_failures = Table(
    "quality_rule_failures",
    metadata,
    _id(),
    Column("run_id", ForeignKey("quality_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("rule", String(200), nullable=False),
    Column("failed", Integer, nullable=False),
)

# One reconciliation of one shop and day against the platform, with its totals.
reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    _id(),
    Column("shop_code", String(64), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("day", String(10), nullable=False),  # ISO date in the warehouse time zone
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("platform_orders", Integer, nullable=False),
    Column("our_orders", Integer, nullable=False),
    Column("missing_here", Integer, nullable=False),
    Column("backfilled", Integer, nullable=False),
    Column("missing_on_platform", Integer, nullable=False),
    Column("status_differences", Integer, nullable=False),
    Column("ran_at", UTCDateTime, nullable=False),
    Column("flow_run_id", String(64)),
    Index("ix_reconciliation_runs_shop_code_day", "shop_code", "day"),
)

# Every difference a reconciliation found, and what was done about it.
reconciliation_differences = Table(
    "reconciliation_differences",
    metadata,
    _id(),
    Column("run_id", ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("shop_code", String(64), nullable=False),
    Column("platform_order_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),  # missing_here | missing_on_platform | status
    Column("platform_status", String(64)),
    Column("our_status", String(32)),
    Column("resolution", String(200), nullable=False),
    Column("found_at", UTCDateTime, nullable=False),
)

# Every operator action on a review-queue entry: shown, fixed, resubmitted, discarded.
review_audit = Table(
    "review_audit",
    metadata,
    _id(),
    Column("review_id", ForeignKey("review_queue.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reason", Text),
    Column("detail", Json),
)

# Master customers: one row per person seen across every channel.
customers = Table(
    "customers",
    metadata,
    _id(),
    Column("created_at", UTCDateTime, nullable=False),
    # Set when a later batch showed this customer is the same person as another.
    Column("merged_into", Id),
)

# Tags on orders for picking priority and reporting (channel, amount band, region, ...).
order_tags = Table(
    "order_tags",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("tag", String(64), nullable=False),
    Column("tagged_at", UTCDateTime, nullable=False),
    UniqueConstraint("order_id", "tag"),
)

# A suspicious order waits here, with the rule that held it, until a person releases it.
risk_holds = Table(
    "risk_holds",
    metadata,
    _id(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("rule", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("held_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
    Column("released_by", String(64)),
    Column("release_reason", Text),
)
# One open hold per order and rule: a re-run of the tagging step cannot open it twice,
# while a released hold stays beside a later one as its history.
Index("uq_risk_holds_open_order_id_rule", risk_holds.c.order_id, risk_holds.c.rule, unique=True,
      sqlite_where=risk_holds.c.released_at.is_(None), postgresql_where=risk_holds.c.released_at.is_(None))

# Every time personal data leaves the database for a person or a file, who took what.
personal_data_exports = Table(
    "personal_data_exports",
    metadata,
    _id(),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("kind", String(64), nullable=False),  # e.g. review-payload, order-export
    Column("subject", Text, nullable=False),  # which rows: entry ids, a shop and range
    Column("row_count", Integer, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("destination", Text),  # a file path, a terminal
)

# One run of the retention flow: the cut-off and what it deleted.
retention_runs = Table(
    "retention_runs",
    metadata,
    _id(),
    Column("ran_at", UTCDateTime, nullable=False),
    Column("cutoff", UTCDateTime, nullable=False),
    Column("deleted", Json, nullable=False),  # table or kind -> rows deleted
)
