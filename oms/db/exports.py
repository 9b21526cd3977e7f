"""The audit of personal data leaving the database: who took what, for what, and where.

Every command or flow that hands buyers' names, phones or addresses to a person or a
file records one row here in the same transaction as the read, so an export that failed
half-way leaves no row and an export that happened always has one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from oms.db.schema import orders, personal_data_exports


def record_export(
    conn: Connection,
    *,
    actor: str,
    kind: str,
    subject: str,
    row_count: int,
    purpose: str,
    now: datetime,
    destination: str | None = None,
) -> int:
    """Audit one export; returns the audit row's id."""
    if not purpose.strip():
        raise ValueError("an export of personal data needs a purpose")
    result = conn.execute(
        personal_data_exports.insert().values(
            at=now, actor=actor, kind=kind, subject=subject, row_count=row_count,
            purpose=purpose.strip(), destination=destination,
        )
    )
    return result.inserted_primary_key[0]


def exports_since(conn: Connection, since: datetime) -> list[dict]:
    query = (
        select(personal_data_exports)
        .where(personal_data_exports.c.at >= since)
        .order_by(personal_data_exports.c.at)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


# The columns an order export hands out: enough to ship or call, with the receiver.
ORDER_EXPORT_COLUMNS = (
    "shop_code", "platform", "platform_order_id", "status", "created_at", "paid_at", "currency", "total_amount",
    "receiver_name", "receiver_phone", "receiver_country", "receiver_province", "receiver_city",
    "receiver_district", "receiver_address", "receiver_postal_code", "receiver_masked",
)


def orders_for_export(conn: Connection, shop_code: str, since: datetime, until: datetime) -> list[dict]:
    """A shop's orders created in [since, until), oldest first, with their receivers."""
    columns = [orders.c[name] for name in ORDER_EXPORT_COLUMNS]
    query = (
        select(*columns)
        .where(orders.c.shop_code == shop_code, orders.c.created_at >= since, orders.c.created_at < until)
        .order_by(orders.c.created_at, orders.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
