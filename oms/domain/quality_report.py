"""The daily data-quality summary: failure rates by platform and by rule, how they moved,
and the markdown an operator reads in the Prefect UI.

Input is counts per warehouse-local day (`QualityFigures`, read by
`oms.db.quality_summary`); output is a `QualitySummary` and its renderings. Definitions
the report states to its reader as well:

- a platform's failure rate is the share of its checked rows that failed any rule;
- a rule's failure rate is the rows failing that rule over the same checked rows, so the
  rules of one platform may add up to more than its failure rate (a row can fail several);
- the baseline is the previous `days_of_trend` days pooled (all their failed rows over all
  their checked rows), so a quiet day weighs less than a busy one;
- a day on which a platform checked no rows has no rate ("no data"), never 0%.

Pure: no I/O, no clock reads; the caller passes the day (or `now` to find yesterday).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

# A rule is flagged when its rate today is at least this many percentage points above
# its baseline and at least this many times it: one point on a rule that usually fails
# 20% of rows is noise, on one that usually fails 0.2% it is a broken mapping.
NOTABLE_RISE_POINTS = 1.0
NOTABLE_RISE_FACTOR = 1.5
# Below this many checked rows a day, one bad order swings the rate by whole points.
FEWEST_ROWS_TO_FLAG = 20
# Changes smaller than this (in percentage points) read as steady.
STEADY_BAND_POINTS = 0.1
# Runs tied to no one platform are listed under this: today only the shipments suite,
# whose batches mix the orders of every platform a warehouse ships.
NO_PLATFORM = "all platforms (shipments)"

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
SPARK_NO_DATA = "·"
NO_DATA = "no data"


@dataclass(frozen=True)
class PlatformDay:
    """What one platform's quality runs counted on one warehouse-local day."""

    platform: str
    day: date
    runs: int
    checked: int
    failed: int
    batch_failures: int  # runs where a batch-level check failed (row count, failure share)


@dataclass(frozen=True)
class RuleDay:
    """Rows failing one rule on one platform on one warehouse-local day."""

    platform: str
    day: date
    rule: str
    failed: int


@dataclass(frozen=True)
class QualityFigures:
    """Counts for `day` and the `days_of_trend` days before it."""

    day: date
    days_of_trend: int
    platform_days: tuple[PlatformDay, ...]
    rule_days: tuple[RuleDay, ...]
    # Platforms of the active shops: listed even on a day they ran no checks, since a
    # shop whose batches were never validated is what the report must not hide.
    expected_platforms: tuple[str, ...] = ()


class Trend(StrEnum):
    RISING = "rising"
    FALLING = "falling"
    STEADY = "steady"
    UNKNOWN = "no baseline"  # nothing checked today or in the baseline days


ARROWS = {Trend.RISING: "↑", Trend.FALLING: "↓", Trend.STEADY: "→", Trend.UNKNOWN: ""}


@dataclass(frozen=True)
class PlatformQuality:
    platform: str
    runs: int
    checked: int
    failed: int
    batch_failures: int
    rate: float | None
    baseline_rate: float | None
    change_points: float | None
    trend: Trend
    daily_rates: tuple[float | None, ...]  # aligned with QualitySummary.trend_days


@dataclass(frozen=True)
class RuleQuality:
    platform: str
    rule: str
    failed: int
    rate: float | None
    baseline_rate: float | None
    change_points: float | None
    trend: Trend
    rose_notably: bool
    daily_rates: tuple[float | None, ...]


