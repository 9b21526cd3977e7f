"""Ship-by deadlines: by when an order's tracking number must reach its platform, and how
close to (or past) that deadline it is.

Marketplaces fine a shop whose parcel's tracking number is not written back in time. The
`sla-watch` flow asks three things of this module, all pure (no I/O, no clock: `now` is
passed in, every datetime is timezone-aware):

    ship_by_deadline  the order's deadline and which rule gave it
    sla_stage         ok, warning, breached, done or done_late at `now`
    escalations       which events to emit when the stage moved, so on-call hears of a
                      warning once and of a breach once per order

and `at_risk_by_warehouse` lays out the orders in warning or breach for an artifact
(`time_left` says "1 h 05 min left" or "overdue by 20 min" for people).

Where a deadline comes from, strongest first:

1. the platform's own ship-by on the order (`orders.ship_by`: Shopee `ship_by_date`,
   Amazon `LatestShipDate`, Pinduoduo `last_ship_time`, Douyin `exp_ship_time`, set by
   the connectors). It is what the platform fines against, so it wins;
2. else the configured rules (config/sla.yaml): per line, the first product rule whose
   SKU patterns match (e.g. pre-sale items: 72 hours, or a fixed date the platform gave),
   else the platform's hours, else `default_hours`. The clock starts at payment
   (`paid_at`, else `created_at`); with a cut-off time, an order paid at or after the
   cut-off (local time of the rules' time zone) counts from the next local midnight.
   The order's deadline is the earliest of its lines' deadlines.

Hours are calendar hours: weekends and public holidays are not modelled (platforms that
count business days, such as Amazon's handling time or Shopee's days to ship, give their
own ship-by on the order, which wins anyway).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_WARN_BEFORE = timedelta(hours=2)

PLATFORM_SOURCE = "platform"
RULE_SOURCE = "rule"


class Stage(StrEnum):
    OK = "ok"
    WARNING = "warning"  # from `warn_before` ahead of the deadline up to the deadline itself
    BREACHED = "breached"  # past the deadline, tracking not written back
    DONE = "done"  # tracking written back at or before the deadline
    DONE_LATE = "done_late"  # tracking written back after the deadline


class Escalation(StrEnum):
    WARNING = "sla.warning"
    BREACH = "sla.breach"


# ---------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRule:
    """Lines whose SKU matches one of `skus` (exact SKUs or globs such as "PRE-*") get
    `hours` from payment, or the fixed `ship_by` the platform gave for them."""

    name: str
    skus: tuple[str, ...]
    hours: float | None = None
    ship_by: datetime | None = None
    platforms: tuple[str, ...] = ()  # empty: every platform

    def __post_init__(self) -> None:
        if (self.hours is None) == (self.ship_by is None):
            raise ValueError(f"product rule {self.name!r}: give either hours or ship_by")
        if self.ship_by is not None and self.ship_by.tzinfo is None:
            raise ValueError(f"product rule {self.name!r}: ship_by needs a time zone")

    def matches(self, platform: str, sku: str | None) -> bool:
        if sku is None or (self.platforms and platform not in self.platforms):
            return False
        return any(fnmatchcase(sku, pattern) for pattern in self.skus)


@dataclass(frozen=True)
class PlatformRule:
    hours: float
    cutoff: time | None = None  # None: the rules' own cut-off applies


@dataclass(frozen=True)
class SlaRules:
    platforms: dict[str, PlatformRule] = field(default_factory=dict)
    products: tuple[ProductRule, ...] = ()  # in order: the first match wins
    default_hours: float = 48
    warn_before: timedelta = DEFAULT_WARN_BEFORE
    timezone: str = DEFAULT_TIMEZONE
    cutoff: time | None = None  # None: the clock starts at payment itself

    def __post_init__(self) -> None:
        _zone(self.timezone)  # a wrong name fails here, not at the first order

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    def cutoff_for(self, platform: str) -> time | None:
        own = self.platforms.get(platform)
        return own.cutoff if own is not None and own.cutoff is not None else self.cutoff

    def hours_for(self, platform: str) -> tuple[float, str]:
        own = self.platforms.get(platform)
        if own is not None:
            return own.hours, f"the {platform} rule"
        return self.default_hours, "the default rule"

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "sla rules") -> SlaRules:
        """Read the settings of config/sla.yaml; every mistake is a ValueError naming the
        source and the key."""
        if not isinstance(data, Mapping):
            raise _bad(source, "(top)", "must be a mapping of SLA settings")
        _refuse_unknown(data, {"timezone", "warn_before_minutes", "cutoff", "default_hours",
                               "platforms", "products"}, source, "")
        timezone = data.get("timezone", DEFAULT_TIMEZONE)
        if not isinstance(timezone, str):
            raise _bad(source, "timezone", f"must be a time zone name such as Asia/Shanghai, got {timezone!r}")
        try:
            zone = _zone(timezone)
        except ValueError:
            raise _bad(source, "timezone", f"{timezone!r} is not a known time zone") from None
        warn = _number(data.get("warn_before_minutes", 120), source, "warn_before_minutes")
        platforms = _platforms(data.get("platforms"), source)
        return cls(
            platforms=platforms,
            products=_products(data.get("products"), source, zone),
            default_hours=_number(data.get("default_hours", 48), source, "default_hours", positive=True),
            warn_before=timedelta(minutes=warn),
            timezone=timezone,
            cutoff=_cutoff(data.get("cutoff"), source, "cutoff"),
        )


# ---------------------------------------------------------------------------
# the deadline
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderForSla:
    order_id: int
    platform: str
    created_at: datetime
    skus: tuple[str | None, ...]  # one per line
    paid_at: datetime | None = None
    ship_by: datetime | None = None  # the platform's own, when it gives one


@dataclass(frozen=True)
class Deadline:
    at: datetime
    source: str  # PLATFORM_SOURCE or RULE_SOURCE
    rule: str  # "platform ship_by", "presale", "the jd rule", "the default rule"
    explanation: str


def ship_by_deadline(order: OrderForSla, rules: SlaRules) -> Deadline:
    """The order's ship-by deadline and the sentence saying which rule gave it."""
    if order.ship_by is not None:
        _aware(order.ship_by, "ship_by")
        return Deadline(order.ship_by, PLATFORM_SOURCE, "platform ship_by",
                        f"{order.platform} gave its own ship-by {_local(order.ship_by, rules)}; "
                        "it wins over the configured rules.")
    paid = order.paid_at if order.paid_at is not None else order.created_at
    _aware(paid, "paid_at" if order.paid_at is not None else "created_at")
    start, start_text = _clock_start(paid, order.platform, rules)
    paid_word = "paid" if order.paid_at is not None else "created (no payment time)"
    candidates = []
    for sku in order.skus or (None,):
        rule = next((rule for rule in rules.products if rule.matches(order.platform, sku)), None)
        if rule is not None and rule.ship_by is not None:
            candidates.append((rule.ship_by, rule.name, f"{sku} matches {rule.name}, fixed ship-by"))
        elif rule is not None:
            candidates.append((start + timedelta(hours=rule.hours), rule.name,
                               f"{sku} matches {rule.name}, {_hours(rule.hours)}"))
        else:
            hours, name = rules.hours_for(order.platform)
            what = f"{sku} follows {name}" if sku is not None else f"{name} applies"
            candidates.append((start + timedelta(hours=hours), name, f"{what}, {_hours(hours)}"))
    at, name, reason = min(candidates, key=lambda candidate: candidate[0])
    several = " (the earliest of its lines)" if len(candidates) > 1 else ""
    return Deadline(at, RULE_SOURCE, name,
                    f"{paid_word} {_local(paid, rules)}{start_text}; {reason}{several}: "
                    f"ship by {_local(at, rules)}.")


