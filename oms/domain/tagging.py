"""Order tags for picking priority, and risk holds that stop an order until a person looks.

Both come from one rules file (config/tagging.yaml, read by `oms.tagging_rules`), parsed
here by `TaggingRules.from_mapping`; a key this module does not know is a ValueError that
names it, so a typo never switches a rule off quietly. Nothing here reads a database or a
clock: the caller gathers an order's facts (`OrderFacts`) and what the database knows
around it (`OrderContext`), passes `now`, and `evaluate` answers with a `Verdict`.

Tags (each rule can be left out to switch it off):

    channel:<platform>     the marketplace the order came from
    amount:<band>          the order total's band, by lower edges per currency
    region:<name>          the receiver's province's region, or the abroad tag
    remote_area            a province carriers surcharge, or a remote postcode abroad
    urgent                 the platform's ship-by is at most N hours away (or past)
    repeat_customer        at least N earlier orders of the same customer in M days
    high_value_customer    the customer spent at least X (per currency) in M days

The picking priority is the smallest number the `priorities` table gives any of the
order's tags, else `default_priority`: the warehouse picks lower numbers first. It is
stored as one more tag, `priority:<n>`, which every evaluated order gets, so it also
marks an order as tagged.

Holds (each names its rule; its detail is written for an operator and carries no full
phone number and no address text, so it may go into artifacts and alerts):

    invalid_phone      the receiver phone is not a number a carrier can call
    vague_address      no address, only the city or district, too short, no street
                       number or building, or words such as "see note" instead
    buyer_velocity     more than N orders of one customer within W minutes of this one
    address_velocity   more than N orders to one address within W minutes of this one
    unusual_amount     the total is more than K robust deviations from the shop's median
                       (median and MAD of its paid orders in the last D days, needing a
                       minimum history)

Masked receivers (the platform hides them) are never judged on phone or address: we
cannot see them, and inventing a verdict would hold every such order.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from statistics import median

from oms.domain.normalize import mask_phone, normalize_phone, normalize_province

CHANNEL = "channel"
AMOUNT_BANDS = "amount_bands"
REGION = "region"
REMOTE_AREA = "remote_area"
URGENT = "urgent"
REPEAT_CUSTOMER = "repeat_customer"
HIGH_VALUE_CUSTOMER = "high_value_customer"
TAG_RULES = (CHANNEL, AMOUNT_BANDS, REGION, REMOTE_AREA, URGENT, REPEAT_CUSTOMER, HIGH_VALUE_CUSTOMER)

INVALID_PHONE = "invalid_phone"
VAGUE_ADDRESS = "vague_address"
BUYER_VELOCITY = "buyer_velocity"
ADDRESS_VELOCITY = "address_velocity"
UNUSUAL_AMOUNT = "unusual_amount"
HOLD_RULES = (INVALID_PHONE, VAGUE_ADDRESS, BUYER_VELOCITY, ADDRESS_VELOCITY, UNUSUAL_AMOUNT)

PRIORITY_TAG_PREFIX = "priority:"
TAG_MAX_LENGTH = 64  # the width of order_tags.tag

# Iglewicz and Hoaglin's constant: it makes the MAD of normal data comparable to a
# standard deviation, so a robust z of 3.5 means what a z of 3.5 would.
_MAD_TO_SIGMA = Decimal("0.6745")


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AmountBands:
    by_currency: dict[str, tuple[tuple[Decimal, str], ...]]  # currency -> (lower edge, band), rising

    def band(self, currency: str, amount: Decimal) -> str | None:
        found = None
        for edge, name in self.by_currency.get(currency, ()):
            if amount >= edge:
                found = name
        return found

    def names(self) -> set[str]:
        return {name for bands in self.by_currency.values() for _, name in bands}


@dataclass(frozen=True)
class RegionRule:
    by_province: dict[str, str]  # canonical province -> region name
    abroad: str | None = None  # the region name of receivers outside China


@dataclass(frozen=True)
class RemoteAreaRule:
    provinces: frozenset[str] = frozenset()
    postcodes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # country -> prefixes


@dataclass(frozen=True)
class UrgentRule:
    ship_by_within: timedelta


@dataclass(frozen=True)
class RepeatCustomerRule:
    min_earlier_orders: int
    days: int


@dataclass(frozen=True)
class HighValueCustomerRule:
    min_spend: dict[str, Decimal]  # currency -> spend
    days: int


@dataclass(frozen=True)
class VagueAddressRule:
    min_length: int = 5
    number_markers: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class VelocityRule:
    max_orders: int
    window: timedelta


@dataclass(frozen=True)
class UnusualAmountRule:
    max_robust_z: Decimal
    min_history: int
    days: int
    # The MAD of the log totals is floored at this: a shop whose orders all cost the
    # same has a MAD of 0, and every other amount would look infinitely far. 0.25 on the
    # log scale is a spread of about 28 % either way.
    min_spread: Decimal = Decimal("0.25")


@dataclass(frozen=True)
class TaggingRules:
    channel: bool = False
    amount_bands: AmountBands | None = None
    region: RegionRule | None = None
    remote_area: RemoteAreaRule | None = None
    urgent: UrgentRule | None = None
    repeat_customer: RepeatCustomerRule | None = None
    high_value_customer: HighValueCustomerRule | None = None
    priorities: dict[str, int] = field(default_factory=dict)
    default_priority: int = 50
    invalid_phone: bool = False
    vague_address: VagueAddressRule | None = None
    buyer_velocity: VelocityRule | None = None
    address_velocity: VelocityRule | None = None
    unusual_amount: UnusualAmountRule | None = None

    @property
    def velocity_window(self) -> timedelta | None:
        """The widest window a velocity rule looks at (what the database must read)."""
        windows = [rule.window for rule in (self.buyer_velocity, self.address_velocity) if rule]
        return max(windows, default=None)

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "tagging rules") -> TaggingRules:
        """Read the rules file's mapping; a ValueError names the file and the key."""
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise _bad(source, "(top)", "must be a mapping with tags, priorities and holds")
        _refuse_unknown(data, {"tags", "priorities", "default_priority", "holds"}, source, "")
        tags = _section(data.get("tags"), source, "tags", TAG_RULES)
        holds = _section(data.get("holds"), source, "holds", HOLD_RULES)
        rules = cls(
            channel=_switch(tags.get(CHANNEL), source, f"tags.{CHANNEL}"),
            amount_bands=_amount_bands(tags.get(AMOUNT_BANDS), source),
            region=_region(tags.get(REGION), source),
            remote_area=_remote_area(tags.get(REMOTE_AREA), source),
            urgent=_urgent(tags.get(URGENT), source),
            repeat_customer=_repeat_customer(tags.get(REPEAT_CUSTOMER), source),
            high_value_customer=_high_value_customer(tags.get(HIGH_VALUE_CUSTOMER), source),
            default_priority=_whole(data.get("default_priority", 50), source, "default_priority"),
            invalid_phone=_switch(holds.get(INVALID_PHONE), source, f"holds.{INVALID_PHONE}"),
            vague_address=_vague_address(holds.get(VAGUE_ADDRESS), source),
            buyer_velocity=_velocity(holds.get(BUYER_VELOCITY), source, BUYER_VELOCITY),
            address_velocity=_velocity(holds.get(ADDRESS_VELOCITY), source, ADDRESS_VELOCITY),
            unusual_amount=_unusual_amount(holds.get(UNUSUAL_AMOUNT), source),
        )
        priorities = _priorities(data.get("priorities"), source, rules)
        return replace(rules, priorities=priorities)

    def can_make(self, tag: str) -> bool:
        """Whether some switched-on rule can give an order this tag."""
        kind, _, value = tag.partition(":")
        if not value:
            return any(kind == name and getattr(self, name) is not None
                       for name in (REMOTE_AREA, URGENT, REPEAT_CUSTOMER, HIGH_VALUE_CUSTOMER))
        if kind == CHANNEL:
            return self.channel
        if kind == "amount":
            return self.amount_bands is not None and value in self.amount_bands.names()
        if kind == REGION:
            return self.region is not None and value in _region_names(self.region)
        return False


