"""`ingest-all-shops`: one broken shop never holds back the others."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from flows.ingest_all import ingest_all_shops
from oms.db.schema import orders
from oms.db.shops import get_shop
from tasks.tokens import register_shop


def test_every_active_shop_is_ingested_and_a_broken_one_fails_the_run_by_name(db, add_shop):
    good = add_shop("shopify", orders=15, seed=8, code="all-good")
    broken = add_shop("pdd", orders=15, seed=9, code="all-broken")
    with db.begin() as conn:
        row = get_shop(conn, broken)
        register_shop(conn, code=broken, platform="pdd", name=broken, base_url=row["base_url"],
                  credentials=dict(row["credentials"], client_secret="not-the-secret"),
                  now=datetime.now(timezone.utc))
    state = ingest_all_shops(return_state=True)
    assert state.is_failed()
    assert "all-broken" in state.message and "all-good" not in state.message
    with db.connect() as conn:
        stored = dict(conn.execute(select(orders.c.shop_code, func.count()).group_by(orders.c.shop_code)).all())
    assert stored.get(good, 0) > 0
    assert broken not in stored
