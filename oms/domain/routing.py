"""Warehouse routing: which warehouse ships which order of a batch, and why.

Orders are routed one after another in the order given (callers pass the oldest payment
first). Each decision takes from the plan's own copy of free stock and of today's parcel
capacity, so a later order sees what earlier ones took; nothing here reads a database or
a clock, and the stock layer applies the plan with guarded updates afterwards.

For each order the configured rules run in turn. The first three narrow the candidate
warehouses; the ranking rules after them keep the best and leave ties to the next rule:

    capacity     drop warehouses whose parcels for today are all booked
    merge        if the buyer already has an open parcel (same merge key) in a warehouse
                 that can ship the whole order, keep only those: the order rides along
                 in that parcel and books no new one
    whole_order  keep warehouses that can ship every line in full
    nearest      keep the nearest to the receiver's province, within `tolerance_km`
    cheapest     keep the cheapest by rate card for the parcel's zone and weight, within
                 `tolerance` (yuan)
    priority     keep the lowest priority number

Whatever is still tied after the rules goes to the lowest priority number, then the code.
`capacity` and `whole_order` are always present and the ranking rules come after the
filters: ranking first could pick a warehouse that lacks a line and force a needless
split. So a split happens only when no single warehouse that can still book a parcel
holds the whole order; it then uses the fewest parcels (at most `max_parcels`) from the
candidates in the order the ranking rules give, each parcel booking capacity. When that
is impossible, or splitting is switched off, the order is backordered: it takes nothing
(so it never blocks a later, smaller order that fits), and its reason says which SKU
lacks how many units, or that every warehouse with stock is at capacity.

Price zones (local, near, far, remote, abroad) are defined in `oms.domain.geography`:
local is the same province; remote is Xinjiang, Tibet, Qinghai, Inner Mongolia, Ningxia,
Gansu and Hainan; near is a capital within 600 km; far is the rest of the mainland;
abroad is outside China or across the Hong Kong, Macao or Taiwan border. A receiver whose
province is masked or unknown has neither a distance nor a zone, so `nearest` and
`cheapest` say they cannot discriminate and keep every candidate; a receiver abroad has
the zone "abroad" but no distance.

Every rule writes one sentence into the decision's explanation, then a last sentence
gives the choice, so an operator can read why an order went where it went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import combinations
from math import comb

from oms.domain.allocation import DemandLine, units_by_sku
from oms.domain.errors import ShortLine
from oms.domain.geography import (
    CAPITALS,
    ZONES,
    DistanceOverrides,
    is_domestic,
    parcel_zone,
    province_distance_km,
)
from oms.domain.normalize import normalize_province

CAPACITY = "capacity"
MERGE = "merge"
WHOLE_ORDER = "whole_order"
NEAREST = "nearest"
CHEAPEST = "cheapest"
PRIORITY = "priority"
FILTER_RULES = (CAPACITY, MERGE, WHOLE_ORDER)
RANKING_RULES = (NEAREST, CHEAPEST, PRIORITY)
RULE_NAMES = FILTER_RULES + RANKING_RULES

# Above this many warehouse combinations for one parcel count, the split search stops
# trying every combination and picks greedily; sellers rarely have more than a handful
# of warehouses, so the exact search is the normal case.
SPLIT_SEARCH_BUDGET = 5000

_JOIN_PHRASE = "the open parcel of the same buyer and address"


# ---------------------------------------------------------------------------
# the inputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RateCard:
    """What one warehouse pays its carrier for a parcel, by zone (yuan)."""

    first_kg: dict[str, Decimal]  # zone -> price of the first kg
    extra_kg: dict[str, Decimal]  # zone -> price per further started kg

    def __post_init__(self) -> None:
        if set(self.first_kg) != set(self.extra_kg):
            raise ValueError("a rate card needs a first_kg and an extra_kg price for every zone")

    def covers(self, zone: str | None) -> bool:
        return zone in self.first_kg

    def price(self, zone: str, weight_grams: int) -> Decimal:
        if zone not in self.first_kg:
            raise KeyError(f"the rate card has no price for zone {zone!r}")
        started_kg = max(1, -(-weight_grams // 1000))
        return self.first_kg[zone] + self.extra_kg[zone] * (started_kg - 1)

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "routing rules",
                     key: str = "rate_card") -> RateCard:
        """Read {first_kg: {zone: price}, extra_kg: {zone: price}}; ValueError names the key."""
        if not isinstance(data, Mapping):
            raise _bad(source, key, "must be a mapping with first_kg and extra_kg")
        _refuse_unknown(data, {"first_kg", "extra_kg"}, source, key)
        prices = {}
        for part in ("first_kg", "extra_kg"):
            table = data.get(part)
            if not isinstance(table, Mapping) or not table:
                raise _bad(source, f"{key}.{part}", f"must map zones ({', '.join(ZONES)}) to prices")
            for zone in table:
                if zone not in ZONES:
                    raise _bad(source, f"{key}.{part}.{zone}",
                               f"is not a zone; the zones are {', '.join(ZONES)}")
            prices[part] = {zone: _money(value, source, f"{key}.{part}.{zone}")
                            for zone, value in table.items()}
        for zone in set(prices["first_kg"]) ^ set(prices["extra_kg"]):
            missing = "extra_kg" if zone in prices["first_kg"] else "first_kg"
            raise _bad(source, f"{key}.{missing}.{zone}", "is missing: every zone needs both prices")
        return cls(first_kg=prices["first_kg"], extra_kg=prices["extra_kg"])


@dataclass(frozen=True)
class WarehouseSite:
    code: str
    province: str | None  # canonical province name, or None
    priority: int  # lower is tried first
    daily_capacity: int | None  # parcels per day; None = unlimited
    booked_today: int = 0  # parcels already booked today
    rate_card: RateCard | None = None


@dataclass(frozen=True)
class OrderToRoute:
    order_id: int
    lines: tuple[DemandLine, ...]
    province: str | None  # receiver's canonical province (None when unknown/masked)
    country: str = "CN"
    weight_grams: int = 500
    merge_key: str | None = None  # orders with the same key may share a parcel


# ---------------------------------------------------------------------------
# the outputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelPick:
    """One parcel of a decision; a line may be split across parcels."""

    warehouse: str
    lines: tuple[tuple[int, str, int], ...]  # (line_id, sku, quantity)
    # True when the order rides in a parcel already open for its merge key: no new
    # parcel is booked, so it uses none of the warehouse's capacity.
    joins_open_parcel: bool = False


@dataclass
class RoutingDecision:
    order_id: int
    parcels: tuple[ParcelPick, ...]  # empty when backordered
    explanation: list[str]  # one sentence per rule applied, then the choice
    backorder_reason: str | None = None
    short: list[ShortLine] = field(default_factory=list)

    @property
    def split(self) -> bool:
        return len(self.parcels) > 1


@dataclass
class RoutingPlan:
    decisions: dict[int, RoutingDecision]
    taken: Counter  # (warehouse, sku) -> units reserved by this plan
    parcels: Counter  # warehouse -> parcels booked by this plan (capacity use)

    def reservations(self) -> Iterator[tuple[int, int, str, str, int]]:
        """(order_id, line_id, warehouse, sku, quantity) for every unit this plan takes."""
        for order_id, decision in self.decisions.items():
            for parcel in decision.parcels:
                for line_id, sku, quantity in parcel.lines:
                    yield order_id, line_id, parcel.warehouse, sku, quantity


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    name: str
    tolerance_km: int = 0  # nearest: warehouses this much farther than the nearest still tie
    tolerance: Decimal = Decimal(0)  # cheapest: this much dearer than the cheapest still ties

    def __post_init__(self) -> None:
        if self.name not in RULE_NAMES:
            raise ValueError(f"unknown rule {self.name!r}; the rules are {', '.join(RULE_NAMES)}")
        if self.tolerance_km < 0 or self.tolerance < 0:
            raise ValueError(f"{self.name}: a tolerance cannot be negative")


@dataclass(frozen=True)
class RoutingRules:
    rules: tuple[RuleSpec, ...]  # in order
    allow_split: bool = True
    max_parcels: int = 3
    merge_enabled: bool = True
    # How long a parcel stays open for later orders of the same buyer and address. The
    # merge key already groups orders of one window; callers use this to decide which
    # unshipped parcels to pass as `open_parcels`.
    merge_window_hours: int = 72
    distance_overrides: DistanceOverrides = field(default_factory=dict)  # (province, province) -> km

    def __post_init__(self) -> None:
        problem = _rule_order_problem([spec.name for spec in self.rules])
        if problem:
            raise ValueError(f"rules: {problem}")
        if self.max_parcels < 1:
            raise ValueError("max_parcels: must be at least 1")

    @property
    def filters(self) -> tuple[RuleSpec, ...]:
        return tuple(spec for spec in self.rules if spec.name in FILTER_RULES)

    @property
    def rankers(self) -> tuple[RuleSpec, ...]:
        return tuple(spec for spec in self.rules if spec.name in RANKING_RULES)

    @property
    def may_split(self) -> bool:
        return self.allow_split and self.max_parcels > 1

    @classmethod
    def default(cls) -> RoutingRules:
        """The rules of config/routing.yaml, for when no file is given."""
        return cls(rules=(
            RuleSpec(CAPACITY), RuleSpec(MERGE), RuleSpec(WHOLE_ORDER),
            RuleSpec(NEAREST, tolerance_km=300), RuleSpec(CHEAPEST, tolerance=Decimal("0.50")),
            RuleSpec(PRIORITY),
        ))

    @classmethod
    def from_mapping(cls, data: dict, *, source: str = "routing rules") -> RoutingRules:
        """Read the routing part of config/routing.yaml; ValueError names the key and source.

        The `warehouses` section is read by `oms.routing_rules`, so it is passed over here.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: must be a mapping of routing settings")
        _refuse_unknown(data, {*_SETTING_KEYS, "warehouses"}, source, "")
        defaults = cls.default()
        rules = (_parse_rules(data["rules"], source) if "rules" in data else defaults.rules)
        allow_split = _flag(data, "allow_split", defaults.allow_split, source)
        max_parcels = _whole_number(data, "max_parcels", defaults.max_parcels, source, minimum=1)
        merge_enabled = _flag(data, "merge_enabled", defaults.merge_enabled, source)
        merge_window_hours = _whole_number(data, "merge_window_hours", defaults.merge_window_hours,
                                           source, minimum=1)
        distance_overrides = _parse_overrides(data.get("distance_overrides"), source)
        try:
            return cls(rules=rules, allow_split=allow_split, max_parcels=max_parcels,
                       merge_enabled=merge_enabled, merge_window_hours=merge_window_hours,
                       distance_overrides=distance_overrides)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None