# ---------------------------------------------------------------------------
# the inputs and the verdict
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    order_id: int
    platform: str
    shop_code: str
    currency: str
    total_amount: Decimal
    country: str = "CN"
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    receiver_masked: bool = False
    ship_by: datetime | None = None


@dataclass(frozen=True)
class AmountStatistics:
    """A shop's usual order total in one currency: median, MAD and how many orders, and
    the same two of the logarithms of the totals, which the unusual-amount rule uses."""

    median: Decimal
    mad: Decimal
    count: int
    log_median: float | None = None
    log_mad: float | None = None


@dataclass(frozen=True)
class OrderContext:
    # Orders (this one included) of the same customer, and to the same address, created
    # within each velocity rule's window before or after this one; None: no key known.
    buyer_orders_nearby: int | None = None
    address_orders_nearby: int | None = None
    earlier_customer_orders: int = 0  # within the repeat rule's days, before this order
    customer_spend: dict[str, Decimal] = field(default_factory=dict)  # currency -> spend, this order included
    shop_amounts: AmountStatistics | None = None  # the shop's, in this order's currency


@dataclass(frozen=True)
class Hold:
    rule: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    order_id: int
    tags: tuple[str, ...]
    priority: int
    holds: tuple[Hold, ...]

    @property
    def stored_tags(self) -> tuple[str, ...]:
        return (*self.tags, f"{PRIORITY_TAG_PREFIX}{self.priority}")


