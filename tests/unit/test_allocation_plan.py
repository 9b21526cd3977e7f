"""Warehouse routing decisions, planned in memory."""

from oms.domain.allocation import Demand, DemandLine, plan_allocation


def demand(order_id, *lines):
    return Demand(order_id, tuple(DemandLine(order_id * 10 + i, sku, qty) for i, (sku, qty) in enumerate(lines)))


def test_five_units_for_seven_orders_allocates_exactly_five():
    demands = [demand(n, ("A", 1)) for n in range(1, 8)]
    plan = plan_allocation(demands, {("WH1", "A"): 5}, ["WH1"])
    assert sorted(plan.warehouse_of) == [1, 2, 3, 4, 5]
    assert sorted(plan.short) == [6, 7]
    assert plan.taken[("WH1", "A")] == 5


def test_an_order_ships_whole_from_the_first_warehouse_that_can_fill_it():
    plan = plan_allocation([demand(1, ("A", 1), ("B", 1))],
                           {("WH1", "A"): 5, ("WH1", "B"): 0, ("WH2", "A"): 1, ("WH2", "B"): 1},
                           ["WH1", "WH2"])
    assert plan.warehouse_of == {1: "WH2"}


def test_a_large_order_that_cannot_be_filled_does_not_block_a_smaller_later_one():
    plan = plan_allocation([demand(1, ("A", 3)), demand(2, ("A", 2))], {("WH1", "A"): 2}, ["WH1"])
    assert plan.warehouse_of == {2: "WH1"}
    assert plan.short[1][0].wanted == 3 and plan.short[1][0].available == 2


def test_two_lines_of_the_same_sku_are_summed():
    plan = plan_allocation([demand(1, ("A", 1), ("A", 1))], {("WH1", "A"): 1}, ["WH1"])
    assert 1 in plan.short and not plan.warehouse_of


def test_negative_availability_counts_as_none():
    plan = plan_allocation([demand(1, ("A", 1))], {("WH1", "A"): -3}, ["WH1"])
    assert plan.short[1][0].available == 0
