"""Master customers: one id per person across shops and platforms, in `orders.master_customer_id`.

A stored batch is resolved together with the stored orders that share an exact key with
it (an unmasked phone, the platform's buyer id, or the same name in the same city), so a
buyer first seen on Taobao and later on Shopify keeps the id the Taobao order gave them.
Only those neighbours are read, never the whole table, so linking costs the same on the
first day and after a million orders.

Links only ever join: when a batch shows that two customers are one person, the younger
id is absorbed (`customers.merged_into`) and its orders move to the older one. Nothing
splits a customer again by itself; an operator would, since a wrong split is as costly
as a wrong join and a later order is weak evidence either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, bindparam, select, tuple_, update

from oms.db.dialect import chunks
from oms.db.schema import customers, orders
from oms.domain.identity import resolve_customers

# The resolver's columns, from the order's own ones; orders keep no e-mail address.
_RECORD_COLUMNS = {
    "receiver_name": "name",
    "receiver_phone": "phone",
    "receiver_address": "address",
    "receiver_city": "city",
    "receiver_province": "province",
    "receiver_postal_code": "postcode",
    "platform": "platform",
    "buyer_ref": "platform_buyer_id",
    # Tells the resolver how to read a phone written without its country code.
    "receiver_country": "country",
}
# A common name in a big city can match thousands of stored orders; past this many
# neighbours per batch the name-and-city ones are the first to be left out.
MAX_NEIGHBOURS = 20_000


@dataclass
class LinkResult:
    orders_linked: int = 0
    customers_created: int = 0
    customers_merged: int = 0
    neighbours_read: int = 0


def link_orders(conn: Connection, order_ids: list[int], now: datetime) -> LinkResult:
    """Give each of these orders its master customer id, joining customers where the
    batch shows two are one."""
    parts = [_read_orders(conn, orders.c.id.in_(part)) for part in chunks(order_ids)]
    batch = pd.concat(parts) if parts else _read_orders(conn, None)
    if batch.empty:
        return LinkResult()
    neighbours = _neighbours(conn, batch)
    frame = pd.concat([batch, neighbours])
    clusters = resolve_customers(_as_records(frame))
    result = LinkResult(neighbours_read=len(neighbours))
    assignments: dict[int, int] = {}
    absorbed: dict[int, int] = {}
    unnamed: list[list[int]] = []
    for _, members in frame.groupby(clusters, sort=False):
        known = sorted({int(m) for m in members["master_customer_id"].dropna()})
        batch_members = [int(i) for i in members.index if i in batch.index]
        if not known:
            unnamed.append(batch_members)
            continue
        target = known[0]
        absorbed.update(dict.fromkeys(known[1:], target))
        assignments.update(dict.fromkeys(batch_members, target))
    new_ids = _create_customers(conn, len(unnamed), now)
    for customer_id, members in zip(new_ids, unnamed):
        assignments.update(dict.fromkeys(members, customer_id))
    result.customers_created = len(new_ids)
    result.customers_merged = _absorb(conn, absorbed)
    result.orders_linked = _assign(conn, batch, assignments)
    return result


def order_ids_for_keys(conn: Connection, keys: list[tuple[str, str, str]]) -> list[int]:
    """Our ids of orders given by global key (platform, shop, platform order id)."""
    found: list[int] = []
    key_columns = tuple_(orders.c.platform, orders.c.shop_code, orders.c.platform_order_id)
    for part in chunks(keys, 300):
        found += conn.execute(select(orders.c.id).where(key_columns.in_(part))).scalars().all()
    return found


def unlinked_order_ids(conn: Connection, limit: int) -> list[int]:
    """Orders stored before customers were linked (or by a run that failed half-way)."""
    query = select(orders.c.id).where(orders.c.master_customer_id.is_(None)).order_by(orders.c.id).limit(limit)
    return list(conn.execute(query).scalars())


def orders_of_customer(conn: Connection, customer_id: int) -> list[dict]:
    """Every order of a master customer, following merges to the surviving id."""
    current = _surviving_id(conn, customer_id)
    query = (
        select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id,
               orders.c.status, orders.c.total_amount, orders.c.currency, orders.c.created_at)
        .where(orders.c.master_customer_id == current)
        .order_by(orders.c.created_at)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def _surviving_id(conn: Connection, customer_id: int) -> int:
    seen = set()
    while customer_id not in seen:
        seen.add(customer_id)
        merged_into = conn.execute(
            select(customers.c.merged_into).where(customers.c.id == customer_id)
        ).scalar()
        if merged_into is None:
            return customer_id
        customer_id = int(merged_into)
    return customer_id


_LINK_COLUMNS = [orders.c.id, orders.c.master_customer_id, orders.c.receiver_masked,
                 *(orders.c[name] for name in _RECORD_COLUMNS)]


def _read_orders(conn: Connection, condition) -> pd.DataFrame:
    """The orders matching `condition` as resolver input; none at all when it is None."""
    rows = [] if condition is None else conn.execute(select(*_LINK_COLUMNS).where(condition)).mappings().all()
    return pd.DataFrame(rows, columns=[c.name for c in _LINK_COLUMNS]).set_index("id")


def _neighbours(conn: Connection, batch: pd.DataFrame) -> pd.DataFrame:
    """Stored, already linked orders that share a phone, a buyer id, or a name and city."""
    # pandas turns a missing text into NaN as soon as a frame is concatenated.
    def text(value) -> bool:
        return isinstance(value, str) and bool(value)

    phones = sorted({p for p in batch["receiver_phone"] if text(p) and "*" not in p})
    buyers = sorted({(p, b) for p, b in zip(batch["platform"], batch["buyer_ref"]) if text(b)})
    names = sorted({(n, c) for n, c, masked in zip(batch["receiver_name"], batch["receiver_city"],
                                                   batch["receiver_masked"])
                    if text(n) and text(c) and not masked and "*" not in n})
    linked_elsewhere = and_(orders.c.master_customer_id.is_not(None), orders.c.id.not_in(list(batch.index)))
    conditions = [
        (phones, lambda part: orders.c.receiver_phone.in_(part)),
        (buyers, lambda part: tuple_(orders.c.platform, orders.c.buyer_ref).in_(part)),
        (names, lambda part: tuple_(orders.c.receiver_name, orders.c.receiver_city).in_(part)),
    ]
    found: list[pd.DataFrame] = []
    total = 0
    for values, matches in conditions:
        for part in chunks(values, 300):
            if total >= MAX_NEIGHBOURS:
                break
            frame = _read_orders(conn, and_(matches(part), linked_elsewhere))
            total += len(frame)
            found.append(frame)
    if not found:
        return batch.iloc[0:0]
    neighbours = pd.concat(found)
    return neighbours[~neighbours.index.duplicated()]


def _as_records(frame: pd.DataFrame) -> pd.DataFrame:
    records = frame[list(_RECORD_COLUMNS)].rename(columns=_RECORD_COLUMNS)
    records["email"] = None
    return records


def _create_customers(conn: Connection, count: int, now: datetime) -> list[int]:
    if not count:
        return []
    statement = customers.insert().returning(customers.c.id, sort_by_parameter_order=True)
    return [row.id for row in conn.execute(statement, [{"created_at": now}] * count)]


def _absorb(conn: Connection, absorbed: dict[int, int]) -> int:
    """Point absorbed customers, and their orders, at the customer that survives."""
    if not absorbed:
        return 0
    pairs = [{"old": old, "new": new} for old, new in absorbed.items()]
    conn.execute(
        update(customers).where(customers.c.id == bindparam("old")).values(merged_into=bindparam("new")),
        pairs,
    )
    conn.execute(
        update(orders).where(orders.c.master_customer_id == bindparam("old"))
        .values(master_customer_id=bindparam("new")),
        pairs,
    )
    return len(pairs)


def _assign(conn: Connection, batch: pd.DataFrame, assignments: dict[int, int]) -> int:
    current = batch["master_customer_id"]
    changes = [{"order": order_id, "customer": customer_id} for order_id, customer_id in assignments.items()
               if pd.isna(current.get(order_id)) or int(current[order_id]) != customer_id]
    if changes:
        conn.execute(
            update(orders).where(orders.c.id == bindparam("order")).values(master_customer_id=bindparam("customer")),
            changes,
        )
    return len(changes)