def amount_statistics(amounts: Iterable[Decimal]) -> AmountStatistics | None:
    """Median and median absolute deviation of some order totals; None for none."""
    values = sorted(Decimal(value) for value in amounts)
    if not values:
        return None
    middle = median(values)
    spread = median(sorted(abs(value - middle) for value in values))
    logs = [math.log(value) for value in values if value > 0]
    log_middle = median(logs) if logs else None
    log_spread = median(abs(value - log_middle) for value in logs) if logs else None
    return AmountStatistics(median=Decimal(middle), mad=Decimal(spread), count=len(values),
                            log_median=log_middle, log_mad=log_spread)


def robust_z(amount: Decimal, stats: AmountStatistics, min_spread: Decimal) -> Decimal | None:
    """How many robust deviations `amount` lies from the shop's usual, on the log scale;
    None if unmeasurable (no positive totals, or this one is not positive).

    Logarithms, because totals are skewed: a basket of five items at five times the
    median is an ordinary order, while a price typed with two zeros too many, or a
    tenth of the usual, is the same distance either way on this scale."""
    if stats.log_median is None or amount <= 0:
        return None
    spread = max(stats.log_mad or 0.0, float(min_spread))
    if spread <= 0:
        return None
    return _MAD_TO_SIGMA * Decimal(math.log(amount) - stats.log_median) / Decimal(spread)


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------


def evaluate(order: OrderFacts, context: OrderContext, rules: TaggingRules, now: datetime) -> Verdict:
    tags = _tags(order, context, rules, now)
    priority = min((rules.priorities[tag] for tag in tags if tag in rules.priorities),
                   default=rules.default_priority)
    return Verdict(order_id=order.order_id, tags=tuple(tags), priority=priority,
                   holds=tuple(_holds(order, context, rules)))