@dataclass(frozen=True)
class QualitySummary:
    day: date
    zone: str
    days_of_trend: int
    trend_days: tuple[date, ...]  # the last `days_of_trend` days, ending with `day`
    platforms: tuple[PlatformQuality, ...]  # worst rate first, platforms without data last
    rules: tuple[RuleQuality, ...]  # by platform as above, then worst rate first
    checked: int
    failed: int

    @property
    def rate(self) -> float | None:
        return _rate(self.failed, self.checked)

    @property
    def flagged(self) -> tuple[RuleQuality, ...]:
        return tuple(rule for rule in self.rules if rule.rose_notably)

    def platform(self, name: str) -> PlatformQuality:
        return next(p for p in self.platforms if p.platform == name)

    def rule(self, platform: str, rule: str) -> RuleQuality:
        return next(r for r in self.rules if r.platform == platform and r.rule == rule)


def day_before(now: datetime, zone: tzinfo) -> date:
    """Yesterday as the warehouse counts days: the last whole day a morning report covers."""
    return now.astimezone(zone).date() - timedelta(days=1)


def summarise(figures: QualityFigures, zone: str) -> QualitySummary:
    day, span = figures.day, figures.days_of_trend
    trend_days = tuple(day - timedelta(days=back) for back in range(span - 1, -1, -1))
    baseline_days = frozenset(day - timedelta(days=back) for back in range(1, span + 1))
    by_platform = _platform_days_by_name(figures)
    platforms = [_platform_quality(name, days, day, trend_days, baseline_days) for name, days in by_platform.items()]
    platforms.sort(key=lambda p: (*_worst_first(p), p.platform))
    order = {p.platform: index for index, p in enumerate(platforms)}
    rules = [_rule_quality(platform, rule, failures, by_platform.get(platform, {}), day, trend_days, baseline_days)
             for (platform, rule), failures in _rule_days_by_key(figures).items()]
    rules.sort(key=lambda r: (order.get(r.platform, len(order)), *_worst_first(r), r.rule))
    return QualitySummary(day=day, zone=zone, days_of_trend=span, trend_days=trend_days, platforms=tuple(platforms),
                          rules=tuple(rules), checked=sum(p.checked for p in platforms),
                          failed=sum(p.failed for p in platforms))


def _platform_days_by_name(figures: QualityFigures) -> dict[str, dict[date, PlatformDay]]:
    by_name: dict[str, dict[date, PlatformDay]] = {name: {} for name in figures.expected_platforms}
    for row in figures.platform_days:
        by_name.setdefault(row.platform or NO_PLATFORM, {})[row.day] = row
    return by_name


def _rule_days_by_key(figures: QualityFigures) -> dict[tuple[str, str], dict[date, int]]:
    by_key: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
    for row in figures.rule_days:
        by_key[(row.platform or NO_PLATFORM, row.rule)][row.day] = row.failed
    return by_key


def _platform_quality(name: str, days: dict[date, PlatformDay], day: date, trend_days: tuple[date, ...],
                      baseline_days: frozenset[date]) -> PlatformQuality:
    today = days.get(day)
    checked, failed = (today.checked, today.failed) if today else (0, 0)
    baseline = _rate(sum(days[d].failed for d in baseline_days if d in days),
                     sum(days[d].checked for d in baseline_days if d in days))
    rate = _rate(failed, checked)
    change = _change_points(rate, baseline)
    return PlatformQuality(
        platform=name, runs=today.runs if today else 0, checked=checked, failed=failed,
        batch_failures=today.batch_failures if today else 0, rate=rate, baseline_rate=baseline,
        change_points=change, trend=_trend(change),
        daily_rates=tuple(_rate(days[d].failed, days[d].checked) if d in days else None for d in trend_days))


def _rule_quality(platform: str, rule: str, failures: dict[date, int], days: dict[date, PlatformDay], day: date,
                  trend_days: tuple[date, ...], baseline_days: frozenset[date]) -> RuleQuality:
    def checked_on(d: date) -> int:
        return days[d].checked if d in days else 0

    rate = _rate(failures.get(day, 0), checked_on(day))
    baseline = _rate(sum(failures.get(d, 0) for d in baseline_days), sum(checked_on(d) for d in baseline_days))
    change = _change_points(rate, baseline)
    return RuleQuality(
        platform=platform, rule=rule, failed=failures.get(day, 0), rate=rate, baseline_rate=baseline,
        change_points=change, trend=_trend(change),
        rose_notably=_rose_notably(rate, baseline, checked_on(day)),
        daily_rates=tuple(_rate(failures.get(d, 0), checked_on(d)) for d in trend_days))


