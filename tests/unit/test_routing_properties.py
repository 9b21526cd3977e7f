"""Properties of warehouse routing that hold for any stock, sites, capacities and orders.

Each check replays the plan order by order with its own bookkeeping, so the test does not
trust the router's account of what was left when.
"""

from collections import Counter
from decimal import Decimal
from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.domain.allocation import DemandLine
from oms.domain.geography import ZONES
from oms.domain.normalize import PROVINCES
from oms.domain.routing import (
    RANKING_RULES,
    OrderToRoute,
    RateCard,
    RoutingRules,
    RuleSpec,
    WarehouseSite,
    route_batch,
)

CODES = ("W1", "W2", "W3", "W4")
SKUS = ("A", "B", "C")
MERGE_KEYS = ("k1", "k2")
provinces = st.one_of(st.none(), st.sampled_from(PROVINCES))
prices = st.integers(1, 30).map(Decimal)


@st.composite
def rate_cards(draw):
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, unique=True))
    return RateCard(first_kg={zone: draw(prices) for zone in zones},
                    extra_kg={zone: draw(prices) for zone in zones})


@st.composite
def sites(draw):
    codes = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=len(CODES), unique=True))
    return [WarehouseSite(code=code, province=draw(provinces), priority=draw(st.integers(0, 3)),
                          daily_capacity=draw(st.none() | st.integers(0, 4)),
                          booked_today=draw(st.integers(0, 3)),
                          rate_card=draw(st.none() | rate_cards()))
            for code in codes]


@st.composite
def orders(draw):
    count = draw(st.integers(1, 8))
    batch = []
    for order_id in range(1, count + 1):
        lines = draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(0, 5)), min_size=1, max_size=3))
        batch.append(OrderToRoute(
            order_id=order_id,
            lines=tuple(DemandLine(order_id * 10 + i, sku, qty) for i, (sku, qty) in enumerate(lines)),
            province=draw(provinces),
            country=draw(st.sampled_from(("CN", "CN", "CN", "US"))),
            weight_grams=draw(st.integers(1, 4000)),
            merge_key=draw(st.none() | st.sampled_from(MERGE_KEYS)),
        ))
    return batch


@st.composite
def routing_rules(draw):
    # Any valid arrangement: capacity first, merge optional and anywhere among the
    # filters, then any ranking rules in any order.
    filters = draw(st.permutations(["whole_order", "merge"]))
    if draw(st.booleans()):
        filters.remove("merge")
    rankers = draw(st.permutations(list(RANKING_RULES)))[: draw(st.integers(0, len(RANKING_RULES)))]
    specs = [RuleSpec("capacity"), *(RuleSpec(name) for name in filters)]
    for name in rankers:
        if name == "nearest":
            specs.append(RuleSpec(name, tolerance_km=draw(st.sampled_from((0, 300, 1000)))))
        elif name == "cheapest":
            specs.append(RuleSpec(name, tolerance=Decimal(draw(st.sampled_from((0, 1, 5))))))
        else:
            specs.append(RuleSpec(name))
    return RoutingRules(rules=tuple(specs), allow_split=draw(st.booleans()),
                        max_parcels=draw(st.integers(1, 3)), merge_enabled=draw(st.booleans()))


scenarios = st.fixed_dictionaries({
    "orders": orders(),
    "available": st.dictionaries(st.tuples(st.sampled_from(CODES), st.sampled_from(SKUS)),
                                 st.integers(-2, 6)),
    "sites": sites(),
    "rules": routing_rules(),
    "open_parcels": st.dictionaries(st.sampled_from(MERGE_KEYS), st.sets(st.sampled_from(CODES))),
})

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wanted_of(order):
    wanted = Counter()
    for line in order.lines:
        if line.quantity > 0:
            wanted[line.sku] += line.quantity
    return wanted


def plan_of(scenario):
    return route_batch(scenario["orders"], scenario["available"], scenario["sites"], scenario["rules"],
                       scenario["open_parcels"])


def replay(scenario, plan):
    """Walk the decisions in batch order, yielding (order, decision, free stock, parcels
    booked so far) as they stood before the decision, then applying it."""
    codes = {site.code for site in scenario["sites"]}
    free = Counter({key: max(units, 0) for key, units in scenario["available"].items() if key[0] in codes})
    booked = Counter()
    for order in scenario["orders"]:
        decision = plan.decisions[order.order_id]
        yield order, decision, Counter(free), Counter(booked)
        for parcel in decision.parcels:
            for _line_id, sku, units in parcel.lines:
                free[(parcel.warehouse, sku)] -= units
            if not parcel.joins_open_parcel:
                booked[parcel.warehouse] += 1