def _tags(order: OrderFacts, context: OrderContext, rules: TaggingRules, now: datetime) -> list[str]:
    tags = []
    if rules.channel:
        tags.append(f"{CHANNEL}:{order.platform}"[:TAG_MAX_LENGTH])
    band = rules.amount_bands.band(order.currency, order.total_amount) if rules.amount_bands else None
    if band:
        tags.append(f"amount:{band}")
    region = _region_of(order, rules.region) if rules.region else None
    if region:
        tags.append(f"{REGION}:{region}")
    if rules.remote_area and _is_remote(order, rules.remote_area):
        tags.append(REMOTE_AREA)
    if rules.urgent and order.ship_by is not None and order.ship_by - now <= rules.urgent.ship_by_within:
        tags.append(URGENT)
    if rules.repeat_customer and context.earlier_customer_orders >= rules.repeat_customer.min_earlier_orders:
        tags.append(REPEAT_CUSTOMER)
    if rules.high_value_customer and _spent_enough(context.customer_spend, rules.high_value_customer):
        tags.append(HIGH_VALUE_CUSTOMER)
    return tags


def _holds(order: OrderFacts, context: OrderContext, rules: TaggingRules) -> list[Hold]:
    found = []
    if rules.invalid_phone and not order.receiver_masked:
        found.extend(_phone_hold(order))
    if rules.vague_address and not order.receiver_masked:
        found.extend(_address_hold(order, rules.vague_address))
    if rules.buyer_velocity:
        found.extend(_velocity_hold(BUYER_VELOCITY, "from one customer", context.buyer_orders_nearby,
                                    rules.buyer_velocity))
    if rules.address_velocity:
        found.extend(_velocity_hold(ADDRESS_VELOCITY, "to one address", context.address_orders_nearby,
                                    rules.address_velocity))
    if rules.unusual_amount:
        found.extend(_amount_hold(order, context.shop_amounts, rules.unusual_amount))
    return found


def _region_of(order: OrderFacts, rule: RegionRule) -> str | None:
    if (order.country or "CN").upper() != "CN":
        return rule.abroad
    province = normalize_province(order.province).name if order.province else None
    return rule.by_province.get(province) if province else None


def _is_remote(order: OrderFacts, rule: RemoteAreaRule) -> bool:
    country = (order.country or "CN").upper()
    if country == "CN":
        province = normalize_province(order.province).name if order.province else None
        return province in rule.provinces
    postcode = "".join((order.postal_code or "").split()).upper()
    return bool(postcode) and any(postcode.startswith(prefix) for prefix in rule.postcodes.get(country, ()))


def _spent_enough(spend: Mapping[str, Decimal], rule: HighValueCustomerRule) -> bool:
    return any(spend.get(currency, Decimal(0)) >= least for currency, least in rule.min_spend.items())


def _phone_hold(order: OrderFacts) -> list[Hold]:
    phone = normalize_phone(order.phone, region=(order.country or "CN").upper())
    if phone.valid:
        return []
    shown = mask_phone(order.phone) or "none"
    return [Hold(INVALID_PHONE, f"receiver phone {shown} is {phone.reason or 'not valid'}: "
                                "the carrier cannot call the receiver")]


def _address_hold(order: OrderFacts, rule: VagueAddressRule) -> list[Hold]:
    problem = _address_problem(order, rule)
    return [Hold(VAGUE_ADDRESS, problem)] if problem else []


def _address_problem(order: OrderFacts, rule: VagueAddressRule) -> str | None:
    text = _compact(order.address)
    if not text:
        return "there is no street address"
    folded = text.casefold()
    for phrase in rule.phrases:
        if _compact(phrase).casefold() in folded:
            return f"the address says \"{phrase}\" instead of where to deliver"
    rest = _after_place_names(text, (order.province, order.city, order.district))
    if not rest:
        return "the address names only the province, city or district"
    if len(rest) < rule.min_length:
        return (f"the address is too short: {len(rest)} characters after the city "
                f"(at least {rule.min_length})")
    if not any(ch.isdigit() for ch in rest) and not any(marker.casefold() in rest.casefold()
                                                         for marker in rule.number_markers):
        return "the address has no street number, building or room"
    return None