def _rose_notably(rate: float | None, baseline: float | None, checked: int) -> bool:
    if rate is None or baseline is None or checked < FEWEST_ROWS_TO_FLAG:
        return False
    risen_points = (rate - baseline) * 100
    return risen_points >= NOTABLE_RISE_POINTS and rate >= baseline * NOTABLE_RISE_FACTOR


def _rate(failed: int, checked: int) -> float | None:
    return failed / checked if checked else None


def _change_points(rate: float | None, baseline: float | None) -> float | None:
    return None if rate is None or baseline is None else (rate - baseline) * 100


def _trend(change_points: float | None) -> Trend:
    if change_points is None:
        return Trend.UNKNOWN
    if abs(change_points) < STEADY_BAND_POINTS:
        return Trend.STEADY
    return Trend.RISING if change_points > 0 else Trend.FALLING


def _worst_first(item: PlatformQuality | RuleQuality) -> tuple:
    return (item.rate is None, -(item.rate or 0.0))


# --- rendering ------------------------------------------------------------------------


def percent(rate: float | None) -> str:
    if rate is None:
        return NO_DATA
    if 0 < rate < 0.00005:  # would print as 0.00% and hide that something failed
        return "<0.01%"
    return f"{rate:.2%}"


def change_text(change_points: float | None, trend: Trend) -> str:
    if change_points is None:
        return "—"
    sign = "±" if trend is Trend.STEADY else ("+" if change_points > 0 else "−")
    return f"{ARROWS[trend]} {sign}{abs(change_points):.2f} pp"


def sparkline(rates: tuple[float | None, ...]) -> str:
    """One character per day, scaled from 0 to the series' highest rate; any failure shows
    above the floor, and a day without data is a dot."""
    highest = max((rate for rate in rates if rate is not None), default=0.0)
    return "".join(_spark(rate, highest) for rate in rates)


def _spark(rate: float | None, highest: float) -> str:
    if rate is None:
        return SPARK_NO_DATA
    if rate == 0 or highest == 0:
        return SPARK_LEVELS[0]
    return SPARK_LEVELS[max(1, round(rate / highest * (len(SPARK_LEVELS) - 1)))]


def render_markdown(summary: QualitySummary) -> str:
    lines = [f"# Data quality on {summary.day.isoformat()} ({summary.zone})", "", _headline(summary), ""]
    lines += _flagged_section(summary)
    lines += _platform_section(summary)
    lines += _rule_section(summary)
    lines += _trend_section(summary)
    lines += _reading_notes(summary)
    return "\n".join(lines) + "\n"


def _headline(summary: QualitySummary) -> str:
    if not summary.checked:
        return f"No rows were checked on {summary.day.isoformat()}: no quality suite ran that day."
    runs = sum(p.runs for p in summary.platforms)
    batch = sum(p.batch_failures for p in summary.platforms)
    return (f"{summary.checked:,} rows checked in {runs:,} suite run(s); {summary.failed:,} failed at least one rule "
            f"({percent(summary.rate)}). {batch} run(s) failed a batch-level check.")


def _flagged_section(summary: QualitySummary) -> list[str]:
    lines = ["## Rules to look at", ""]
    if not summary.flagged:
        return lines + [f"No rule's failure rate rose notably against the previous {summary.days_of_trend} days.", ""]
    lines += [f"- **{rule.platform}: {_cell(rule.rule)}**: {percent(rule.rate)} of rows on {summary.day.isoformat()} "
              f"against {percent(rule.baseline_rate)} over the previous {summary.days_of_trend} days "
              f"({change_text(rule.change_points, rule.trend)})" for rule in summary.flagged]
    return lines + [""]


