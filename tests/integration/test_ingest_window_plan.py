"""Where an ingest window ends: now, or as close to now as the platform serves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tasks.ingest import plan_window
from tasks.tokens import register_shop


def add_shop(db, code: str, platform: str) -> None:
    with db.begin() as conn:
        register_shop(conn, code=code, platform=platform, name=code, base_url="http://127.0.0.1:9",
                  credentials={}, now=datetime.now(timezone.utc))


def test_an_amazon_window_ends_where_amazon_serves_orders_so_the_watermark_claims_no_unserved_minutes(db):
    add_shop(db, "plan-amazon", "amazon")
    add_shop(db, "plan-pdd", "pdd")
    before = datetime.now(timezone.utc)
    amazon = plan_window.fn("plan-amazon")
    pdd = plan_window.fn("plan-pdd")
    assert amazon.end <= before - timedelta(minutes=2)
    assert pdd.end >= before