def can_book(site, booked):
    return site.daily_capacity is None or site.booked_today + booked[site.code] < site.daily_capacity


def holds(group, wanted, free):
    return all(sum(free[(site.code, sku)] for site in group) >= units for sku, units in wanted.items())


@PROPERTY
@given(scenarios)
def test_no_warehouse_gives_more_of_a_sku_than_it_has_free(scenario):
    plan = plan_of(scenario)
    for (warehouse, sku), units in plan.taken.items():
        assert 0 <= units <= max(scenario["available"].get((warehouse, sku), 0), 0)


@PROPERTY
@given(scenarios)
def test_every_unit_of_a_routed_order_is_assigned_exactly_and_a_backordered_one_takes_nothing(scenario):
    plan = plan_of(scenario)
    assert set(plan.decisions) == {order.order_id for order in scenario["orders"]}
    for order in scenario["orders"]:
        decision = plan.decisions[order.order_id]
        assigned = Counter()
        for parcel in decision.parcels:
            for line_id, _sku, units in parcel.lines:
                assert units > 0
                assigned[line_id] += units
        if decision.backorder_reason is not None:
            assert decision.parcels == ()
        else:
            assert decision.parcels
            assert assigned == Counter({line.line_id: line.quantity for line in order.lines if line.quantity > 0})
        assert decision.explanation[-1].startswith("choice:")


@PROPERTY
@given(scenarios)
def test_what_the_plan_takes_is_the_sum_of_its_decisions(scenario):
    plan = plan_of(scenario)
    taken = Counter()
    for decision in plan.decisions.values():
        for parcel in decision.parcels:
            for _line_id, sku, units in parcel.lines:
                taken[(parcel.warehouse, sku)] += units
    assert +plan.taken == taken
    assert list(plan.reservations()) == [
        (order_id, line_id, parcel.warehouse, sku, units)
        for order_id, decision in plan.decisions.items()
        for parcel in decision.parcels for line_id, sku, units in parcel.lines]


@PROPERTY
@given(scenarios)
def test_no_warehouse_books_parcels_beyond_its_daily_capacity(scenario):
    plan = plan_of(scenario)
    new_parcels = Counter(parcel.warehouse for decision in plan.decisions.values()
                          for parcel in decision.parcels if not parcel.joins_open_parcel)
    assert +plan.parcels == new_parcels
    for site in scenario["sites"]:
        if site.daily_capacity is not None:
            assert plan.parcels[site.code] <= max(site.daily_capacity - site.booked_today, 0)


@PROPERTY
@given(scenarios)
def test_a_split_happens_only_when_no_single_warehouse_that_can_book_a_parcel_holds_the_whole_order(scenario):
    plan = plan_of(scenario)
    by_code = {site.code: site for site in scenario["sites"]}
    for order, decision, free, booked in replay(scenario, plan):
        wanted = wanted_of(order)
        bookable = [site for site in scenario["sites"] if can_book(site, booked)]
        one_will_do = bool(wanted) and any(holds([site], wanted, free) for site in bookable)
        warehouses = [parcel.warehouse for parcel in decision.parcels]
        assert len(set(warehouses)) == len(warehouses)
        assert all(by_code[code] in bookable for code in warehouses)
        if decision.split:
            assert not one_will_do
        if one_will_do:
            assert len(decision.parcels) == 1


@PROPERTY
@given(scenarios)
def test_a_split_uses_the_fewest_parcels_and_an_order_waits_only_when_no_allowed_split_exists(scenario):
    plan = plan_of(scenario)
    rules = scenario["rules"]
    for order, decision, free, booked in replay(scenario, plan):
        wanted = wanted_of(order)
        if not wanted:
            continue
        bookable = [site for site in scenario["sites"] if can_book(site, booked)]
        largest = rules.max_parcels if rules.allow_split else 1
        fewest = next((size for size in range(1, largest + 1)
                       if any(holds(group, wanted, free) for group in combinations(bookable, size))), None)
        if fewest is None:
            assert decision.backorder_reason is not None
        else:
            assert len(decision.parcels) == fewest


@PROPERTY
@given(scenarios.map(lambda s: {**s, "rules": RoutingRules(s["rules"].rules, allow_split=False)}))
def test_with_splits_forbidden_no_order_ships_in_more_than_one_parcel(scenario):
    plan = plan_of(scenario)
    assert all(len(decision.parcels) <= 1 for decision in plan.decisions.values())
