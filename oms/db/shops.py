"""Shops, their sync watermarks, and the catalogue (warehouses, SKUs, stock) seeding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from oms.db.dialect import upsert_insert
from oms.db.schema import shops, skus, stock, sync_watermarks, warehouses
from oms.domain.tokens import split_credentials
from oms.sealing import seal, unseal


def save_shop(conn: Connection, *, code: str, platform: str, name: str, base_url: str,
              credentials: dict[str, Any], now: datetime) -> None:
    """Create the shop or update its endpoint and credentials (idempotent).

    Identifiers are stored as they are; the app's secrets are sealed. Tokens are refused
    here: they belong to the token store (`tasks.tokens.register_shop`), which knows
    whether a Prefect Secret block or this database keeps them.
    """
    identifiers, secrets, tokens = split_credentials(credentials)
    if tokens:
        raise ValueError(f"shop {code}: tokens ({', '.join(sorted(tokens))}) go to the token "
                         "store; register the shop with tasks.tokens.register_shop")
    sealed = seal(secrets) if secrets else None
    values = {"code": code, "platform": platform, "name": name, "base_url": base_url,
              "credentials": identifiers, "sealed_secrets": sealed, "active": True,
              "created_at": now}
    statement = upsert_insert(conn, shops).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_={"platform": platform, "name": name, "base_url": base_url,
              "credentials": identifiers, "sealed_secrets": sealed},
    )
    conn.execute(statement)


def shop_credentials(shop: dict[str, Any]) -> dict[str, Any]:
    """A shop row's identifiers and opened app secrets (never its tokens)."""
    credentials = dict(shop["credentials"])
    if shop.get("sealed_secrets"):
        credentials.update(unseal(shop["sealed_secrets"]))
    return credentials


def get_shop(conn: Connection, code: str) -> dict[str, Any]:
    row = conn.execute(select(shops).where(shops.c.code == code)).first()
    if row is None:
        raise LookupError(f"no shop with code {code!r}; add it with `oms shops add` or the demo")
    return dict(row._mapping)


def active_shop_codes(conn: Connection) -> list[str]:
    return list(conn.execute(select(shops.c.code).where(shops.c.active.is_(True)).order_by(shops.c.code)).scalars())


def get_watermark(conn: Connection, shop_code: str, stream: str = "orders") -> datetime | None:
    query = select(sync_watermarks.c.watermark).where(
        sync_watermarks.c.shop_code == shop_code, sync_watermarks.c.stream == stream)
    return conn.execute(query).scalar_one_or_none()


def move_watermark(conn: Connection, shop_code: str, to: datetime, now: datetime,
                   stream: str = "orders") -> None:
    """Only ever forward: a slow, older run finishing late must not rewind the sync."""
    current = get_watermark(conn, shop_code, stream)
    if current is None:
        conn.execute(sync_watermarks.insert().values(
            shop_code=shop_code, stream=stream, watermark=to, updated_at=now))
    elif to > current:
        conn.execute(update(sync_watermarks).where(
            sync_watermarks.c.shop_code == shop_code, sync_watermarks.c.stream == stream
        ).values(watermark=to, updated_at=now))


def save_warehouse(conn: Connection, *, code: str, name: str, province: str, priority: int) -> int:
    statement = upsert_insert(conn, warehouses).values(
        code=code, name=name, province=province, priority=priority, active=True
    ).on_conflict_do_update(index_elements=["code"], set_={"name": name, "priority": priority})
    conn.execute(statement)
    return conn.execute(select(warehouses.c.id).where(warehouses.c.code == code)).scalar_one()


def save_skus(conn: Connection, items: list[dict[str, Any]]) -> dict[str, int]:
    """items: {code, title, weight_grams[, reorder_point]}; returns code -> id."""
    statement = upsert_insert(conn, skus)
    updated = {"title": statement.excluded.title, "weight_grams": statement.excluded.weight_grams}
    if items and all("reorder_point" in item for item in items):
        updated["reorder_point"] = statement.excluded.reorder_point
    statement = statement.on_conflict_do_update(index_elements=["code"], set_=updated)
    conn.execute(statement, items)
    codes = [item["code"] for item in items]
    return dict(conn.execute(select(skus.c.code, skus.c.id).where(skus.c.code.in_(codes))).all())


def set_on_hand(conn: Connection, warehouse_id: int, levels: dict[int, int], safety_stock: int = 0) -> None:
    """Set counted stock per SKU id, keeping what is reserved (a stock count, not a reset)."""
    statement = upsert_insert(conn, stock)
    statement = statement.on_conflict_do_update(
        index_elements=["warehouse_id", "sku_id"],
        set_={"on_hand": statement.excluded.on_hand, "safety_stock": statement.excluded.safety_stock})
    conn.execute(statement, [
        {"warehouse_id": warehouse_id, "sku_id": sku_id, "on_hand": units, "reserved": 0,
         "safety_stock": safety_stock}
        for sku_id, units in levels.items()
    ])
