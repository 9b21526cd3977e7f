"""`data-quality-summary` over quality runs seeded across eight days and three platforms:
what an operator reads in the artifacts, on the warehouse's own days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from flows.quality_summary import ARTIFACT_KEY, RULE_TABLE_KEY, data_quality_summary
from oms.db.schema import quality_rule_failures, quality_runs, shops
from oms.domain.quality_report import Trend, day_before
from tests.flows.test_pipeline import latest_artifact_table
from tests.flows.test_sla_watch import latest_markdown

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)
PHONE = "receiver phone is not a valid mobile number"
PROVINCE = "province is not one of the 34 provincial divisions"
ROW_COUNT_SHORT = [{"check": "row count", "expected": 420, "stored": 400}]


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(timezone.utc)


def record_run(db, platform: str, when: datetime, checked: int, rules: dict[str, int],
               batch_failures: list | None = None) -> None:
    """One suite run as the validate step records it: failing rows are those failing any
    rule (here each row fails one rule at most)."""
    with db.begin() as conn:
        run_id = conn.execute(insert(quality_runs).values(
            suite="orders", platform=platform, shop_code=f"{platform}-shop", checked=checked,
            failed_rows=sum(rules.values()), batch_failures=batch_failures or [], validated_at=when)
            .returning(quality_runs.c.id)).scalar_one()
        if rules:
            conn.execute(insert(quality_rule_failures),
                         [{"run_id": run_id, "rule": rule, "failed": failed} for rule, failed in rules.items()])


def add_shop(db, platform: str) -> None:
    with db.begin() as conn:
        conn.execute(insert(shops).values(code=f"{platform}-shop", platform=platform, name=platform,
                                          base_url="http://127.0.0.1", credentials={}, active=True))


@pytest.fixture
def a_bad_day_on_pdd(db):
    """PDD's phone rule fails 0.5% of rows for a week, then 4% on DAY (with one run short
    of the platform's own count); JD's province rule improves from 3% to 1%; Taobao's shop
    is active but none of its batches was validated."""
    for back in range(1, 8):
        record_run(db, "pdd", local(DAY - timedelta(days=back)), 1000, {PHONE: 5})
        record_run(db, "jd", local(DAY - timedelta(days=back), 9), 1000, {PROVINCE: 30})
    record_run(db, "pdd", local(DAY, 8), 600, {PHONE: 24})
    record_run(db, "pdd", local(DAY, 15), 400, {PHONE: 16}, batch_failures=ROW_COUNT_SHORT)
    record_run(db, "jd", local(DAY, 10), 1000, {PROVINCE: 10})
    for platform in ("pdd", "jd", "taobao"):
        add_shop(db, platform)


def row_of(markdown: str, *starts: str) -> str:
    [row] = [line for line in markdown.splitlines() if line.startswith("| " + " | ".join(starts) + " |")]
    return row


def test_an_operator_reads_a_rules_failure_rate_its_rise_and_the_flag(a_bad_day_on_pdd):
    summary = data_quality_summary(day=DAY)
    markdown = latest_markdown(ARTIFACT_KEY)

    assert markdown.startswith("# Data quality on 2026-11-20 (Asia/Shanghai)")
    assert row_of(markdown, "pdd", PHONE) == (f"| pdd | {PHONE} | 40 | 4.00% | 0.50% | ↑ +3.50 pp | ▂▂▂▂▂▂█ "
                                              "| rose notably |")
    assert f"- **pdd: {PHONE}**: 4.00% of rows on 2026-11-20 against 0.50% over the previous 7 days" in markdown
    assert [(rule.platform, rule.rule) for rule in summary.flagged] == [("pdd", PHONE)]


def test_a_rule_that_improved_points_down_and_is_not_flagged(a_bad_day_on_pdd):
    summary = data_quality_summary(day=DAY)
    markdown = latest_markdown(ARTIFACT_KEY)

    assert row_of(markdown, "jd", PROVINCE) == f"| jd | {PROVINCE} | 10 | 1.00% | 3.00% | ↓ −2.00 pp | ██████▃ |  |"
    assert summary.rule("jd", PROVINCE).trend is Trend.FALLING


def test_a_platform_with_an_active_shop_but_no_runs_reads_no_data_not_zero(a_bad_day_on_pdd):
    data_quality_summary(day=DAY)
    markdown = latest_markdown(ARTIFACT_KEY)

    by_platform, trend = [line for line in markdown.splitlines() if line.startswith("| taobao |")]
    assert by_platform == "| taobao | 0 | 0 | 0 | no data | no data | — | 0 |"
    assert trend == "| taobao | " + " | ".join(["no data"] * 7) + " | ······· |"
    assert "taobao" not in markdown.split("## By platform and rule")[1].split("##")[0]


def test_platforms_are_listed_worst_first_with_their_batch_level_failures(a_bad_day_on_pdd):
    summary = data_quality_summary(day=DAY)
    markdown = latest_markdown(ARTIFACT_KEY)

    assert [p.platform for p in summary.platforms] == ["pdd", "jd", "taobao"]
    by_platform = markdown.split("## By platform\n")[1].split("##")[0]
    assert "| pdd | 2 | 1,000 | 40 | 4.00% | 0.50% | ↑ +3.50 pp | 1 |" in by_platform
    assert "| jd | 1 | 1,000 | 10 | 1.00% | 3.00% | ↓ −2.00 pp | 0 |" in by_platform
    assert "2,000 rows checked in 3 suite run(s); 50 failed at least one rule (2.50%). " \
           "1 run(s) failed a batch-level check." in markdown


def test_the_trend_shows_the_last_seven_days_one_column_each(a_bad_day_on_pdd):
    data_quality_summary(day=DAY)
    markdown = latest_markdown(ARTIFACT_KEY)

    assert "| platform | 11-14 | 11-15 | 11-16 | 11-17 | 11-18 | 11-19 | 11-20 | trend |" in markdown
    trend_rows = markdown.split("## Failure rate per day")[1]
    assert "| jd | 3.00% | 3.00% | 3.00% | 3.00% | 3.00% | 3.00% | 1.00% | ██████▃ |" in trend_rows


def test_the_rule_table_artifact_holds_the_same_figures(a_bad_day_on_pdd):
    data_quality_summary(day=DAY)
    rows = {(row["platform"], row["rule"]): row for row in latest_artifact_table(RULE_TABLE_KEY)}

    assert set(rows) == {("pdd", PHONE), ("jd", PROVINCE)}
    phone = rows[("pdd", PHONE)]
    assert (phone["rows failed"], phone["failure rate"], phone["previous 7 days"], phone["trend"],
            phone["rose notably"]) == (40, "4.00%", "0.50%", "rising", True)


def test_runs_count_on_the_warehouse_day_not_the_utc_day(db):
    # 23:50 and 00:10 in Shanghai are 15:50 and 16:10 UTC of one and the same UTC date
    record_run(db, "amazon", local(DAY, 23, 50), 100, {PHONE: 1})
    record_run(db, "amazon", local(DAY + timedelta(days=1), 0, 10), 300, {PHONE: 30})
    assert local(DAY, 23, 50).date() == local(DAY + timedelta(days=1), 0, 10).date()

    on_the_day = data_quality_summary(day=DAY)
    next_day = data_quality_summary(day=DAY + timedelta(days=1))

    assert (on_the_day.platform("amazon").checked, on_the_day.rule("amazon", PHONE).rate) == (100, 0.01)
    assert (next_day.platform("amazon").checked, next_day.rule("amazon", PHONE).rate) == (300, 0.1)
    assert next_day.rule("amazon", PHONE).baseline_rate == 0.01


def test_without_a_day_it_reports_yesterday_in_the_warehouse_time_zone(db):
    summary = data_quality_summary()

    assert summary.day == day_before(datetime.now(timezone.utc), SHANGHAI)
    assert f"No rows were checked on {summary.day.isoformat()}" in latest_markdown(ARTIFACT_KEY)


def test_a_trend_of_no_days_is_refused(db):
    with pytest.raises(ValueError, match="days_of_trend"):
        data_quality_summary(day=DAY, days_of_trend=0)
