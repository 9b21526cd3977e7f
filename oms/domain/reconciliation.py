"""Daily reconciliation: which orders of a day the platform and we disagree about, and how.

The platform lists orders by their update time, and it only knows each order's latest
state. So an order "belongs" to the day of its latest update on the platform. We compare,
for each reconciled day, the orders the platform lists as last updated that day with the
orders we hold as last updated that day (by the platform's update time we stored):

- the platform lists it, we have no such order at all          -> missing_here
- we hold it for the day, the platform lists it nowhere         -> missing_on_platform
- both know it, the statuses differ                              -> status (with a gap)

An order we hold for day D that the platform has updated since (its latest update falls
after D) is still compared, against the platform's current status: that is the order
whose newer state we may have missed. When several days are reconciled at once each
order is compared once, under the platform's day when that day is among them. When our
stored update time is newer than the platform's listing (an ingest ran after the listing
was read) ours is the fresher view and no difference is reported.

Status gaps, with our status first and the platform's (mapped to ours) second:

    ours ahead   we moved the order on and the platform has not caught up: we allocated,
                 packed, shipped or delivered while it still says paid or shipped. Normal.
    ours behind  the platform moved on and we did not (yet): it says shipped, delivered
                 or cancelled while we are earlier on the way. Taking the platform's
                 current order usually settles it.
    conflict     both cannot be true on one order's way: one side cancelled while the
                 other shipped, or the platform says unpaid while we took it as paid.

A refunded order of ours that the platform shows as cancelled (most platforms close a
refunded order that way) is no difference.

Pure: no I/O and no clock; the tasks pass the listings, our orders and the time zone in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum

from oms.domain.order import OrderStatus, platform_status_change

S = OrderStatus

# The resolution column holds this many characters; longer texts are cut with an ellipsis.
RESOLUTION_LENGTH = 200

# How far each status is along an order's way; cancellation is off the way.
_PROGRESS = {S.PENDING_PAYMENT: 0, S.PAID: 1, S.BACKORDERED: 2, S.ALLOCATED: 2, S.PACKING: 3,
             S.SHIPPED: 4, S.DELIVERED: 5, S.REFUNDED: 6}


class DifferenceKind(StrEnum):
    MISSING_HERE = "missing_here"
    MISSING_ON_PLATFORM = "missing_on_platform"
    STATUS = "status"


class StatusGap(StrEnum):
    OURS_AHEAD = "ours ahead"
    OURS_BEHIND = "ours behind"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Sighting:
    """One order as one side knows it: its status and the platform's update time.

    `status` is None for a platform payload whose status could not be mapped (ingest
    parks such payloads with their reasons); `platform_status` is the platform's word.
    """

    platform_order_id: str
    status: OrderStatus | None
    platform_status: str
    updated_at: datetime


@dataclass(frozen=True)
class DayWindow:
    """One warehouse-local day as a UTC interval [start, end); `end` stops where the
    platform stops serving orders (now, less its lag) when the day is not over yet."""

    day: date
    start: datetime
    end: datetime

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class Difference:
    platform_order_id: str
    kind: DifferenceKind
    platform_status: str | None = None  # the platform's own word
    our_status: OrderStatus | None = None
    platform_mapped: OrderStatus | None = None
    gap: StatusGap | None = None
    # A newer copy of the order is on the platform than in our database: running the
    # ingest on the platform's payload may settle the difference.
    platform_copy_newer: bool = False


@dataclass
class DayComparison:
    window: DayWindow
    platform_orders: int = 0  # listed by the platform as last updated on the day
    our_orders: int = 0  # held by us as last updated on the day
    agreed: int = 0
    ours_fresher: int = 0  # our copy is newer than the listing: nothing to say
    status_unreadable: int = 0  # both know it, the platform's status could not be mapped
    differences: list[Difference] = field(default_factory=list)

    def count(self, kind: DifferenceKind) -> int:
        return sum(d.kind == kind for d in self.differences)


@dataclass(frozen=True)
class Resolution:
    text: str
    fixed: bool = False  # this run settled it
    needs_person: bool = False  # a person must look (and has not been asked yet)


@dataclass(frozen=True)
class Settled:
    """A difference with what the run did about it."""

    difference: Difference
    resolution: Resolution


@dataclass
class ShopDay:
    """One shop's reconciled day, as the report shows it."""

    shop_code: str
    platform: str
    comparison: DayComparison
    settled: list[Settled] = field(default_factory=list)

    @property
    def backfilled(self) -> int:
        return sum(s.difference.kind == DifferenceKind.MISSING_HERE and s.resolution.fixed for s in self.settled)

    @property
    def fixed(self) -> int:
        return sum(s.resolution.fixed for s in self.settled)

    @property
    def for_a_person(self) -> int:
        return sum(s.resolution.needs_person for s in self.settled)