def _clock_start(paid: datetime, platform: str, rules: SlaRules) -> tuple[datetime, str]:
    cutoff = rules.cutoff_for(platform)
    if cutoff is None:
        return paid, ""
    local = paid.astimezone(rules.zone)
    if local.time() < cutoff:
        return paid, ""
    next_day: date = local.date() + timedelta(days=1)
    start = datetime.combine(next_day, time(0), tzinfo=rules.zone)
    return start, f", after the {cutoff:%H:%M} cut-off, so counted from {_local(start, rules)}"


# ---------------------------------------------------------------------------
# stages and escalations
# ---------------------------------------------------------------------------


def sla_stage(deadline: datetime, now: datetime, pushed_at: datetime | None = None,
              warn_before: timedelta = DEFAULT_WARN_BEFORE) -> Stage:
    """Where an order stands: the deadline itself is still `warning`; a moment after it,
    `breached`. Once the tracking number was accepted (`pushed_at`) it is `done` or
    `done_late`, whatever the time now."""
    _aware(deadline, "deadline")
    _aware(now, "now")
    if pushed_at is not None:
        _aware(pushed_at, "pushed_at")
        return Stage.DONE if pushed_at <= deadline else Stage.DONE_LATE
    if now > deadline:
        return Stage.BREACHED
    if now >= deadline - warn_before:
        return Stage.WARNING
    return Stage.OK