def _compact(text: str | None) -> str:
    return "".join(unicodedata.normalize("NFKC", text or "").split())


def _after_place_names(text: str, places: tuple[str | None, ...]) -> str:
    """The address without the province, city and district it may repeat at its start."""
    names = set()
    for place in places:
        name = _compact(place)
        if name:
            names.add(name)
            if len(name) > 2 and name[-1] in "省市区县":
                names.add(name[:-1])
    if places[0]:
        names.add(normalize_province(places[0]).name or "")
    names.discard("")
    stripped = True
    while stripped and text:
        stripped = False
        for name in sorted(names, key=len, reverse=True):
            if text.startswith(name):
                text, stripped = text[len(name):], True
                break
    return text


def _times(amount: Decimal, usual: Decimal) -> str:
    if usual <= 0 or amount <= 0:
        return "far"
    ratio = amount / usual
    return f"{ratio:.1f}×" if ratio >= 1 else f"1/{1 / ratio:.1f}"


def _velocity_hold(rule_name: str, whose: str, count: int | None, rule: VelocityRule) -> list[Hold]:
    if count is None or count <= rule.max_orders:
        return []
    minutes = int(rule.window.total_seconds() // 60)
    return [Hold(rule_name, f"{count} orders {whose} within {minutes} minutes of this one "
                            f"(more than {rule.max_orders} is held)")]


def _amount_hold(order: OrderFacts, stats: AmountStatistics | None, rule: UnusualAmountRule) -> list[Hold]:
    if stats is None or stats.count < rule.min_history:
        return []
    z = robust_z(order.total_amount, stats, rule.min_spread)
    if z is None or abs(z) <= rule.max_robust_z:
        return []
    side = "above" if z > 0 else "below"
    return [Hold(UNUSUAL_AMOUNT,
                 f"total {order.currency} {order.total_amount:.2f} is {_times(order.total_amount, stats.median)} "
                 f"and {abs(z):.1f} robust deviations (log scale) {side} "
                 f"the shop's median of {order.currency} {stats.median:.2f} "
                 f"({stats.count} paid orders in {rule.days} days; more than {rule.max_robust_z} is held)")]


# ---------------------------------------------------------------------------
# reading the rules
# ---------------------------------------------------------------------------


def _section(value: object, source: str, key: str, known: tuple[str, ...]) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(source, key, f"must be a mapping of rules ({', '.join(known)})")
    for name in value:
        if name not in known:
            raise _bad(source, f"{key}.{name}", f"is not a rule; the rules here are {', '.join(known)}")
    return value


def _settings(value: object, source: str, key: str, known: set[str]) -> Mapping | None:
    """A rule's settings; None when the rule is left out or set to false."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise _bad(source, key, f"must be a mapping ({', '.join(sorted(known))}) or false")
    _refuse_unknown(value, known, source, key)
    return value


def _switch(value: object, source: str, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(source, key, f"must be true or false; got {value!r}")
    return value


def _amount_bands(value: object, source: str) -> AmountBands | None:
    key = f"tags.{AMOUNT_BANDS}"
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping) or not value:
        raise _bad(source, key, "must map currencies to {band: lower edge}")
    found = {}
    for currency, bands in value.items():
        where = f"{key}.{currency}"
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
            raise _bad(source, where, "is not a three-letter currency code such as CNY")
        if not isinstance(bands, Mapping) or not bands:
            raise _bad(source, where, "must map band names to their lower edges")
        edges = sorted((_money(edge, source, f"{where}.{name}"), _tag_word(name, source, f"{where}.{name}"))
                       for name, edge in bands.items())
        for (low, first), (high, second) in zip(edges, edges[1:]):
            if low == high:
                raise _bad(source, where, f"bands {first} and {second} share the lower edge {low}")
        found[currency] = tuple(edges)
    return AmountBands(found)


def _region(value: object, source: str) -> RegionRule | None:
    key = f"tags.{REGION}"
    entry = _settings(value, source, key, {"provinces", "abroad"})
    if entry is None:
        return None
    abroad = entry.get("abroad")
    if abroad is not None:
        abroad = _tag_word(abroad, source, f"{key}.abroad")
    groups = entry.get("provinces") or {}
    if not isinstance(groups, Mapping):
        raise _bad(source, f"{key}.provinces", "must map region names to lists of provinces")
    by_province: dict[str, str] = {}
    for name, provinces in groups.items():
        where = f"{key}.provinces.{name}"
        region = _tag_word(name, source, where)
        for province in _provinces(provinces, source, where):
            if province in by_province:
                raise _bad(source, where, f"{province} is already in region {by_province[province]}")
            by_province[province] = region
    return RegionRule(by_province=by_province, abroad=abroad)


def _region_names(rule: RegionRule) -> set[str]:
    return set(rule.by_province.values()) | ({rule.abroad} if rule.abroad else set())


def _remote_area(value: object, source: str) -> RemoteAreaRule | None:
    key = f"tags.{REMOTE_AREA}"
    entry = _settings(value, source, key, {"provinces", "postcodes"})
    if entry is None:
        return None
    provinces = frozenset(_provinces(entry.get("provinces") or [], source, f"{key}.provinces"))
    table = entry.get("postcodes") or {}
    if not isinstance(table, Mapping):
        raise _bad(source, f"{key}.postcodes", "must map country codes to lists of postcode prefixes")
    postcodes = {}
    for country, prefixes in table.items():
        where = f"{key}.postcodes.{country}"
        if not isinstance(country, str) or len(country) != 2 or not country.isupper():
            raise _bad(source, where, "is not a two-letter country code such as US")
        if not isinstance(prefixes, list) or not all(isinstance(p, (str, int)) and str(p).strip() for p in prefixes):
            raise _bad(source, where, "must be a list of postcode prefixes (quote them: \"995\")")
        postcodes[country] = tuple("".join(str(p).split()).upper() for p in prefixes)
    return RemoteAreaRule(provinces=provinces, postcodes=postcodes)


def _urgent(value: object, source: str) -> UrgentRule | None:
    key = f"tags.{URGENT}"
    entry = _settings(value, source, key, {"ship_by_within_hours"})
    if entry is None:
        return None
    hours = _number(entry.get("ship_by_within_hours"), source, f"{key}.ship_by_within_hours")
    return UrgentRule(ship_by_within=timedelta(hours=float(hours)))


def _repeat_customer(value: object, source: str) -> RepeatCustomerRule | None:
    key = f"tags.{REPEAT_CUSTOMER}"
    entry = _settings(value, source, key, {"min_earlier_orders", "days"})
    if entry is None:
        return None
    return RepeatCustomerRule(
        min_earlier_orders=_whole(entry.get("min_earlier_orders"), source, f"{key}.min_earlier_orders", least=1),
        days=_whole(entry.get("days"), source, f"{key}.days", least=1))


def _high_value_customer(value: object, source: str) -> HighValueCustomerRule | None:
    key = f"tags.{HIGH_VALUE_CUSTOMER}"
    entry = _settings(value, source, key, {"min_spend", "days"})
    if entry is None:
        return None
    spend = entry.get("min_spend")
    if not isinstance(spend, Mapping) or not spend:
        raise _bad(source, f"{key}.min_spend", "must map currencies to the spend that counts as high")
    return HighValueCustomerRule(
        min_spend={str(currency): _money(amount, source, f"{key}.min_spend.{currency}")
                   for currency, amount in spend.items()},
        days=_whole(entry.get("days"), source, f"{key}.days", least=1))


def _vague_address(value: object, source: str) -> VagueAddressRule | None:
    key = f"holds.{VAGUE_ADDRESS}"
    entry = _settings(value, source, key, {"min_length", "number_markers", "phrases"})
    if entry is None:
        return None
    return VagueAddressRule(
        min_length=_whole(entry.get("min_length", 5), source, f"{key}.min_length"),
        number_markers=_words(entry.get("number_markers"), source, f"{key}.number_markers"),
        phrases=_words(entry.get("phrases"), source, f"{key}.phrases"))


def _velocity(value: object, source: str, name: str) -> VelocityRule | None:
    key = f"holds.{name}"
    entry = _settings(value, source, key, {"max_orders", "window_minutes"})
    if entry is None:
        return None
    return VelocityRule(
        max_orders=_whole(entry.get("max_orders"), source, f"{key}.max_orders", least=1),
        window=timedelta(minutes=_whole(entry.get("window_minutes", 60), source, f"{key}.window_minutes", least=1)))


def _unusual_amount(value: object, source: str) -> UnusualAmountRule | None:
    key = f"holds.{UNUSUAL_AMOUNT}"
    entry = _settings(value, source, key, {"max_robust_z", "min_history", "days", "min_spread"})
    if entry is None:
        return None
    return UnusualAmountRule(
        max_robust_z=_number(entry.get("max_robust_z"), source, f"{key}.max_robust_z"),
        min_history=_whole(entry.get("min_history", 30), source, f"{key}.min_history", least=2),
        days=_whole(entry.get("days", 30), source, f"{key}.days", least=1),
        min_spread=_number(entry.get("min_spread", "0.25"), source, f"{key}.min_spread", allow_zero=True))


def _priorities(value: object, source: str, rules: TaggingRules) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(source, "priorities", "must map tags to numbers (lower is picked first)")
    found = {}
    for tag, number in value.items():
        where = f"priorities.{tag}"
        if not isinstance(tag, str) or not rules.can_make(tag):
            raise _bad(source, where, "no switched-on rule gives this tag; tags are channel:<platform>, "
                                      "amount:<band>, region:<name>, remote_area, urgent, repeat_customer, "
                                      "high_value_customer")
        found[tag] = _whole(number, source, where)
    return found


def _provinces(value: object, source: str, key: str) -> list[str]:
    if not isinstance(value, list):
        raise _bad(source, key, "must be a list of provinces")
    found = []
    for raw in value:
        province = normalize_province(str(raw)).name
        if province is None:
            raise _bad(source, key, f"{raw!r} is not a province of China")
        found.append(province)
    return found


def _words(value: object, source: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(word, str) and word.strip() for word in value):
        raise _bad(source, key, "must be a list of non-empty texts")
    return tuple(value)


def _tag_word(value: object, source: str, key: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not text or any(ch.isspace() or ch == ":" for ch in text) or len(text) > TAG_MAX_LENGTH - 10:
        raise _bad(source, key, f"{value!r} cannot be part of a tag (no spaces or colons, short)")
    return text


def _whole(value: object, source: str, key: str, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _bad(source, key, f"must be a whole number of at least {least}; got {value!r}")
    return value


def _number(value: object, source: str, key: str, allow_zero: bool = False) -> Decimal:
    amount = _decimal(value)
    if amount is None or amount < 0 or (amount == 0 and not allow_zero):
        raise _bad(source, key, f"must be a {'non-negative' if allow_zero else 'positive'} number; got {value!r}")
    return amount


def _money(value: object, source: str, key: str) -> Decimal:
    amount = _decimal(value)
    if amount is None or amount < 0:
        raise _bad(source, key, f"must be an amount of at least 0; got {value!r}")
    return amount


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _refuse_unknown(data: Mapping, known: set[str], source: str, key: str) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            raise _bad(source, where, f"is not a setting here (allowed: {', '.join(sorted(known))})")


def _bad(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")