def _platform_section(summary: QualitySummary) -> list[str]:
    lines = ["## By platform", ""]
    if not summary.platforms:
        return lines + ["No platform has an active shop or a quality run.", ""]
    lines += [f"| platform | suite runs | rows checked | rows failed | failure rate | "
              f"previous {summary.days_of_trend} days | change | batch-level failures |",
              "|---|---:|---:|---:|---:|---:|---|---:|"]
    for p in summary.platforms:
        lines.append(f"| {p.platform} | {p.runs:,} | {p.checked:,} | {p.failed:,} | {percent(p.rate)} | "
                     f"{percent(p.baseline_rate)} | {change_text(p.change_points, p.trend)} | {p.batch_failures:,} |")
    return lines + [""]


def _rule_section(summary: QualitySummary) -> list[str]:
    lines = ["## By platform and rule", ""]
    if not summary.rules:
        return lines + [f"No rule failed on any row in the last {summary.days_of_trend + 1} days.", ""]
    lines += [f"| platform | rule | rows failed | failure rate | previous {summary.days_of_trend} days | change | "
              f"last {summary.days_of_trend} days | flagged |",
              "|---|---|---:|---:|---:|---|---|---|"]
    lines += [f"| {r.platform} | {_cell(r.rule)} | {r.failed:,} | {percent(r.rate)} | {percent(r.baseline_rate)} | "
              f"{change_text(r.change_points, r.trend)} | {sparkline(r.daily_rates)} | "
              f"{'rose notably' if r.rose_notably else ''} |" for r in summary.rules]
    return lines + [""]


def _trend_section(summary: QualitySummary) -> list[str]:
    lines = [f"## Failure rate per day, last {summary.days_of_trend} days", ""]
    if not summary.platforms:
        return lines + ["Nothing to show.", ""]
    headers = " | ".join(f"{d:%m-%d}" for d in summary.trend_days)
    lines += [f"| platform | {headers} | trend |", "|---|" + "---:|" * len(summary.trend_days) + "---|"]
    for p in summary.platforms:
        cells = " | ".join(percent(rate) for rate in p.daily_rates)
        lines.append(f"| {p.platform} | {cells} | {sparkline(p.daily_rates)} |")
    return lines + [""]


def _reading_notes(summary: QualitySummary) -> list[str]:
    return [
        "How to read this: a platform's failure rate is the share of its checked rows that failed any rule; "
        "a rule's rate counts the rows failing that rule over the same checked rows, so one row failing "
        f"two rules counts in both. \"Previous {summary.days_of_trend} days\" pools the days before "
        f"{summary.day.isoformat()}; a change is in percentage points (pp). A rule is flagged when it rose by "
        f"{NOTABLE_RISE_POINTS:g} pp or more to at least {NOTABLE_RISE_FACTOR:g}× its previous rate, on "
        f"{FEWEST_ROWS_TO_FLAG} or more checked rows. \"{NO_DATA}\" means no rows were checked, which is not 0%. "
        f"In the sparklines {SPARK_NO_DATA} is a day without data.",
    ]


def _cell(text: str) -> str:
    """Rule texts are free prose: keep a `|` or a line break from splitting the table."""
    return " ".join(text.split()).replace("|", "\\|")


def rule_table(summary: QualitySummary) -> list[dict[str, str | int | bool]]:
    """The rows of the `data-quality-by-rule` table artifact, formatted as in the markdown."""
    return [{"platform": r.platform, "rule": r.rule, "rows failed": r.failed, "failure rate": percent(r.rate),
             f"previous {summary.days_of_trend} days": percent(r.baseline_rate),
             "change": change_text(r.change_points, r.trend), "trend": r.trend.value,
             f"last {summary.days_of_trend} days": sparkline(r.daily_rates), "rose notably": r.rose_notably}
            for r in summary.rules]
