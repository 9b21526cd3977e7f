"""The daily data-quality report: rates, trends, which rules are flagged, and what the
operator reads in the markdown."""

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from oms.domain.quality_report import (
    NO_PLATFORM,
    PlatformDay,
    QualityFigures,
    RuleDay,
    Trend,
    day_before,
    percent,
    render_markdown,
    rule_table,
    sparkline,
    summarise,
)

DAY = date(2026, 3, 14)
PHONE = "receiver phone is not a valid number"
PROVINCE = "province is not a known province"


def before(days: int) -> date:
    return DAY - timedelta(days=days)


def steady_week(platform: str, checked: int = 1000, failed: int = 10, runs: int = 2) -> list[PlatformDay]:
    """The seven days before DAY, each alike."""
    return [PlatformDay(platform, before(back), runs, checked, failed, 0) for back in range(1, 8)]


def rule_week(platform: str, rule: str, failed: int) -> list[RuleDay]:
    return [RuleDay(platform, before(back), rule, failed) for back in range(1, 8)]


def figures(platform_days, rule_days=(), expected=(), days_of_trend: int = 7) -> QualityFigures:
    return QualityFigures(day=DAY, days_of_trend=days_of_trend, platform_days=tuple(platform_days),
                          rule_days=tuple(rule_days), expected_platforms=tuple(expected))


def pdd_phone_spike():
    """PDD's phone rule: 0.5% of rows all week, 4% today."""
    return figures(
        [*steady_week("pdd", failed=5), PlatformDay("pdd", DAY, 3, 1000, 40, 1)],
        [*rule_week("pdd", PHONE, 5), RuleDay("pdd", DAY, PHONE, 40)])


def test_a_rules_rate_is_its_failing_rows_over_the_platforms_checked_rows():
    summary = summarise(pdd_phone_spike(), "Asia/Shanghai")
    phone = summary.rule("pdd", PHONE)
    assert phone.rate == 0.04 and phone.failed == 40
    assert phone.baseline_rate == 0.005
    assert round(phone.change_points, 2) == 3.5 and phone.trend is Trend.RISING


def test_a_rule_that_jumps_from_half_a_percent_to_four_is_flagged():
    summary = summarise(pdd_phone_spike(), "Asia/Shanghai")
    assert [(r.platform, r.rule) for r in summary.flagged] == [("pdd", PHONE)]


def test_a_rule_already_failing_often_is_not_flagged_for_a_small_relative_rise():
    # 20% -> 21.5%: one and a half points, but barely above its usual level
    summary = summarise(figures(
        [*steady_week("jd", failed=200), PlatformDay("jd", DAY, 1, 1000, 215, 0)],
        [*rule_week("jd", PROVINCE, 200), RuleDay("jd", DAY, PROVINCE, 215)]), "Asia/Shanghai")
    assert summary.rule("jd", PROVINCE).trend is Trend.RISING
    assert summary.flagged == ()


def test_a_rise_on_a_handful_of_rows_is_not_flagged():
    summary = summarise(figures(
        [*steady_week("spreadsheet", checked=10, failed=0), PlatformDay("spreadsheet", DAY, 1, 5, 2, 0)],
        [RuleDay("spreadsheet", DAY, PHONE, 2)]), "Asia/Shanghai")
    assert summary.rule("spreadsheet", PHONE).rate == 0.4
    assert summary.flagged == ()


def test_a_rule_new_today_is_compared_with_a_baseline_of_zero():
    summary = summarise(figures([*steady_week("jd", failed=0), PlatformDay("jd", DAY, 1, 500, 25, 0)],
                                [RuleDay("jd", DAY, PHONE, 25)]), "Asia/Shanghai")
    phone = summary.rule("jd", PHONE)
    assert phone.baseline_rate == 0.0 and phone.rose_notably


def test_a_rule_that_stopped_failing_falls_to_zero_percent_on_a_day_with_checks():
    summary = summarise(figures([*steady_week("jd"), PlatformDay("jd", DAY, 1, 1000, 0, 0)],
                                rule_week("jd", PROVINCE, 10)), "Asia/Shanghai")
    province = summary.rule("jd", PROVINCE)
    assert province.rate == 0.0 and province.trend is Trend.FALLING


def test_a_platform_without_checks_today_has_no_rate_rather_than_zero():
    summary = summarise(figures(steady_week("jd"), rule_week("jd", PROVINCE, 10), expected=["jd", "taobao"]),
                        "Asia/Shanghai")
    jd, taobao = summary.platform("jd"), summary.platform("taobao")
    assert jd.rate is None and jd.trend is Trend.UNKNOWN and jd.baseline_rate == 0.01
    assert taobao.rate is None and taobao.baseline_rate is None and taobao.runs == 0
    assert summary.rule("jd", PROVINCE).rate is None


