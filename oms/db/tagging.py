"""Order tags and risk holds in the database: what to tag next, the context the rules
need, and the writes.

The context of a batch is read in a handful of queries, whatever the batch size: every
order of the batch's customers in the widest window any rule looks at, the orders in the
velocity window to the batch's cities (addresses are compared by fingerprint, which only
Python computes), and each shop's recent paid totals. Medians and MADs are computed here
in Python from those totals, so SQLite and PostgreSQL give the same answers.

Writes are idempotent: a tag is unique per order, and a partial unique index allows one
open hold per order and rule (`uq_risk_holds_open_order_id_rule`), so a retried batch
adds nothing. An order counts as tagged once it has its `priority:<n>` tag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, exists, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.schema import order_tags, orders, risk_holds
from oms.domain.identity import address_fingerprint
from oms.domain.order import OrderStatus
from oms.domain.tagging import (
    PRIORITY_TAG_PREFIX,
    OrderContext,
    OrderFacts,
    TaggingRules,
    Verdict,
    amount_statistics,
)

S = OrderStatus
TAGGABLE = (S.PAID.value, S.BACKORDERED.value)  # what allocation takes; see oms.db.allocation
# Orders that never became a sale: neither history, spend nor a shop's usual amount.
NOT_A_SALE = (S.PENDING_PAYMENT.value, S.CANCELLED.value, S.REFUNDED.value)


@dataclass(frozen=True)
class OrderToTag:
    facts: OrderFacts
    created_at: datetime
    buyer_key: tuple | None  # the master customer, else the platform's buyer id
    address_key: str | None  # the address fingerprint; None when masked or missing


@dataclass(frozen=True)
class NewHold:
    hold_id: int
    order_id: int
    platform: str
    shop_code: str
    platform_order_id: str
    rule: str
    detail: str


def under_risk_hold(order_id: ColumnElement) -> ColumnElement:
    """True for an order with a hold nobody has released yet (allocation skips those)."""
    return exists().where(risk_holds.c.order_id == order_id, risk_holds.c.released_at.is_(None))


# ------------------------------------------------------------------ reading


def orders_to_tag(conn: Connection, limit: int, after_id: int = 0) -> list[OrderToTag]:
    """Up to `limit` paid (or backordered) orders with ids above `after_id` and no tags yet."""
    tagged = exists().where(order_tags.c.order_id == orders.c.id,
                            order_tags.c.tag.like(f"{PRIORITY_TAG_PREFIX}%"))
    query = (select(orders).where(orders.c.status.in_(TAGGABLE), orders.c.id > after_id, ~tagged)
             .order_by(orders.c.id).limit(limit))
    return [_order_to_tag(row._mapping) for row in conn.execute(query)]


def _order_to_tag(row) -> OrderToTag:
    facts = OrderFacts(
        order_id=row["id"], platform=row["platform"], shop_code=row["shop_code"], currency=row["currency"],
        total_amount=Decimal(row["total_amount"]), country=row["receiver_country"] or "CN",
        province=row["receiver_province"], city=row["receiver_city"], district=row["receiver_district"],
        address=row["receiver_address"], postal_code=row["receiver_postal_code"], phone=row["receiver_phone"],
        receiver_masked=bool(row["receiver_masked"]), ship_by=row["ship_by"])
    return OrderToTag(facts=facts, created_at=row["created_at"], buyer_key=_buyer_key(row),
                      address_key=_address_key(row))


def _buyer_key(row) -> tuple | None:
    if row["master_customer_id"] is not None:
        return ("customer", row["master_customer_id"])
    if row["buyer_ref"]:
        return ("buyer", row["platform"], row["buyer_ref"])
    return None


def _address_key(row) -> str | None:
    if row["receiver_masked"] or not row["receiver_address"]:
        return None
    return address_fingerprint(row["receiver_country"], row["receiver_province"], row["receiver_city"],
                               row["receiver_district"], row["receiver_address"]) or None


def gather_context(conn: Connection, batch: list[OrderToTag], rules: TaggingRules,
                   now: datetime) -> dict[int, OrderContext]:
    """What the rules need to know around each order of the batch, by order id."""
    if not batch:
        return {}
    by_buyer = _orders_of_buyers(conn, batch, rules)
    by_address = _orders_to_addresses(conn, batch, rules)
    shop_amounts = _shop_amounts(conn, batch, rules, now)
    contexts = {}
    for order in batch:
        mine = by_buyer.get(order.buyer_key, []) if order.buyer_key else []
        earlier, spend = _customer_history(order, mine, rules)
        contexts[order.facts.order_id] = OrderContext(
            buyer_orders_nearby=(_nearby(order, mine, rules.buyer_velocity.window)
                                 if rules.buyer_velocity and order.buyer_key else None),
            address_orders_nearby=(_nearby(order, by_address.get(order.address_key, []),
                                           rules.address_velocity.window)
                                   if rules.address_velocity and order.address_key else None),
            earlier_customer_orders=earlier,
            customer_spend=spend,
            shop_amounts=shop_amounts.get((order.facts.shop_code, order.facts.currency)),
        )
    return contexts


def _history_reach(rules: TaggingRules) -> timedelta:
    """How far back before the oldest order of the batch any customer rule looks."""
    reaches = [timedelta(0), rules.velocity_window or timedelta(0)]
    if rules.repeat_customer:
        reaches.append(timedelta(days=rules.repeat_customer.days))
    if rules.high_value_customer:
        reaches.append(timedelta(days=rules.high_value_customer.days))
    return max(reaches)


def _orders_of_buyers(conn: Connection, batch: list[OrderToTag], rules: TaggingRules) -> dict[tuple, list[dict]]:
    """Every order of the batch's customers from the widest reach of the rules up to the
    velocity window after the newest order of the batch, by customer key."""
    reach = _history_reach(rules)
    if not reach:
        return {}
    since = min(order.created_at for order in batch) - reach
    until = max(order.created_at for order in batch) + (rules.velocity_window or timedelta(0))
    masters = sorted({order.buyer_key[1] for order in batch if order.buyer_key and order.buyer_key[0] == "customer"})
    refs = sorted({order.buyer_key[2] for order in batch if order.buyer_key and order.buyer_key[0] == "buyer"})
    wanted = {order.buyer_key for order in batch if order.buyer_key}
    columns = (orders.c.id, orders.c.status, orders.c.created_at, orders.c.currency, orders.c.total_amount,
               orders.c.master_customer_id, orders.c.platform, orders.c.buyer_ref)
    found: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for column, values in ((orders.c.master_customer_id, masters), (orders.c.buyer_ref, refs)):
        for part in chunks(values):
            query = select(*columns).where(column.in_(part), orders.c.created_at >= since,
                                           orders.c.created_at <= until)
            for row in conn.execute(query):
                key = _buyer_key(row._mapping)
                if key in wanted:
                    found[key][row.id] = dict(row._mapping)
    return {key: list(rows.values()) for key, rows in found.items()}


def _orders_to_addresses(conn: Connection, batch: list[OrderToTag], rules: TaggingRules) -> dict[str, list[dict]]:
    """Orders within the address velocity window of the batch to the batch's cities, by
    address fingerprint (the city narrows the read; the fingerprint decides)."""
    if not rules.address_velocity:
        return {}
    window = rules.address_velocity.window
    keyed = [order for order in batch if order.address_key]
    cities = sorted({order.facts.city for order in keyed if order.facts.city})
    if not cities:
        return {}
    since = min(order.created_at for order in keyed) - window
    until = max(order.created_at for order in keyed) + window
    wanted = {order.address_key for order in keyed}
    found: dict[str, list[dict]] = defaultdict(list)
    for part in chunks(cities):
        query = (select(orders.c.id, orders.c.created_at, orders.c.receiver_country, orders.c.receiver_province,
                        orders.c.receiver_city, orders.c.receiver_district, orders.c.receiver_address,
                        orders.c.receiver_masked)
                 .where(orders.c.receiver_city.in_(part), orders.c.created_at >= since,
                        orders.c.created_at <= until))
        for row in conn.execute(query):
            key = _address_key(row._mapping)
            if key in wanted:
                found[key].append({"id": row.id, "created_at": row.created_at})
    return found


def _nearby(order: OrderToTag, others: list[dict], window: timedelta) -> int:
    """Orders (this one included) created within `window` before or after this one."""
    count = sum(1 for other in others if abs(other["created_at"] - order.created_at) <= window
                and other["id"] != order.facts.order_id)
    return count + 1


def _customer_history(order: OrderToTag, mine: list[dict], rules: TaggingRules) -> tuple[int, dict[str, Decimal]]:
    """Earlier sales of the customer in the repeat window, and their spend per currency in
    the high-value window with this order included."""
    sales = [other for other in mine if other["status"] not in NOT_A_SALE and other["id"] != order.facts.order_id]
    earlier = 0
    if rules.repeat_customer:
        since = order.created_at - timedelta(days=rules.repeat_customer.days)
        earlier = sum(1 for other in sales if since <= other["created_at"] < order.created_at)
    spend: dict[str, Decimal] = {order.facts.currency: order.facts.total_amount}
    if rules.high_value_customer:
        since = order.created_at - timedelta(days=rules.high_value_customer.days)
        for other in sales:
            if since <= other["created_at"] <= order.created_at:
                spend[other["currency"]] = spend.get(other["currency"], Decimal(0)) + Decimal(other["total_amount"])
    return earlier, spend


def _shop_amounts(conn: Connection, batch: list[OrderToTag], rules: TaggingRules, now: datetime) -> dict:
    """(shop, currency) -> the statistics of its paid totals over the rule's days."""
    rule = rules.unusual_amount
    if not rule:
        return {}
    pairs = {(order.facts.shop_code, order.facts.currency) for order in batch}
    amounts: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for part in chunks(sorted({shop for shop, _ in pairs})):
        query = (select(orders.c.shop_code, orders.c.currency, orders.c.total_amount)
                 .where(orders.c.shop_code.in_(part), orders.c.paid_at.is_not(None),
                        orders.c.status.not_in(NOT_A_SALE), orders.c.created_at >= now - timedelta(days=rule.days)))
        for shop, currency, amount in conn.execute(query):
            if (shop, currency) in pairs:
                amounts[(shop, currency)].append(Decimal(amount))
    return {pair: amount_statistics(values) for pair, values in amounts.items()}


