"""Connector health rows: what the last probes and ingest fetches of each shop saw.

Probes of every shop are written as one upsert executed for all of them, and the count
of failures in a row is kept by the database (`+ 1` or back to 0 in the UPDATE itself):
two health runs overlapping never lose a count the way read-then-write would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, literal, select

from oms.db.dialect import upsert_insert
from oms.db.schema import connector_health, shops
from oms.domain.health import ProbeResult


@dataclass(frozen=True)
class HealthRow:
    shop_code: str
    platform: str
    last_probe_at: datetime | None
    last_probe_ok: bool | None
    last_latency_ms: float | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    last_fetch_at: datetime | None
    last_nonempty_fetch_at: datetime | None


def record_probes(conn: Connection, results: list[ProbeResult], now: datetime) -> None:
    """Store the probes of many shops in one executemany upsert."""
    if not results:
        return
    statement = upsert_insert(conn, connector_health)
    new, old = statement.excluded, connector_health.c
    statement = statement.on_conflict_do_update(
        index_elements=["shop_code"],
        set_={
            "last_probe_at": new.last_probe_at,
            "last_probe_ok": new.last_probe_ok,
            "last_latency_ms": new.last_latency_ms,
            "last_error": new.last_error,
            "consecutive_failures": case((new.last_probe_ok, 0), else_=old.consecutive_failures + 1),
            "last_success_at": case((new.last_probe_ok, new.last_probe_at), else_=old.last_success_at),
            "updated_at": new.updated_at,
        },
    ).returning(connector_health.c.shop_code)  # RETURNING keeps psycopg2's batching
    conn.execute(statement, [_probe_values(result, now) for result in results]).all()


def _probe_values(result: ProbeResult, now: datetime) -> dict:
    # The inserted values are what a shop's first probe leaves; an existing row takes
    # only the columns of the UPDATE above.
    return {
        "shop_code": result.shop_code,
        "last_probe_at": now,
        "last_probe_ok": result.ok,
        "last_latency_ms": None if result.latency_ms is None else round(result.latency_ms, 1),
        "last_error": None if result.ok else result.error,
        "consecutive_failures": 0 if result.ok else 1,
        "last_success_at": now if result.ok else None,
        "last_fetch_at": None,
        "last_nonempty_fetch_at": None,
        "updated_at": now,
    }


def record_fetch(conn: Connection, shop_code: str, orders_fetched: int, now: datetime) -> None:
    """Note that an ingest fetch of the shop finished with `orders_fetched` orders.

    Times only move forward: a slow, older fetch finishing after a newer one must not
    make the shop look quieter than it is.
    """
    brought_orders = orders_fetched > 0
    statement = upsert_insert(conn, connector_health).values(
        shop_code=shop_code, last_fetch_at=now, consecutive_failures=0, updated_at=now,
        last_nonempty_fetch_at=now if brought_orders else None,
    )
    changes = {"last_fetch_at": _later(connector_health.c.last_fetch_at, now), "updated_at": now}
    if brought_orders:
        changes["last_nonempty_fetch_at"] = _later(connector_health.c.last_nonempty_fetch_at, now)
    conn.execute(statement.on_conflict_do_update(index_elements=["shop_code"], set_=changes))


def _later(column, moment: datetime):
    """The column, or `moment` when that is later (GREATEST is not spelled alike)."""
    moment_value = literal(moment, column.type)  # the column's type: UTC on SQLite too
    return case((column.is_(None) | (column < moment_value), moment_value), else_=column)


def health_rows(conn: Connection) -> dict[str, HealthRow]:
    """Every shop by code, with what is known of its health (all None before its first
    probe or fetch)."""
    health = connector_health.c
    query = (
        select(shops.c.code, shops.c.platform, health.last_probe_at, health.last_probe_ok,
               health.last_latency_ms, health.consecutive_failures, health.last_error,
               health.last_success_at, health.last_fetch_at, health.last_nonempty_fetch_at)
        .select_from(shops.outerjoin(connector_health, connector_health.c.shop_code == shops.c.code))
        .order_by(shops.c.code)
    )
    return {row.code: _health_row(row) for row in conn.execute(query)}


def _health_row(row) -> HealthRow:
    return HealthRow(
        shop_code=row.code, platform=row.platform, last_probe_at=row.last_probe_at,
        last_probe_ok=row.last_probe_ok,
        last_latency_ms=None if row.last_latency_ms is None else float(row.last_latency_ms),
        consecutive_failures=row.consecutive_failures or 0, last_error=row.last_error,
        last_success_at=row.last_success_at, last_fetch_at=row.last_fetch_at,
        last_nonempty_fetch_at=row.last_nonempty_fetch_at,
    )
