"""An order export writes the receivers to CSV and leaves exactly one audit row; none without a purpose."""

from __future__ import annotations

import argparse
import csv
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from oms.commands.privacy import ORDER_EXPORT_KIND, add_commands
from oms.db.orders import store_orders
from oms.db.schema import personal_data_exports
from tests.factories import BASE_TIME, make_order


def run_oms(*argv: str) -> int:
    """The commands as `oms` would run them, without needing oms.cli wired yet."""
    parser = argparse.ArgumentParser(prog="oms")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.run(args) or 0


@pytest.fixture
def stored_orders(db):
    with db.begin() as conn:
        store_orders(conn, [make_order(1), make_order(2), make_order(3, shop_code="shop-b")], now=BASE_TIME)


def audit_rows(db) -> list[dict]:
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(personal_data_exports))]


def window() -> list[str]:
    hour = timedelta(hours=1)
    return ["--since", (BASE_TIME - hour).isoformat(), "--until", (BASE_TIME + hour).isoformat()]


def test_an_export_writes_the_shops_orders_with_receivers_and_one_audit_row(db, stored_orders, tmp_path, capsys):
    out = tmp_path / "orders.csv"
    code = run_oms("orders", "export", "--shop", "shop-a", *window(), "--out", str(out),
               "--purpose", "courier claim for lost parcels", "--actor", "li")
    assert code == 0
    with out.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted(r["platform_order_id"] for r in rows) == ["ORDER-1", "ORDER-2"]
    assert {r["receiver_phone"] for r in rows} == {"+8613800138000"}
    assert {r["receiver_name"] for r in rows} == {"测试 收件人"}
    [audit] = audit_rows(db)
    assert (audit["actor"], audit["kind"], audit["row_count"]) == ("li", ORDER_EXPORT_KIND, 2)
    assert audit["purpose"] == "courier claim for lost parcels"
    assert "shop-a" in audit["subject"] and audit["destination"] == str(out.resolve())
    assert not list(tmp_path.glob(".*.partial"))

    capsys.readouterr()
    assert run_oms("privacy", "exports") == 0
    listed = capsys.readouterr().out
    assert "courier claim for lost parcels" in listed and "li" in listed


def test_an_export_without_a_purpose_is_refused_and_leaves_no_file_and_no_audit(db, stored_orders, tmp_path):
    out = tmp_path / "orders.csv"
    assert run_oms("orders", "export", "--shop", "shop-a", *window(), "--out", str(out), "--purpose", "  ") == 2
    with pytest.raises(SystemExit):  # --purpose is required at all
        run_oms("orders", "export", "--shop", "shop-a", *window(), "--out", str(out))
    assert not out.exists()
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(personal_data_exports)).scalar_one() == 0


def test_an_export_that_cannot_be_audited_leaves_no_file(db, stored_orders, tmp_path, monkeypatch):
    import oms.db.exports

    def broken(*args, **kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(oms.db.exports, "record_export", broken)
    out = tmp_path / "orders.csv"
    with pytest.raises(RuntimeError):
        run_oms("orders", "export", "--shop", "shop-a", *window(), "--out", str(out), "--purpose", "claim")
    assert not out.exists() and not list(tmp_path.iterdir())