# ------------------------------------------------------------------ writing


def save_verdicts(conn: Connection, verdicts: Iterable[Verdict], batch: list[OrderToTag],
                  platform_order_ids: dict[int, str], now: datetime) -> list[NewHold]:
    """Store every verdict's tags and open its holds; return only the holds opened now."""
    verdicts = list(verdicts)
    tag_rows = [{"order_id": v.order_id, "tag": tag, "tagged_at": now} for v in verdicts for tag in v.stored_tags]
    if tag_rows:
        statement = (upsert_insert(conn, order_tags)
                     .on_conflict_do_nothing(index_elements=["order_id", "tag"])
                     .returning(order_tags.c.id))  # keeps psycopg2's executemany batched
        conn.execute(statement, tag_rows)
    hold_rows = [{"order_id": v.order_id, "rule": hold.rule, "detail": hold.detail, "held_at": now}
                 for v in verdicts for hold in v.holds]
    if not hold_rows:
        return []
    statement = (upsert_insert(conn, risk_holds)
                 .on_conflict_do_nothing(index_elements=["order_id", "rule"],
                                         index_where=risk_holds.c.released_at.is_(None))
                 .returning(risk_holds.c.id, risk_holds.c.order_id, risk_holds.c.rule, risk_holds.c.detail))
    opened = conn.execute(statement, hold_rows).all()
    facts = {order.facts.order_id: order.facts for order in batch}
    return [NewHold(hold_id=row.id, order_id=row.order_id, platform=facts[row.order_id].platform,
                    shop_code=facts[row.order_id].shop_code, platform_order_id=platform_order_ids[row.order_id],
                    rule=row.rule, detail=row.detail)
            for row in opened]