# ------------------------------------------------------------------ days and windows


def previous_day(now: datetime, zone: tzinfo) -> date:
    """Yesterday in the warehouse's time zone: the day a night-time run reconciles."""
    return now.astimezone(zone).date() - timedelta(days=1)


def days_ending(last: date, count: int) -> list[date]:
    """`count` days up to and including `last`, oldest first."""
    return [last - timedelta(days=back) for back in range(max(count, 1) - 1, -1, -1)]


def day_window(day: date, zone: tzinfo, served_until: datetime) -> DayWindow:
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)
    # Midnight of the next local day, not start + 24 h: a day with a clock change is not 24 h long.
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
    return DayWindow(day, start, min(end, served_until))


# ------------------------------------------------------------------ comparing


def status_gap(ours: OrderStatus, theirs: OrderStatus) -> StatusGap | None:
    """How our status stands to the platform's, or None when they agree."""
    if ours == theirs or (ours == S.REFUNDED and theirs == S.CANCELLED):
        return None
    if S.CANCELLED in (ours, theirs):
        # The platform cancelling an order still before its waybill is what an ingest
        # follows; a cancellation against a parcel (or ours against a live order) is not.
        if theirs == S.CANCELLED and platform_status_change(ours, theirs) == S.CANCELLED:
            return StatusGap.OURS_BEHIND
        return StatusGap.CONFLICT
    if theirs == S.PENDING_PAYMENT:
        return StatusGap.CONFLICT  # a platform never takes a payment back to unpaid
    return StatusGap.OURS_AHEAD if _PROGRESS[ours] >= _PROGRESS[theirs] else StatusGap.OURS_BEHIND


def compare_days(windows: Iterable[DayWindow], platform: Mapping[str, Sighting],
                 ours: Mapping[str, Sighting]) -> list[DayComparison]:
    """Compare each day's orders; `platform` is the platform's latest view of every order
    it listed, `ours` every order of ours the days need (those we hold for a day, and
    those the platform listed), both by platform order id."""
    comparisons = [DayComparison(window) for window in windows if not window.is_empty]
    for platform_order_id in sorted(set(platform) | set(ours)):
        theirs, mine = platform.get(platform_order_id), ours.get(platform_order_id)
        theirs_day = _day_of(comparisons, theirs)
        mine_day = _day_of(comparisons, mine)
        if theirs_day is not None:
            theirs_day.platform_orders += 1
        if mine_day is not None:
            mine_day.our_orders += 1
        home = theirs_day or mine_day
        if home is not None:
            _compare_one(home, platform_order_id, theirs, mine)
    return comparisons


def _day_of(comparisons: list[DayComparison], sighting: Sighting | None) -> DayComparison | None:
    if sighting is None:
        return None
    return next((c for c in comparisons if c.window.holds(sighting.updated_at)), None)


