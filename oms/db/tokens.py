"""The `shop_tokens` table: token metadata, sealed tokens, and the one-refresher lease.

Expiry times, whether a shop can be refreshed and who is refreshing it are plain columns,
so the refresh flow and the UI can ask "what expires soon" without opening a secret.
The tokens themselves are a sealed blob here, or nothing when a Prefect Secret block
holds them. The lease is a conditional UPDATE: exactly one worker of any process wins
it, and a holder that crashed loses it when it runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from oms.db.dialect import upsert_insert
from oms.db.schema import shop_tokens, shops
from oms.domain.tokens import ShopTokens


@dataclass(frozen=True)
class TokenRecord:
    shop_code: str
    store: str
    sealed: str | None
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    issued_at: datetime | None
    refreshable: bool
    version: int
    last_refresh_at: datetime | None
    last_refresh_error: str | None


def token_record(conn: Connection, shop_code: str) -> TokenRecord | None:
    row = conn.execute(select(shop_tokens).where(shop_tokens.c.shop_code == shop_code)).first()
    if row is None:
        return None
    return TokenRecord(row.shop_code, row.store, row.sealed, row.access_expires_at,
                       row.refresh_expires_at, row.issued_at, row.refreshable, row.version,
                       row.last_refresh_at, row.last_refresh_error)


def save_token_record(conn: Connection, shop_code: str, tokens: ShopTokens, *, store: str,
                      sealed: str | None, now: datetime, refreshed: bool = False) -> None:
    """Write the tokens' metadata (and sealed blob); each save bumps `version`."""
    values = {"store": store, "sealed": sealed, "access_expires_at": tokens.access_expires_at,
              "refresh_expires_at": tokens.refresh_expires_at, "issued_at": tokens.issued_at,
              "refreshable": tokens.can_refresh, "updated_at": now}
    if refreshed:
        values.update(last_refresh_at=now, last_refresh_error=None)
    statement = upsert_insert(conn, shop_tokens).values(shop_code=shop_code, version=1, **values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["shop_code"], set_={**values, "version": shop_tokens.c.version + 1}))


def record_refresh_error(conn: Connection, shop_code: str, error: str, now: datetime,
                         *, refreshable: bool | None = None) -> None:
    values: dict = {"last_refresh_error": error, "updated_at": now}
    if refreshable is not None:
        values["refreshable"] = refreshable
    conn.execute(update(shop_tokens).where(shop_tokens.c.shop_code == shop_code).values(**values))


def take_refresh_lease(conn: Connection, shop_code: str, holder: str, now: datetime,
                       lasting: timedelta) -> bool:
    """True if `holder` now holds the shop's refresh lease (free, lapsed, or its own)."""
    free = or_(shop_tokens.c.lease_until.is_(None), shop_tokens.c.lease_until <= now,
               shop_tokens.c.lease_holder == holder)
    taken = conn.execute(update(shop_tokens).where(shop_tokens.c.shop_code == shop_code, free)
                         .values(lease_holder=holder, lease_until=now + lasting)).rowcount
    return taken == 1


def take_over_refresh_lease(conn: Connection, shop_code: str, dead_holder: str, holder: str,
                            now: datetime, lasting: timedelta) -> bool:
    """Take the lease from a holder known to be dead, unless someone else already did."""
    taken = conn.execute(update(shop_tokens).where(
        shop_tokens.c.shop_code == shop_code, shop_tokens.c.lease_holder == dead_holder,
    ).values(lease_holder=holder, lease_until=now + lasting)).rowcount
    return taken == 1


def release_refresh_lease(conn: Connection, shop_code: str, holder: str) -> None:
    conn.execute(update(shop_tokens).where(
        shop_tokens.c.shop_code == shop_code, shop_tokens.c.lease_holder == holder,
    ).values(lease_holder=None, lease_until=None))


def token_overview(conn: Connection) -> list[dict]:
    """Every active shop with its token metadata (no secrets), for the refresh flow."""
    query = (select(shops.c.code, shops.c.platform, shop_tokens.c.store,
                    shop_tokens.c.access_expires_at, shop_tokens.c.refresh_expires_at,
                    shop_tokens.c.issued_at, shop_tokens.c.refreshable,
                    shop_tokens.c.last_refresh_at, shop_tokens.c.last_refresh_error)
             .select_from(shops.outerjoin(shop_tokens, shop_tokens.c.shop_code == shops.c.code))
             .where(shops.c.active.is_(True)).order_by(shops.c.code))
    return [dict(row._mapping) for row in conn.execute(query)]