# How far an order got towards a breach; done ends the watch.
_LEVEL = {None: 0, Stage.OK: 0, Stage.WARNING: 1, Stage.BREACHED: 2, Stage.DONE_LATE: 2}


def escalations(previous_stage: Stage | None, current_stage: Stage) -> list[Escalation]:
    """Events to emit when an order moves from `previous_stage` (None: first seen) to
    `current_stage`, in order: a warning once, a breach once, never again for the order.

    A breach seen without a warning first emits only the breach (a late warning helps no
    one); a tracking number pushed after the deadline between two runs (done_late) still
    emits the breach nobody heard of. An order first seen already finished, even late,
    emits nothing: it is history nobody can act on (the first run over a shop's backlog
    must not page on-call for every parcel that shipped late last week). Store
    `stage_to_store(previous, current)` as the next previous stage, so a deadline the
    platform moves later cannot re-arm an alert."""
    current = Stage(current_stage)
    previous = Stage(previous_stage) if previous_stage is not None else None
    if previous in (Stage.DONE, Stage.DONE_LATE) or current is Stage.DONE:
        return []
    if previous is None and current is Stage.DONE_LATE:
        return []
    before, now = _LEVEL[previous], _LEVEL[current]
    if now <= before:
        return []
    if now == 1:
        return [Escalation.WARNING]
    return [Escalation.BREACH]


def stage_to_store(previous_stage: Stage | None, current_stage: Stage) -> Stage:
    """The stage the flow keeps for next time: the further of the two towards a breach
    (a finished order keeps its finish)."""
    current = Stage(current_stage)
    if previous_stage is None or current in (Stage.DONE, Stage.DONE_LATE):
        return current
    previous = Stage(previous_stage)
    if previous in (Stage.DONE, Stage.DONE_LATE):
        return previous
    return previous if _LEVEL[previous] > _LEVEL[current] else current


# ---------------------------------------------------------------------------
# at risk, by warehouse
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedOrder:
    order_id: int
    platform: str
    platform_order_id: str
    warehouse: str | None  # None: not routed yet
    deadline: datetime
    stage: Stage
    shop_code: str = ""
    step: str | None = None  # how far it got: allocated, packing, or the last warehouse scan


@dataclass(frozen=True)
class AtRiskRow:
    warehouse: str
    order_id: int
    platform: str
    platform_order_id: str
    deadline: datetime
    stage: Stage
    minutes_left: int  # negative once breached
    shop_code: str = ""
    step: str | None = None


UNROUTED = "(not routed)"
AT_RISK = (Stage.WARNING, Stage.BREACHED)