def _compare_one(day: DayComparison, platform_order_id: str, theirs: Sighting | None,
                 mine: Sighting | None) -> None:
    if mine is None:
        day.differences.append(Difference(platform_order_id, DifferenceKind.MISSING_HERE,
                                          platform_status=theirs.platform_status, platform_mapped=theirs.status,
                                          platform_copy_newer=True))
        return
    if theirs is None:
        day.differences.append(Difference(platform_order_id, DifferenceKind.MISSING_ON_PLATFORM,
                                          our_status=mine.status, platform_status=None))
        return
    if mine.updated_at > theirs.updated_at:
        day.ours_fresher += 1
        return
    if theirs.status is None or mine.status is None:
        day.status_unreadable += 1
        return
    gap = status_gap(mine.status, theirs.status)
    if gap is None:
        day.agreed += 1
        return
    day.differences.append(Difference(platform_order_id, DifferenceKind.STATUS, platform_status=theirs.platform_status,
                                      our_status=mine.status, platform_mapped=theirs.status, gap=gap,
                                      platform_copy_newer=theirs.updated_at > mine.updated_at))


# ------------------------------------------------------------------ what became of each


@dataclass(frozen=True)
class AfterBackfill:
    """What the database says once the platform's copies ran through the ingest."""

    ours_now: Mapping[str, Sighting]  # our orders among the differences, as stored now
    parked: Mapping[str, str]  # platform order id -> why the ingest parked its copy
    already_waiting: frozenset[str] = frozenset()  # ids with an open review entry before the run


def settle(difference: Difference, after: AfterBackfill) -> Resolution:
    """Name what happened to one difference and whether a person must look."""
    pid = difference.platform_order_id
    if difference.kind == DifferenceKind.MISSING_HERE:
        return _settle_missing_here(pid, after)
    if difference.kind == DifferenceKind.MISSING_ON_PLATFORM:
        return Resolution(_cut("not listed by the platform: check whether it was deleted there or belongs "
                               "to another shop"), needs_person=True)
    return _settle_status(difference, after)


def _settle_missing_here(pid: str, after: AfterBackfill) -> Resolution:
    if pid in after.ours_now:
        return Resolution("backfilled", fixed=True)
    if pid in after.already_waiting:
        # Parked before this run: it waits for a person in the review queue already.
        return Resolution(_cut(f"already waiting in the review queue: {after.parked.get(pid, 'see oms review list')}"))
    if pid in after.parked:
        return Resolution(_cut(f"backfill parked in review queue: {after.parked[pid]}"), needs_person=True)
    return Resolution("backfill stored nothing: see the run's logs", needs_person=True)


def _settle_status(difference: Difference, after: AfterBackfill) -> Resolution:
    ours, theirs = difference.our_status, difference.platform_mapped
    pid = difference.platform_order_id
    now = after.ours_now.get(pid)
    if now is not None and now.status not in (None, ours) and status_gap(now.status, theirs) in (
            None, StatusGap.OURS_AHEAD):
        return Resolution(_cut(f"status differs: {difference.gap}; updated from the platform (now {now.status})"),
                          fixed=True)
    if difference.gap == StatusGap.OURS_AHEAD:
        return Resolution("status differs: ours ahead (the platform has not caught up yet)")
    if pid in after.parked:
        return Resolution(_cut(f"status differs: {difference.gap}; the platform's copy parked in review queue: "
                               f"{after.parked[pid]}"), needs_person=pid not in after.already_waiting)
    if difference.gap == StatusGap.CONFLICT:
        return Resolution(_cut(f"status differs: conflict (ours {ours}, platform {theirs}): "
                               "a person decides"), needs_person=True)
    if ours == S.PACKING and theirs == S.SHIPPED:
        return Resolution("status differs: ours behind (the platform has our tracking number; "
                          "the carrier's pickup scan moves us on)")
    return Resolution(_cut(f"status differs: ours behind; {ours} cannot move to {theirs}: a person decides"),
                      needs_person=True)


def platform_copies_wanted(comparisons: Iterable[DayComparison]) -> list[str]:
    """The orders whose platform copy should run through the ingest: the ones we miss, and
    the ones the platform holds a newer copy of than we do."""
    return sorted({d.platform_order_id for c in comparisons for d in c.differences
                   if d.platform_copy_newer and d.kind != DifferenceKind.MISSING_ON_PLATFORM})