_SETTING_KEYS = ("rules", "allow_split", "max_parcels", "merge_enabled", "merge_window_hours",
                 "distance_overrides")
_RULE_OPTIONS = {NEAREST: {"tolerance_km"}, CHEAPEST: {"tolerance"}}


def _rule_order_problem(names: list[str]) -> str | None:
    for name in names:
        if name not in RULE_NAMES:
            return f"unknown rule {name!r}; the rules are {', '.join(RULE_NAMES)}"
    for name in set(names):
        if names.count(name) > 1:
            return f"{name} is listed twice"
    for required in (CAPACITY, WHOLE_ORDER):
        if required not in names:
            return f"{required} is required: without it a plan could overbook or split needlessly"
    if names[0] != CAPACITY:
        return "capacity must come first, so no rule considers a warehouse that cannot ship today"
    last_filter = max(i for i, name in enumerate(names) if name in FILTER_RULES)
    first_ranker = min((i for i, name in enumerate(names) if name in RANKING_RULES), default=len(names))
    if first_ranker < last_filter:
        return (f"{names[first_ranker]} must come after {names[last_filter]}: ranking first could "
                "pick a warehouse that lacks a line")
    return None


def _parse_rules(entries: object, source: str) -> tuple[RuleSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise _bad(source, "rules", f"must be a list of rule names ({', '.join(RULE_NAMES)})")
    return tuple(_parse_rule(entry, f"rules[{index}]", source) for index, entry in enumerate(entries))


def _parse_rule(entry: object, key: str, source: str) -> RuleSpec:
    # A rule is its bare name, or a one-key mapping from its name to its options.
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        name, options = next(iter(entry.items()))
        options = options or {}
    else:
        raise _bad(source, key, "must be a rule name or {name: {option: value}}")
    if name not in RULE_NAMES:
        raise _bad(source, key, f"unknown rule {name!r}; the rules are {', '.join(RULE_NAMES)}")
    if not isinstance(options, Mapping):
        raise _bad(source, f"{key}.{name}", "options must be a mapping")
    _refuse_unknown(options, _RULE_OPTIONS.get(name, set()), source, f"{key}.{name}")
    spec = RuleSpec(name)
    if "tolerance_km" in options:
        spec = RuleSpec(name, tolerance_km=_whole_number(
            options, "tolerance_km", 0, source, minimum=0, prefix=f"{key}.{name}."))
    if "tolerance" in options:
        spec = RuleSpec(name, tolerance=_money(options["tolerance"], source, f"{key}.{name}.tolerance"))
    return spec


def _parse_overrides(entries: object, source: str) -> dict[tuple[str, str], int]:
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise _bad(source, "distance_overrides", "must be a list of {between: [province, province], km: n}")
    overrides: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        key = f"distance_overrides[{index}]"
        if not isinstance(entry, Mapping):
            raise _bad(source, key, "must be {between: [province, province], km: n}")
        _refuse_unknown(entry, {"between", "km"}, source, key)
        between = entry.get("between")
        if not isinstance(between, list) or len(between) != 2:
            raise _bad(source, f"{key}.between", "must name two provinces")
        pair = tuple(_province(name, source, f"{key}.between") for name in between)
        overrides[pair] = _whole_number(entry, "km", None, source, minimum=0, prefix=f"{key}.")
    return overrides


def _province(name: object, source: str, key: str) -> str:
    found = normalize_province(name).name if isinstance(name, str) else None
    if found is None:
        raise _bad(source, key, f"{name!r} is not a province")
    return found


def _flag(data: Mapping, key: str, default: bool, source: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _bad(source, key, f"must be true or false, got {value!r}")
    return value


def _whole_number(data: Mapping, key: str, default: int | None, source: str, *,
                  minimum: int, prefix: str = "") -> int:
    value = data.get(key, default)
    # bool is an int to Python, but `max_parcels: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(source, prefix + key, f"must be a whole number of at least {minimum}, got {value!r}")
    return value


def _money(value: object, source: str, key: str) -> Decimal:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InvalidOperation
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(source, key, f"must be an amount of money such as 12.50, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise _bad(source, key, f"must be an amount of money of at least 0, got {value!r}")
    return amount


def _refuse_unknown(data: Mapping, known: set[str] | tuple, source: str, key: str) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            allowed = ", ".join(sorted(known)) or "none"
            raise _bad(source, where, f"is not a setting here (allowed: {allowed})")


def _bad(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")


# ---------------------------------------------------------------------------
# routing a batch
# ---------------------------------------------------------------------------


def route_batch(
    orders: list[OrderToRoute],
    available: dict[tuple[str, str], int],
    sites: list[WarehouseSite],
    rules: RoutingRules,
    open_parcels: dict[str, set[str]] | None = None,
) -> RoutingPlan:
    """Route every order in the order given; `available[(warehouse, sku)]` is on hand minus
    reserved minus safety stock, and `open_parcels` maps a merge key to the warehouses
    holding an unshipped parcel for it (neither argument is changed)."""
    batch = _Batch.start(available, sites, rules, open_parcels)
    decisions: dict[int, RoutingDecision] = {}
    for order in orders:
        if order.order_id in decisions:
            raise ValueError(f"order {order.order_id} appears twice in the batch")
        decision = _route_order(order, batch)
        batch.commit(order, decision)
        decisions[order.order_id] = decision
    return RoutingPlan(decisions=decisions, taken=batch.taken, parcels=batch.booked)


@dataclass
class _Batch:
    """The plan's own copy of stock, capacity and open parcels, consumed order by order."""

    sites: tuple[WarehouseSite, ...]  # in tie-break order, so sentences list them stably
    rules: RoutingRules
    left: Counter  # (warehouse, sku) -> units still free
    open_parcels: dict[str, set[str]]
    booked: Counter = field(default_factory=Counter)  # warehouse -> parcels this plan booked
    taken: Counter = field(default_factory=Counter)

    @classmethod
    def start(cls, available, sites, rules, open_parcels) -> _Batch:
        codes = [site.code for site in sites]
        for code in set(codes):
            if codes.count(code) > 1:
                raise ValueError(f"warehouse {code} is listed twice")
        left = Counter({key: units for key, units in available.items()
                        if key[0] in codes and units > 0})
        return cls(sites=tuple(sorted(sites, key=_tie_break)), rules=rules, left=left,
                   open_parcels={key: set(held) for key, held in (open_parcels or {}).items()})

    def parcels_used(self, site: WarehouseSite) -> int:
        return site.booked_today + self.booked[site.code]

    def is_full(self, site: WarehouseSite) -> bool:
        return site.daily_capacity is not None and self.parcels_used(site) >= site.daily_capacity

    def shortfall(self, code: str, wanted: Counter) -> dict[str, int]:
        """SKU -> units this warehouse lacks for the order; empty when it has them all."""
        return {sku: units - self.left[(code, sku)] for sku, units in sorted(wanted.items())
                if self.left[(code, sku)] < units}

    def holds_any(self, code: str, wanted: Counter) -> bool:
        return any(self.left[(code, sku)] > 0 for sku in wanted)

    def commit(self, order: OrderToRoute, decision: RoutingDecision) -> None:
        for parcel in decision.parcels:
            for _line_id, sku, units in parcel.lines:
                self.left[(parcel.warehouse, sku)] -= units
                self.taken[(parcel.warehouse, sku)] += units
            if not parcel.joins_open_parcel:
                self.booked[parcel.warehouse] += 1
            if order.merge_key is not None:
                self.open_parcels.setdefault(order.merge_key, set()).add(parcel.warehouse)


@dataclass
class _Step:
    kept: list[WarehouseSite]
    sentence: str
    joins: bool = False  # merge found an open parcel the order can ride in


def _route_order(order: OrderToRoute, batch: _Batch) -> RoutingDecision:
    wanted = units_by_sku(order.lines)
    if not wanted:
        return _backorder(order, [], "The order has no line with units to ship.", [])
    explanation: list[str] = []
    candidates = list(batch.sites)
    joins = False
    ships_whole = True
    for spec in batch.rules.filters:
        step = _FILTERS[spec.name](order, wanted, candidates, batch)
        explanation.append(step.sentence)
        if spec.name == CAPACITY and not step.kept:
            return _backorder(order, explanation, *_nowhere_to_ship(wanted, candidates, batch))
        if spec.name == WHOLE_ORDER and not step.kept:
            ships_whole = False  # the candidates stay, for a split
            continue
        joins = joins or step.joins
        candidates = step.kept
    if ships_whole:
        return _ship_whole(order, candidates, explanation, joins, batch)
    if not batch.rules.may_split:
        return _backorder(order, explanation, *_unsplittable(wanted, candidates, batch))
    return _ship_split(order, wanted, candidates, explanation, batch)


def _ship_whole(order, candidates, explanation, joins, batch) -> RoutingDecision:
    for spec in batch.rules.rankers:
        step = _narrow(spec, order, candidates, batch)
        explanation.append(step.sentence)
        candidates = step.kept
    chosen = min(candidates, key=_tie_break)
    how = (f"in {_JOIN_PHRASE}; no new parcel is booked" if joins else "in one parcel")
    if len(candidates) > 1:
        explanation.append(f"choice: {_names(candidates)} are still tied; the lowest priority number, "
                           f"then the code, picks {chosen.code}, which ships the whole order {how}.")
    else:
        explanation.append(f"choice: {chosen.code} ships the whole order {how}.")
    lines = tuple((line.line_id, line.sku, line.quantity) for line in order.lines if line.quantity > 0)
    parcel = ParcelPick(chosen.code, lines, joins_open_parcel=joins)
    return RoutingDecision(order.order_id, (parcel,), explanation)


def _ship_split(order, wanted, candidates, explanation, batch) -> RoutingDecision:
    # Not enough in all candidates together: no split can help, and ranking is moot.
    short = _short_lines(wanted, candidates, batch, any_one_warehouse=False)
    if short:
        reason = (f"Not enough stock: {_short_text(short, 'free across the warehouses that can ship today')}."
                  + _full_but_stocked(short, batch))
        return _backorder(order, explanation, reason, short)
    rankers = batch.rules.rankers
    explanation.extend(_ranking_sentence(spec, order, candidates, batch) for spec in rankers)
    ranked = _rank(order, candidates, rankers, batch)
    chosen, exact = _fewest_parcels(wanted, ranked, batch)
    if chosen is None:
        parcels = "parcel" if batch.rules.max_parcels == 1 else "parcels"
        reason = (f"The order would need more than {batch.rules.max_parcels} {parcels} from the "
                  "warehouses that hold its stock.")
        return _backorder(order, explanation, reason, [])
    picks = _fill(order, chosen, batch)
    fewest = "the fewest that can ship it" if exact else "as few as a quick search found"
    contents = "; ".join(f"{pick.warehouse} ships "
                         + _and([f"{quantity} × {sku}" for _line, sku, quantity in pick.lines])
                         for pick in picks)
    explanation.append(f"choice: splits into {len(picks)} parcels, {fewest}: {contents}.")
    return RoutingDecision(order.order_id, tuple(picks), explanation)


def _backorder(order, explanation, reason, short) -> RoutingDecision:
    explanation = [*explanation, f"choice: backordered. {reason}"]
    return RoutingDecision(order.order_id, (), explanation, backorder_reason=reason, short=short)


def _tie_break(site: WarehouseSite) -> tuple[int, str]:
    return site.priority, site.code


# ---------------------------------------------------------------------------
# the filters
# ---------------------------------------------------------------------------


def _capacity(order, wanted, candidates, batch) -> _Step:
    if not candidates:
        return _Step([], "capacity: no warehouse is set up for routing.")
    full = [site for site in candidates if batch.is_full(site)]
    kept = [site for site in candidates if site not in full]
    if not full:
        return _Step(kept, f"capacity: {_names(kept)} can still book a parcel today.")
    if kept:
        return _Step(kept, f"capacity: drops {_capacity_text(full, batch)}, at today's parcel "
                           f"capacity; keeps {_names(kept)}.")
    return _Step([], f"capacity: every warehouse is at today's parcel capacity: "
                     f"{_capacity_text(full, batch)}.")


def _merge(order, wanted, candidates, batch) -> _Step:
    if not batch.rules.merge_enabled:
        return _Step(candidates, "merge: merging parcels is switched off.")
    if order.merge_key is None:
        return _Step(candidates, "merge: the order has no merge key (buyer or address unknown), "
                                 "so it cannot join a parcel.")
    holding = sorted(batch.open_parcels.get(order.merge_key, ()))
    if not holding:
        return _Step(candidates, "merge: there is no open parcel of the same buyer and address to join.")
    joinable = [site for site in candidates
                if site.code in holding and not batch.shortfall(site.code, wanted)]
    if joinable:
        return _Step(joinable, f"merge: joins {_JOIN_PHRASE} in {_names(joinable, 'or')}.", joins=True)
    codes = {site.code for site in candidates}
    why = [f"{code} is not a candidate" if code not in codes
           else f"{code} is {_lacks(batch.shortfall(code, wanted))}" for code in holding]
    return _Step(candidates, f"merge: {_JOIN_PHRASE} cannot take the whole order "
                             f"({'; '.join(why)}), so there is nothing to join.")


def _whole_order(order, wanted, candidates, batch) -> _Step:
    lacking = {site.code: batch.shortfall(site.code, wanted) for site in candidates}
    kept = [site for site in candidates if not lacking[site.code]]
    short = [site for site in candidates if lacking[site.code]]
    if kept and not short:
        each = " each" if len(kept) > 1 else ""
        return _Step(kept, f"whole_order: {_names(kept)} can{each} ship every line.")
    if kept:
        dropped = _and([f"{site.code} ({_lacks(lacking[site.code])})" for site in short])
        return _Step(kept, f"whole_order: only {_names(kept)} can ship every line; drops {dropped}.")
    if batch.rules.may_split:
        then = f"it may be split into up to {batch.rules.max_parcels} parcels"
    else:
        then = "splitting is switched off"
    why = "; ".join(f"{site.code} is {_lacks(lacking[site.code])}" for site in short)
    return _Step([], f"whole_order: no warehouse can ship every line ({why}); {then}.")


_FILTERS = {CAPACITY: _capacity, MERGE: _merge, WHOLE_ORDER: _whole_order}


# ---------------------------------------------------------------------------
# the ranking rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    value: Decimal | int  # lower is better
    label: str  # how a sentence shows it


class _Nearest:
    unknown_label = "distance unknown"

    def blind(self, order: OrderToRoute) -> str | None:
        if not is_domestic(order.country):
            return f"the receiver is abroad ({order.country}) and has no distance"
        return _unknown_province(order)

    def measure(self, site, order, batch) -> _Measure | None:
        km = province_distance_km(site.province, order.province, batch.rules.distance_overrides)
        return None if km is None else _Measure(km, f"{km:,} km")

    def tolerance(self, spec: RuleSpec) -> int:
        return spec.tolerance_km

    def best_phrase(self, order) -> str:
        return f"nearest to {order.province}"

    def beyond(self, spec) -> str:
        return f"more than {spec.tolerance_km:,} km farther than the nearest"

    def nothing_known(self, order) -> str:
        return f"no warehouse's distance to {order.province} is known"


class _Cheapest:
    unknown_label = "no price"

    def blind(self, order: OrderToRoute) -> str | None:
        return None if not is_domestic(order.country) else _unknown_province(order)

    def measure(self, site, order, batch) -> _Measure | None:
        zone = parcel_zone(site.province, order.province, order.country, batch.rules.distance_overrides)
        if site.rate_card is None or not site.rate_card.covers(zone):
            return None
        price = site.rate_card.price(zone, order.weight_grams)
        return _Measure(price, f"¥{price:.2f}, {zone}")

    def tolerance(self, spec: RuleSpec) -> Decimal:
        return spec.tolerance

    def best_phrase(self, order) -> str:
        return f"cheapest for a {order.weight_grams / 1000:g} kg parcel"

    def beyond(self, spec) -> str:
        return f"more than ¥{spec.tolerance:.2f} dearer than the cheapest"

    def nothing_known(self, order) -> str:
        return "no warehouse's rate card prices this parcel"


class _Priority:
    unknown_label = ""

    def blind(self, order) -> None:
        return None

    def measure(self, site, order, batch) -> _Measure:
        return _Measure(site.priority, f"priority {site.priority}")

    def tolerance(self, spec) -> int:
        return 0

    def best_phrase(self, order) -> str:
        return "first by priority"

    def beyond(self, spec) -> str:
        return ""

    def nothing_known(self, order) -> str:
        return ""


_RANKERS = {NEAREST: _Nearest(), CHEAPEST: _Cheapest(), PRIORITY: _Priority()}


def _unknown_province(order: OrderToRoute) -> str | None:
    if order.province is None:
        return "the receiver's province is unknown or masked"
    if order.province not in CAPITALS:
        return f"the receiver's province {order.province!r} is not one the distance table knows"
    return None


def _narrow(spec: RuleSpec, order, candidates, batch) -> _Step:
    """Keep the best candidates by one ranking rule, and ties within its tolerance."""
    ranker = _RANKERS[spec.name]
    if len(candidates) == 1:
        return _Step(candidates, f"{spec.name}: only {candidates[0].code} is left; nothing to compare.")
    blind = ranker.blind(order)
    if blind:
        return _Step(candidates, f"{spec.name}: {blind}, so it cannot tell the warehouses apart; "
                                 f"keeps {_names(candidates)}.")
    measures = {site.code: ranker.measure(site, order, batch) for site in candidates}
    known = [site for site in candidates if measures[site.code] is not None]
    if not known:
        return _Step(candidates, f"{spec.name}: {ranker.nothing_known(order)}; keeps {_names(candidates)}.")
    tolerance = ranker.tolerance(spec)
    limit = min(measures[site.code].value for site in known) + tolerance
    kept = [site for site in known if measures[site.code].value <= limit]
    labelled = _and([f"{site.code} ({measures[site.code].label})" for site in kept])
    if len(kept) == 1:
        sentence = f"{spec.name}: {labelled} is {ranker.best_phrase(order)}"
    elif tolerance:
        sentence = f"{spec.name}: {labelled} count as {ranker.best_phrase(order)}"
    else:
        sentence = f"{spec.name}: {labelled} tie as {ranker.best_phrase(order)}"
    farther = [site for site in known if site not in kept]
    unknown = [site for site in candidates if measures[site.code] is None]
    drops = [f"{site.code} ({measures[site.code].label})" for site in farther]
    drops += [f"{site.code} ({ranker.unknown_label})" for site in unknown]
    if drops:
        beyond = f", {ranker.beyond(spec)}" if tolerance and farther else ""
        sentence += f"; drops {_and(drops)}{beyond}"
    return _Step(kept, sentence + ".")


def _ranking_sentence(spec: RuleSpec, order, candidates, batch) -> str:
    """How one ranking rule orders the candidates of a split, best first."""
    ranker = _RANKERS[spec.name]
    blind = ranker.blind(order)
    if blind:
        return f"{spec.name}: {blind}, so it cannot order the warehouses for the split."
    measures = {site.code: ranker.measure(site, order, batch) for site in candidates}
    in_order = sorted(candidates, key=lambda site: (measures[site.code] is None,
                                                     measures[site.code].value if measures[site.code] else 0,
                                                     _tie_break(site)))
    labels = [f"{site.code} ({measures[site.code].label if measures[site.code] else ranker.unknown_label})"
              for site in in_order]
    return f"{spec.name}: orders the warehouses for the split as {', '.join(labels)}."


def _rank(order, candidates, rankers, batch) -> list[WarehouseSite]:
    """Candidates best first: the winner of the rules, then the winner of the rest, and so on."""
    remaining = list(candidates)
    ranked = []
    while remaining:
        best = remaining
        for spec in rankers:
            best = _narrow(spec, order, best, batch).kept
        winner = min(best, key=_tie_break)
        ranked.append(winner)
        remaining.remove(winner)
    return ranked


# ---------------------------------------------------------------------------
# splits and backorders
# ---------------------------------------------------------------------------


def _fewest_parcels(wanted: Counter, ranked: list[WarehouseSite],
                    batch: _Batch) -> tuple[list[WarehouseSite] | None, bool]:
    """The best-ranked smallest set of warehouses that together hold the order, and whether
    the search was exhaustive; (None, …) when more than max_parcels would be needed."""
    useful = [site for site in ranked if batch.holds_any(site.code, wanted)]

    def covers(group) -> bool:
        return all(sum(batch.left[(site.code, sku)] for site in group) >= units
                   for sku, units in wanted.items())

    for size in range(2, batch.rules.max_parcels + 1):
        if comb(len(useful), size) > SPLIT_SEARCH_BUDGET:
            return _greedy_cover(wanted, useful, batch), False
        # combinations() yields groups in the ranked order, so the first that covers is
        # the best-ranked among the smallest.
        for group in combinations(useful, size):
            if covers(group):
                return list(group), True
    return None, True


def _greedy_cover(wanted: Counter, useful: list[WarehouseSite], batch: _Batch) -> list[WarehouseSite] | None:
    # Many warehouses: take, again and again, the one that supplies the most of what is
    # still missing (the better ranked on a tie), as long as parcels remain.
    missing = Counter(wanted)
    group: list[WarehouseSite] = []
    while +missing and len(group) < batch.rules.max_parcels:
        def supplies(site):
            return sum(min(units, batch.left[(site.code, sku)]) for sku, units in missing.items())
        best = max((site for site in useful if site not in group), key=supplies, default=None)
        if best is None or supplies(best) == 0:
            return None
        group.append(best)
        for sku in list(missing):
            missing[sku] -= min(missing[sku], batch.left[(best.code, sku)])
    if +missing:
        return None
    return sorted(group, key=useful.index)


def _fill(order: OrderToRoute, group: list[WarehouseSite], batch: _Batch) -> list[ParcelPick]:
    """Lines shared out over the group: each warehouse, best first, gives what it has."""
    still_free = Counter({(site.code, sku): batch.left[(site.code, sku)]
                          for site in group for sku in {line.sku for line in order.lines}})
    still_wanted = [line.quantity for line in order.lines]
    picks = []
    for site in group:
        lines = []
        for index, line in enumerate(order.lines):
            units = min(max(still_wanted[index], 0), still_free[(site.code, line.sku)])
            if units > 0:
                lines.append((line.line_id, line.sku, units))
                still_wanted[index] -= units
                still_free[(site.code, line.sku)] -= units
        if lines:  # a warehouse with nothing left to give books no parcel
            picks.append(ParcelPick(site.code, tuple(lines)))
    return picks


def _nowhere_to_ship(wanted, all_sites, batch) -> tuple[str, list[ShortLine]]:
    """Why nothing passed the capacity rule: full warehouses with stock, or no stock at all."""
    if not all_sites:
        return "No warehouse is set up for routing.", _short_lines(wanted, [], batch, any_one_warehouse=True)
    stocked = [site for site in all_sites if batch.holds_any(site.code, wanted)]
    if stocked:
        return ("Every warehouse with stock for it is at today's parcel capacity: "
                f"{_capacity_text(stocked, batch)}."), []
    short = _short_lines(wanted, all_sites, batch, any_one_warehouse=True)
    return f"Not enough stock: {_short_text(short, 'free in any warehouse')}.", short


def _unsplittable(wanted, candidates, batch) -> tuple[str, list[ShortLine]]:
    short = _short_lines(wanted, candidates, batch, any_one_warehouse=True)
    opening = "No single warehouse can ship the whole order and splitting is switched off"
    if short:
        return (f"{opening}: {_short_text(short, 'free in any one warehouse')}."
                + _full_but_stocked(short, batch)), short
    lacking = [f"{site.code} is {_lacks(batch.shortfall(site.code, wanted))}" for site in candidates]
    return f"{opening}: {'; '.join(lacking)}.", []


def _full_but_stocked(short: list[ShortLine], batch: _Batch) -> str:
    """A note on warehouses that hold a missing SKU but can book no parcel today, so the
    operator sees that capacity, not stock, is part of the reason."""
    full = [site for site in batch.sites if batch.is_full(site)
            and any(batch.left[(site.code, line.sku)] > 0 for line in short)]
    if not full:
        return ""
    verb = "holds" if len(full) == 1 else "hold"
    return f" {_capacity_text(full, batch)} {verb} more of it but can book no parcel today."


def _short_lines(wanted, sites, batch, *, any_one_warehouse: bool) -> list[ShortLine]:
    """SKUs the order cannot get enough of: measured against the best single warehouse when
    the order must ship whole, against all of them together when it may be split."""
    short = []
    for sku, units in sorted(wanted.items()):
        free = [batch.left[(site.code, sku)] for site in sites]
        best = (max(free, default=0) if any_one_warehouse else sum(free))
        if best < units:
            short.append(ShortLine(sku=sku, wanted=units, available=best))
    return short


# ---------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------


def _and(items: list[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _names(sites: list[WarehouseSite], word: str = "and") -> str:
    return _and([site.code for site in sites], word)


def _lacks(shortfall: dict[str, int]) -> str:
    return "short of " + _and([f"{sku} by {units}" for sku, units in shortfall.items()])


def _capacity_text(sites: list[WarehouseSite], batch: _Batch) -> str:
    return _and([f"{site.code} ({batch.parcels_used(site)} of {site.daily_capacity} parcels booked)"
                 for site in sites])


def _short_text(short: list[ShortLine], where: str) -> str:
    return "; ".join(f"{line.sku} is {_units(line.wanted - line.available)} short "
                     f"({line.wanted} wanted, {line.available} {where})" for line in short)


def _units(count: int) -> str:
    return f"{count} unit" if count == 1 else f"{count} units"