def at_risk_by_warehouse(orders: Iterable[WatchedOrder], now: datetime) -> dict[str, list[AtRiskRow]]:
    """Orders in warning or breach, grouped by warehouse: each group's rows by deadline
    (then order id), the groups by their most urgent deadline (then name)."""
    _aware(now, "now")
    groups: dict[str, list[AtRiskRow]] = {}
    for order in orders:
        if order.stage not in AT_RISK:
            continue
        left = (order.deadline - now).total_seconds() / 60
        minutes_left = int(left // 1)  # floor: one second late is -1 minute, not 0
        warehouse = order.warehouse or UNROUTED
        groups.setdefault(warehouse, []).append(AtRiskRow(
            warehouse, order.order_id, order.platform, order.platform_order_id,
            order.deadline, order.stage, minutes_left, order.shop_code, order.step))
    for rows in groups.values():
        rows.sort(key=lambda row: (row.deadline, row.order_id))
    return dict(sorted(groups.items(), key=lambda item: (item[1][0].deadline, item[0])))


def time_left(minutes_left: int) -> str:
    """`minutes_left` as a person reads it: "1 h 05 min left", "overdue by 20 min"."""
    size = abs(minutes_left)
    amount = f"{size // 60} h {size % 60:02d} min" if size >= 60 else f"{size} min"
    return f"{amount} left" if minutes_left >= 0 else f"overdue by {amount}"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone") from None


def _aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")


def _local(moment: datetime, rules: SlaRules) -> str:
    return f"{moment.astimezone(rules.zone):%Y-%m-%d %H:%M} {rules.timezone}"


def _hours(hours: float) -> str:
    return f"{hours:g} hours from payment"


def _platforms(section: object, source: str) -> dict[str, PlatformRule]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise _bad(source, "platforms", "must map platform names to {hours, cutoff}")
    found = {}
    for name, entry in section.items():
        key = f"platforms.{name}"
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            entry = {"hours": entry}
        if not isinstance(entry, Mapping):
            raise _bad(source, key, "must be {hours: n} with an optional cutoff")
        _refuse_unknown(entry, {"hours", "cutoff"}, source, key)
        if "hours" not in entry:
            raise _bad(source, f"{key}.hours", "is missing")
        found[str(name)] = PlatformRule(
            hours=_number(entry["hours"], source, f"{key}.hours", positive=True),
            cutoff=_cutoff(entry.get("cutoff"), source, f"{key}.cutoff"))
    return found


def _products(section: object, source: str, zone: ZoneInfo) -> tuple[ProductRule, ...]:
    if section is None:
        return ()
    if not isinstance(section, Mapping):
        raise _bad(source, "products", "must map rule names to {skus, hours or ship_by}, in order")
    rules = []
    for name, entry in section.items():
        key = f"products.{name}"
        if not isinstance(entry, Mapping):
            raise _bad(source, key, "must be {skus: [...], hours: n} or {skus: [...], ship_by: time}")
        _refuse_unknown(entry, {"skus", "hours", "ship_by", "platforms"}, source, key)
        skus = entry.get("skus")
        if isinstance(skus, str):
            skus = [skus]
        if (not isinstance(skus, list) or not skus
                or not all(isinstance(sku, str) and sku.strip() for sku in skus)):
            raise _bad(source, f"{key}.skus", "must list SKUs or patterns such as \"PRE-*\"")
        has_hours, has_date = entry.get("hours") is not None, entry.get("ship_by") is not None
        if has_hours == has_date:
            raise _bad(source, key, "needs either hours or ship_by (not both)")
        platforms = entry.get("platforms", [])
        if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms):
            raise _bad(source, f"{key}.platforms", "must list platform names")
        rules.append(ProductRule(
            name=str(name), skus=tuple(sku.strip() for sku in skus),
            hours=_number(entry["hours"], source, f"{key}.hours", positive=True) if has_hours else None,
            ship_by=_moment(entry["ship_by"], source, f"{key}.ship_by", zone) if has_date else None,
            platforms=tuple(platforms)))
    return tuple(rules)


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _cutoff(value: object, source: str, key: str) -> time | None:
    if value is None:
        return None
    # YAML 1.1 reads an unquoted 16:00 as the sexagesimal number 960: take it as minutes.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _bad(source, key, f"must be a local time such as \"16:00\", got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _moment(value: object, source: str, key: str, zone: ZoneInfo) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59), tzinfo=zone)  # a date: by its end
    if not isinstance(value, datetime):
        raise _bad(source, key, "must be a date and time such as 2026-12-20T23:59:00+08:00")
    # A time written without an offset is local time of the rules' zone (PyYAML hands it
    # over naive; the YAML spec would say UTC, which no operator in Shanghai means).
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _number(value: object, source: str, key: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        least = "above 0" if positive else "at least 0"
        raise _bad(source, key, f"must be a number {least}, got {value!r}")
    return value


def _refuse_unknown(data: Mapping, known: set[str], source: str, key: str) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else str(name)
            raise _bad(source, where, f"is not a setting here (allowed: {', '.join(sorted(known))})")


def _bad(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")