def test_the_baseline_pools_rows_so_a_quiet_day_weighs_less_than_a_busy_one():
    week = [PlatformDay("jd", before(1), 1, 10, 5, 0), PlatformDay("jd", before(2), 1, 990, 5, 0)]
    summary = summarise(figures([*week, PlatformDay("jd", DAY, 1, 100, 1, 0)]), "Asia/Shanghai")
    assert summary.platform("jd").baseline_rate == 0.01  # 10 of 1000, not the mean of 50% and 0.5%


def test_platforms_are_listed_worst_first_and_those_without_data_last():
    summary = summarise(figures([PlatformDay("jd", DAY, 1, 100, 1, 0), PlatformDay("pdd", DAY, 1, 100, 9, 0),
                                 PlatformDay(None, DAY, 1, 100, 0, 0)], expected=["amazon"]), "Asia/Shanghai")
    assert [p.platform for p in summary.platforms] == ["pdd", "jd", NO_PLATFORM, "amazon"]
    assert summary.checked == 300 and summary.failed == 10


def test_the_daily_series_covers_the_trend_days_ending_today_with_gaps_as_none():
    summary = summarise(figures([PlatformDay("jd", before(6), 1, 100, 2, 0), PlatformDay("jd", DAY, 1, 100, 4, 0)]),
                        "Asia/Shanghai")
    assert summary.trend_days[0] == before(6) and summary.trend_days[-1] == DAY
    assert summary.platform("jd").daily_rates == (0.02, None, None, None, None, None, 0.04)


def test_a_sparkline_rises_with_the_rate_and_marks_days_without_data():
    assert sparkline((0.0, 0.01, None, 0.02, 0.04)) == "▁▃·▅█"
    assert sparkline((0.0, 0.0)) == "▁▁"
    assert sparkline((0.0001, 0.5)) == "▂█"  # a failure never hides on the floor


def test_percentages_never_show_a_failure_as_zero_or_missing_data_as_zero():
    assert percent(None) == "no data"
    assert percent(0.00001) == "<0.01%"
    assert percent(0.0) == "0.00%"
    assert percent(0.04) == "4.00%"


def test_the_markdown_names_the_flagged_rule_with_its_rise_and_marks_missing_platforms():
    markdown = render_markdown(summarise(
        figures([*steady_week("pdd", failed=5), PlatformDay("pdd", DAY, 3, 1000, 40, 1)],
                [*rule_week("pdd", PHONE, 5), RuleDay("pdd", DAY, PHONE, 40)], expected=["pdd", "lazada"]),
        "Asia/Shanghai"))
    assert "# Data quality on 2026-03-14 (Asia/Shanghai)" in markdown
    assert (f"- **pdd: {PHONE}**: 4.00% of rows on 2026-03-14 against 0.50% over the previous 7 days (↑ +3.50 pp)"
            in markdown)
    assert "| pdd | 3 | 1,000 | 40 | 4.00% | 0.50% | ↑ +3.50 pp | 1 |" in markdown
    assert "| lazada | 0 | 0 | 0 | no data | no data | — | 0 |" in markdown
    assert "| platform | 03-08 | 03-09 | 03-10 | 03-11 | 03-12 | 03-13 | 03-14 | trend |" in markdown
    assert "| pdd | 0.50% | 0.50% | 0.50% | 0.50% | 0.50% | 0.50% | 4.00% | ▂▂▂▂▂▂█ |" in markdown


def test_the_markdown_says_when_nothing_was_checked():
    markdown = render_markdown(summarise(figures([]), "Asia/Shanghai"))
    assert "No rows were checked on 2026-03-14" in markdown
    assert "No rule's failure rate rose notably" in markdown


def test_a_rule_text_with_a_pipe_does_not_break_the_table():
    rule = "status | payment status mismatch"
    markdown = render_markdown(summarise(figures([PlatformDay("jd", DAY, 1, 100, 1, 0)], [RuleDay("jd", DAY, rule, 1)]),
                                         "Asia/Shanghai"))
    [row] = [line for line in markdown.splitlines() if line.startswith("| jd | status")]
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 8 and cells[1].strip() == "status \\| payment status mismatch"


def test_the_rule_table_carries_the_figures_of_the_markdown():
    [row] = rule_table(summarise(pdd_phone_spike(), "Asia/Shanghai"))
    assert row["platform"] == "pdd" and row["rule"] == PHONE and row["failure rate"] == "4.00%"
    assert row["trend"] == "rising" and row["rose notably"] is True and row["previous 7 days"] == "0.50%"


def test_the_default_day_is_yesterday_in_the_warehouse_time_zone():
    shanghai = ZoneInfo("Asia/Shanghai")
    # 17:00 UTC on the 14th is already 01:00 on the 15th in Shanghai
    assert day_before(datetime(2026, 3, 14, 17, 0, tzinfo=timezone.utc), shanghai) == DAY
    assert day_before(datetime(2026, 3, 14, 15, 0, tzinfo=timezone.utc), shanghai) == before(1)
