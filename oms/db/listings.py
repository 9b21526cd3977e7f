"""The shops' platform listings of our SKUs, and what stock sync last told each of them.

Listings are refreshed from the platform's own item API (a listing the platform no
longer returns is dropped); a push outcome is recorded per listing, so a refused one
shows its reason and its count of failures in a row until it goes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, select, update

from oms.db.dialect import upsert_insert
from oms.db.schema import listings


@dataclass(frozen=True)
class StoredListing:
    id: int
    sku: str
    item_id: str
    variant_id: str
    location_id: str
    product_type: str
    pushed_quantity: int | None
    failures: int


def save_listings(conn: Connection, shop_code: str, found: list, seen_at: datetime) -> int:
    """Upsert the listings a platform returned (connectors.base.Listing) and drop the
    shop's listings it did not return; returns how many are kept."""
    if found:
        statement = upsert_insert(conn, listings)
        statement = statement.on_conflict_do_update(
            index_elements=["shop_code", "item_id", "variant_id", "location_id"],
            set_={"sku": statement.excluded.sku, "platform_quantity": statement.excluded.platform_quantity,
                  "product_type": statement.excluded.product_type, "seen_at": statement.excluded.seen_at},
        )
        conn.execute(statement, [
            {"shop_code": shop_code, "sku": item.sku, "item_id": item.item_id, "variant_id": item.variant_id,
             "location_id": item.location_id, "product_type": item.product_type,
             "platform_quantity": item.quantity, "failures": 0, "seen_at": seen_at}
            for item in found
        ])
    conn.execute(delete(listings).where(listings.c.shop_code == shop_code, listings.c.seen_at < seen_at))
    return len(found)


def listings_age(conn: Connection, shop_code: str) -> datetime | None:
    """When the shop's listings were last read from the platform (None: never)."""
    return conn.execute(select(func.min(listings.c.seen_at)).where(listings.c.shop_code == shop_code)).scalar()


def shop_listings(conn: Connection, shop_code: str) -> list[StoredListing]:
    query = (select(listings.c.id, listings.c.sku, listings.c.item_id, listings.c.variant_id, listings.c.location_id,
                    listings.c.product_type, listings.c.pushed_quantity, listings.c.failures)
             .where(listings.c.shop_code == shop_code).order_by(listings.c.sku, listings.c.id))
    return [StoredListing(**row._mapping) for row in conn.execute(query)]


def record_stock_pushes(conn: Connection, accepted: list[tuple[int, int]], failed: list[tuple[int, str]],
                        now: datetime) -> None:
    """`accepted`: (listing id, quantity) the platform took; `failed`: (listing id, reason)."""
    if accepted:
        conn.execute(update(listings).where(listings.c.id == bindparam("listing"))
                     .values(pushed_quantity=bindparam("quantity"), pushed_at=now, failures=0, last_error=None),
                     [{"listing": listing, "quantity": quantity} for listing, quantity in accepted])
    if failed:
        conn.execute(update(listings).where(listings.c.id == bindparam("listing"))
                     .values(failures=listings.c.failures + 1, last_error=bindparam("reason")),
                     [{"listing": listing, "reason": reason[:2000]} for listing, reason in failed])