def _cut(text: str) -> str:
    return text if len(text) <= RESOLUTION_LENGTH else text[: RESOLUTION_LENGTH - 1] + "…"


# ------------------------------------------------------------------ the report


def render_report(shop_days: list[ShopDay], zone_name: str, *, first: int = 20,
                  not_reconciled: Mapping[str, str] | None = None) -> str:
    """The markdown report: totals per shop and day, then the first `first` differences.
    Order ids and statuses only: no buyer's data."""
    days = sorted({sd.comparison.window.day for sd in shop_days})
    span = (days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()} to {days[-1].isoformat()}"
            ) if days else "no day"
    settled = [(sd, s) for sd in shop_days for s in sd.settled]
    lines = ["# Reconciliation with the platforms", "",
             f"{span} ({zone_name}), {len({sd.shop_code for sd in shop_days})} shop(s): "
             f"{sum(sd.comparison.platform_orders for sd in shop_days)} order(s) on the platforms, "
             f"{sum(sd.comparison.our_orders for sd in shop_days)} here; {len(settled)} difference(s), "
             f"{sum(s.resolution.fixed for _, s in settled)} settled by this run, "
             f"{sum(s.resolution.needs_person for _, s in settled)} for a person.", ""]
    lines += _totals_table(shop_days)
    lines += _differences_table(settled, first)
    if not_reconciled:
        lines += ["", "## Not reconciled", ""]
        lines += [f"- {code}: {reason}" for code, reason in sorted(not_reconciled.items())]
    return "\n".join(lines) + "\n"


def totals_row(sd: ShopDay) -> dict[str, object]:
    """One shop and day's figures, as the report's table artifact holds them."""
    c = sd.comparison
    return {"shop": sd.shop_code, "platform": sd.platform, "day": c.window.day.isoformat(),
            "on_platform": c.platform_orders, "here": c.our_orders,
            "missing_here": c.count(DifferenceKind.MISSING_HERE), "backfilled": sd.backfilled,
            "missing_on_platform": c.count(DifferenceKind.MISSING_ON_PLATFORM),
            "status_differences": c.count(DifferenceKind.STATUS), "settled": sd.fixed,
            "for_a_person": sd.for_a_person}


def _totals_table(shop_days: list[ShopDay]) -> list[str]:
    lines = ["## Per shop", ""]
    if not shop_days:
        return lines + ["No shop was reconciled."]
    lines += ["| shop | platform | day | on platform | here | missing here | backfilled | missing on platform | "
              "status differences | settled | for a person |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for sd in sorted(shop_days, key=lambda sd: (sd.shop_code, sd.comparison.window.day)):
        lines.append("| " + " | ".join(str(value) for value in totals_row(sd).values()) + " |")
    return lines + ["", "Settled: fixed by this run. For a person: not settled, and not already waiting in the "
                        "review queue."]


def _differences_table(settled: list[tuple[ShopDay, Settled]], first: int) -> list[str]:
    if not settled:
        return ["", "No differences."]
    shown = sorted(settled, key=_most_urgent_first)[:first]
    kinds = Counter(s.difference.kind.value for _, s in settled)
    lines = ["", f"## Differences (first {len(shown)} of {len(settled)}: "
             + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) + ")", "",
             "| shop | day | order | kind | platform status | our status | resolution |",
             "|---|---|---|---|---|---|---|"]
    for sd, s in shown:
        d = s.difference
        kind = f"{d.kind} ({d.gap})" if d.gap else d.kind.value
        lines.append(f"| {sd.shop_code} | {sd.comparison.window.day.isoformat()} | {d.platform_order_id} | {kind} | "
                     f"{d.platform_status or '-'} | {d.our_status or '-'} | {_cell(s.resolution.text)} |")
    return lines


def _most_urgent_first(item: tuple[ShopDay, Settled]) -> tuple:
    sd, s = item
    # What a person must do, then what this run fixed, then what already waits elsewhere.
    return (not s.resolution.needs_person, not s.resolution.fixed, sd.shop_code, sd.comparison.window.day,
            s.difference.platform_order_id)


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")
