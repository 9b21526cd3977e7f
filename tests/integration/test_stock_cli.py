"""`oms stock`: what an operator reads about stock, on both databases."""

from __future__ import annotations

from oms.cli import main
from oms.db.allocation import allocate_batch
from tests.stockworld import NOW, build_world, default_policy, place_orders


def _two_orders_one_short(db) -> None:
    with db.begin() as conn:
        build_world(conn, {("WH-SH", "SKU-A"): 2, ("WH-GZ", "SKU-A"): 1})
        place_orders(conn, [{"SKU-A": 3}, {"SKU-A": 5}], province="广东省")
        allocate_batch(conn, limit=10, now=NOW, actor="test", policy=default_policy())


def test_explain_tells_which_rule_chose_the_warehouse(db, capsys):
    _two_orders_one_short(db)
    assert main(["stock", "explain", "shop-a", "ORDER-1"]) == 0
    printed = capsys.readouterr().out
    assert "allocated" in printed and "split" in printed
    assert "parcel from WH-GZ: 1 x SKU-A" in printed and "parcel from WH-SH: 2 x SKU-A" in printed  # a split


def test_backorders_lists_the_waiting_order_with_its_reason(db, capsys):
    _two_orders_one_short(db)
    assert main(["stock", "backorders"]) == 0
    printed = capsys.readouterr().out
    assert "ORDER-2" in printed and "SKU-A" in printed and "ORDER-1" not in printed


def test_levels_show_what_is_reserved_and_still_available(db, capsys):
    _two_orders_one_short(db)
    assert main(["stock", "levels", "--sku", "SKU-A"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["sku", "warehouse", "on"]
    assert [line.split()[:6] for line in lines[1:]] == [["SKU-A", "WH-GZ", "1", "1", "0", "0"],
                                                         ["SKU-A", "WH-SH", "2", "2", "0", "0"]]


def test_explaining_an_unknown_order_says_so(db, capsys):
    assert main(["stock", "explain", "shop-a", "NOPE"]) == 1
    assert "no routing decision" in capsys.readouterr().err
