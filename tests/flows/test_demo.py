"""The main job: `oms demo` runs the whole way, and running it again stores nothing twice."""

from sqlalchemy import func, select

from flows.demo import run_demo
from oms.config import reset_settings
from oms.db.engine import get_engine
from oms.db.schema import orders, tracking_pushes

CARRIER_SETTINGS = ("OMS_CARRIER_URL", "OMS_CARRIER_PARTNER_ID", "OMS_CARRIER_CHECKWORD")


def test_the_demo_ships_orders_writes_tracking_back_and_a_rerun_stores_none_twice(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    for name in CARRIER_SETTINGS:  # the demo points them at its sandbox; undo that after
        monkeypatch.setenv(name, "")
    reset_settings()

    first = run_demo(orders_per_shop=40)
    with get_engine(url).connect() as conn:
        stored_after_first = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        keys = conn.execute(select(orders.c.platform, orders.c.shop_code, orders.c.platform_order_id)).all()
    second = run_demo(orders_per_shop=40)
    with get_engine(url).connect() as conn:
        stored_after_second = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        pushes = dict(conn.execute(select(tracking_pushes.c.outcome, func.count())
                                   .group_by(tracking_pushes.c.outcome)).all())

    assert {row["shop"] for row in first} == {"demo-shopify", "demo-pdd"}
    for row in first:
        assert row["fetched"] > 0 and row["shipped"] > 0
        assert row["tracking written back"] == row["shipped"]
        assert 0 < row["stored (all runs)"] <= row["fetched"]
    assert len(keys) == len(set(keys))
    assert stored_after_second == stored_after_first
    assert all(row["stored (all runs)"] == before["stored (all runs)"] for row, before in zip(second, first))
    assert set(pushes) == {"success"}
    printed = capsys.readouterr().out
    assert "tracking written back" in printed and "demo-pdd" in printed
    reset_settings()