def platform_order_ids(conn: Connection, order_ids: list[int]) -> dict[int, str]:
    found = {}
    for part in chunks(order_ids):
        found.update(conn.execute(select(orders.c.id, orders.c.platform_order_id).where(orders.c.id.in_(part))).all())
    return found


def release_holds(conn: Connection, order_id: int, *, actor: str, reason: str, now: datetime,
                  rule: str | None = None) -> list[str]:
    """Release the order's open holds (or only the one of `rule`); the rules released."""
    if not reason or not reason.strip():
        raise ValueError("a release needs a reason an auditor can read")
    condition = (risk_holds.c.order_id == order_id) & risk_holds.c.released_at.is_(None)
    if rule is not None:
        condition = condition & (risk_holds.c.rule == rule)
    released = conn.execute(update(risk_holds).where(condition)
                            .values(released_at=now, released_by=actor, release_reason=reason.strip())
                            .returning(risk_holds.c.rule)).scalars().all()
    return sorted(released)


def open_holds(conn: Connection, shop_code: str | None = None) -> list[dict]:
    """Holds nobody released yet, oldest first, with the order's shop and platform id."""
    query = (select(risk_holds.c.id, risk_holds.c.order_id, risk_holds.c.rule, risk_holds.c.detail,
                    risk_holds.c.held_at, orders.c.shop_code, orders.c.platform, orders.c.platform_order_id,
                    orders.c.status)
             .select_from(risk_holds.join(orders, orders.c.id == risk_holds.c.order_id))
             .where(risk_holds.c.released_at.is_(None))
             .order_by(risk_holds.c.held_at, risk_holds.c.id))
    if shop_code is not None:
        query = query.where(orders.c.shop_code == shop_code)
    return [dict(row._mapping) for row in conn.execute(query)]


def holds_of(conn: Connection, order_id: int) -> list[dict]:
    """Every hold of one order, open and released, oldest first."""
    query = select(risk_holds).where(risk_holds.c.order_id == order_id).order_by(risk_holds.c.held_at, risk_holds.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def tags_of(conn: Connection, order_id: int) -> list[str]:
    query = select(order_tags.c.tag).where(order_tags.c.order_id == order_id).order_by(order_tags.c.tag)
    return list(conn.execute(query).scalars())
