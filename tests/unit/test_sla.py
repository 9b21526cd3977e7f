"""Ship-by deadlines: which rule sets an order's deadline, its stage, and the alerts it raises."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from oms.domain.sla import (
    PLATFORM_SOURCE,
    RULE_SOURCE,
    UNROUTED,
    Escalation,
    OrderForSla,
    PlatformRule,
    ProductRule,
    SlaRules,
    Stage,
    WatchedOrder,
    at_risk_by_warehouse,
    escalations,
    ship_by_deadline,
    sla_stage,
    stage_to_store,
    time_left,
)
from oms.sla_rules import load_sla_rules

SLA_YAML = Path(__file__).resolve().parents[2] / "config" / "sla.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The controlled clock: every test reads time from here, never from the machine.
PAID = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
WARN = timedelta(hours=2)


@pytest.fixture(scope="module")
def rules() -> SlaRules:
    return load_sla_rules(SLA_YAML)


def order(platform="jd", *skus, paid_at=PAID, created_at=None, ship_by=None, order_id=1):
    return OrderForSla(order_id=order_id, platform=platform,
                       created_at=created_at or (paid_at or PAID) - timedelta(minutes=5),
                       skus=skus or ("SKU-1",), paid_at=paid_at, ship_by=ship_by)


def write(tmp_path, text):
    path = tmp_path / "sla.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# deadlines
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "hours"), [
    ("jd", 24), ("pdd", 24), ("taobao", 48), ("douyin", 72),
    ("shopee", 48), ("lazada", 48), ("amazon", 48), ("shopify", 48),
])
def test_each_platform_counts_its_default_hours_from_payment(rules, platform, hours):
    deadline = ship_by_deadline(order(platform), rules)
    assert deadline.at == PAID + timedelta(hours=hours)
    assert deadline.source == RULE_SOURCE
    assert deadline.rule == f"the {platform} rule"


def test_a_platform_the_file_does_not_name_gets_the_default_hours(rules):
    deadline = ship_by_deadline(order("kuaishou"), rules)
    assert deadline.at == PAID + timedelta(hours=rules.default_hours)
    assert deadline.rule == "the default rule"


def test_an_order_without_payment_time_counts_from_its_creation(rules):
    created = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
    deadline = ship_by_deadline(order("jd", paid_at=None, created_at=created), rules)
    assert deadline.at == created + timedelta(hours=24)
    assert "no payment time" in deadline.explanation


def test_the_platforms_own_ship_by_wins_over_the_configured_rule(rules):
    # later than jd's 24 h would be, so the platform's time is not merely the earliest
    platform_says = (PAID + timedelta(hours=30)).astimezone(UTC)
    deadline = ship_by_deadline(order("jd", "TEE-1", ship_by=platform_says), rules)
    assert deadline.at == platform_says
    assert deadline.source == PLATFORM_SOURCE
    assert "wins over the configured rules" in deadline.explanation


def test_a_presale_sku_gets_the_presale_hours_even_on_a_24_hour_platform(rules):
    deadline = ship_by_deadline(order("jd", "PRE-DRESS-01"), rules)
    assert deadline.at == PAID + timedelta(hours=72)
    assert deadline.rule == "presale"
    assert "PRE-DRESS-01 matches presale" in deadline.explanation


def test_the_earliest_line_sets_the_orders_deadline(rules):
    deadline = ship_by_deadline(order("taobao", "PRE-1", "TEE-1"), rules)
    assert deadline.at == PAID + timedelta(hours=48)
    assert deadline.rule == "the taobao rule"
    assert "TEE-1 follows the taobao rule" in deadline.explanation
    assert "earliest of its lines" in deadline.explanation


def test_a_fixed_presale_date_is_a_lines_deadline_and_can_be_the_earliest():
    fixed = datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI)
    rules = SlaRules(platforms={"jd": PlatformRule(24)},
                     products=(ProductRule("campaign", ("P1212-*",), ship_by=fixed),))
    deadline = ship_by_deadline(order("jd", "TEE-1", "P1212-A"), rules)
    assert deadline.at == fixed
    assert deadline.rule == "campaign"


def test_the_first_matching_product_rule_wins():
    rules = SlaRules(products=(ProductRule("exact", ("PRE-9",), hours=10),
                               ProductRule("presale", ("PRE-*",), hours=72)))
    assert ship_by_deadline(order("jd", "PRE-9"), rules).rule == "exact"
    assert ship_by_deadline(order("jd", "PRE-8"), rules).rule == "presale"


def test_a_product_rule_limited_to_platforms_skips_other_platforms():
    rules = SlaRules(platforms={"jd": PlatformRule(24)},
                     products=(ProductRule("tmall-presale", ("PRE-*",), hours=72, platforms=("taobao",)),))
    assert ship_by_deadline(order("jd", "PRE-1"), rules).rule == "the jd rule"
    assert ship_by_deadline(order("taobao", "PRE-1"), rules).rule == "tmall-presale"


def test_an_order_paid_after_the_cutoff_counts_from_the_next_local_midnight():
    rules = SlaRules(platforms={"jd": PlatformRule(24)}, cutoff=time(16, 0))
    before = datetime(2026, 12, 1, 15, 59, tzinfo=SHANGHAI)
    at_cutoff = datetime(2026, 12, 1, 16, 0, tzinfo=SHANGHAI)
    assert ship_by_deadline(order("jd", paid_at=before), rules).at == before + timedelta(hours=24)
    late = ship_by_deadline(order("jd", paid_at=at_cutoff), rules)
    assert late.at == datetime(2026, 12, 3, 0, 0, tzinfo=SHANGHAI)
    assert "16:00 cut-off" in late.explanation


def test_the_cutoff_uses_the_rules_time_zone_not_utc():
    rules = SlaRules(platforms={"jd": PlatformRule(24)}, cutoff=time(16, 0))
    paid = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai: after the cut-off
    assert ship_by_deadline(order("jd", paid_at=paid), rules).at == datetime(2026, 12, 3, tzinfo=SHANGHAI)


def test_a_naive_payment_time_is_refused(rules):
    with pytest.raises(ValueError, match="timezone-aware"):
        ship_by_deadline(order("jd", paid_at=datetime(2026, 12, 1, 10, 0)), rules)


# ---------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------

DEADLINE = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("now", "stage"), [
    (DEADLINE - WARN - timedelta(minutes=1), Stage.OK),
    (DEADLINE - WARN, Stage.WARNING),  # exactly two hours before
    (DEADLINE - timedelta(minutes=1), Stage.WARNING),
    (DEADLINE, Stage.WARNING),  # the deadline minute itself is not yet late
    (DEADLINE + timedelta(minutes=1), Stage.BREACHED),
    (DEADLINE + timedelta(seconds=1), Stage.BREACHED),
])
def test_the_stage_at_each_boundary(now, stage):
    assert sla_stage(DEADLINE, now, None, WARN) == stage


def test_the_warning_window_is_configurable():
    now = DEADLINE - timedelta(minutes=90)
    assert sla_stage(DEADLINE, now, None, timedelta(hours=2)) == Stage.WARNING
    assert sla_stage(DEADLINE, now, None, timedelta(hours=1)) == Stage.OK


def test_a_tracking_number_pushed_by_the_deadline_is_done_even_later():
    assert sla_stage(DEADLINE, DEADLINE + timedelta(days=3), DEADLINE, WARN) == Stage.DONE


def test_a_tracking_number_pushed_after_the_deadline_is_done_late():
    pushed = DEADLINE + timedelta(minutes=1)
    assert sla_stage(DEADLINE, pushed, pushed, WARN) == Stage.DONE_LATE


def test_stages_compare_instants_not_wall_clocks():
    now_utc = (DEADLINE + timedelta(minutes=1)).astimezone(UTC)
    assert sla_stage(DEADLINE, now_utc, None, WARN) == Stage.BREACHED


# ---------------------------------------------------------------------------
# escalations
# ---------------------------------------------------------------------------


def watch(stages):
    """Run the flow's loop over successive stages: events emitted, stored stage carried."""
    stored, emitted = None, []
    for stage in stages:
        emitted += escalations(stored, stage)
        stored = stage_to_store(stored, stage)
    return emitted


def test_a_warning_then_a_breach_each_fire_once_and_in_order():
    stages = [Stage.OK, Stage.WARNING, Stage.WARNING, Stage.BREACHED, Stage.BREACHED, Stage.DONE_LATE]
    assert watch(stages) == [Escalation.WARNING, Escalation.BREACH]


def test_a_breach_without_a_warning_first_emits_only_the_breach():
    assert escalations(Stage.OK, Stage.BREACHED) == [Escalation.BREACH]
    assert escalations(None, Stage.BREACHED) == [Escalation.BREACH]


def test_an_order_done_in_time_raises_nothing_more():
    assert watch([Stage.OK, Stage.WARNING, Stage.DONE, Stage.DONE]) == [Escalation.WARNING]


def test_a_late_push_between_runs_still_emits_the_breach_nobody_heard():
    assert escalations(Stage.WARNING, Stage.DONE_LATE) == [Escalation.BREACH]


def test_an_order_first_seen_already_shipped_late_pages_nobody():
    assert escalations(None, Stage.DONE_LATE) == []
    assert escalations(None, Stage.DONE) == []


def test_a_deadline_moved_later_does_not_rearm_the_warning():
    assert watch([Stage.WARNING, Stage.OK, Stage.WARNING]) == [Escalation.WARNING]


def test_a_first_sight_in_warning_warns():
    assert escalations(None, Stage.WARNING) == [Escalation.WARNING]
    assert escalations(None, Stage.OK) == []


# ---------------------------------------------------------------------------
# at risk, by warehouse
# ---------------------------------------------------------------------------


def watched(order_id, warehouse, minutes_from_now, stage):
    return WatchedOrder(order_id, "jd", f"JD{order_id}", warehouse,
                        DEADLINE + timedelta(minutes=minutes_from_now), stage)


def test_orders_at_risk_are_grouped_by_warehouse_and_sorted_by_deadline():
    rows = at_risk_by_warehouse([
        watched(1, "WH-SH", 90, Stage.WARNING),
        watched(2, "WH-GZ", 30, Stage.WARNING),
        watched(3, "WH-SH", -5, Stage.BREACHED),
        watched(4, "WH-SH", 600, Stage.OK),  # not at risk
        watched(5, "WH-GZ", -1, Stage.DONE_LATE),  # finished: nothing to do
        watched(6, None, 45, Stage.WARNING),
    ], now=DEADLINE)
    assert list(rows) == ["WH-SH", "WH-GZ", UNROUTED]
    assert [row.order_id for row in rows["WH-SH"]] == [3, 1]
    assert [row.minutes_left for row in rows["WH-SH"]] == [-5, 90]
    assert [row.order_id for row in rows["WH-GZ"]] == [2]
    assert rows[UNROUTED][0].stage == Stage.WARNING


def test_an_at_risk_row_keeps_the_shop_and_the_step_reached():
    packing = WatchedOrder(1, "jd", "JD1", "WH-SH", DEADLINE, Stage.WARNING, shop_code="jd-flagship",
                           step="packed")
    [row] = at_risk_by_warehouse([packing], now=DEADLINE)["WH-SH"]
    assert (row.shop_code, row.step) == ("jd-flagship", "packed")


@pytest.mark.parametrize(("minutes", "text"), [
    (125, "2 h 05 min left"), (59, "59 min left"), (0, "0 min left"),
    (-1, "overdue by 1 min"), (-60, "overdue by 1 h 00 min"),
])
def test_time_left_reads_as_hours_and_minutes(minutes, text):
    assert time_left(minutes) == text


def test_one_second_past_the_deadline_shows_as_a_minute_late():
    late = WatchedOrder(1, "jd", "JD1", "WH-SH", DEADLINE - timedelta(seconds=1), Stage.BREACHED)
    assert at_risk_by_warehouse([late], now=DEADLINE)["WH-SH"][0].minutes_left == -1


# ---------------------------------------------------------------------------
# the file
# ---------------------------------------------------------------------------


def test_the_default_sla_file_loads(rules):
    assert rules.timezone == "Asia/Shanghai"
    assert rules.warn_before == timedelta(hours=2)
    assert rules.cutoff is None
    assert {"jd", "pdd", "taobao", "douyin", "shopee", "lazada", "amazon"} <= set(rules.platforms)
    assert [rule.name for rule in rules.products] == ["presale"]


def test_the_settings_point_at_the_default_sla_file():
    from oms.config import Settings
    assert Settings.model_fields["sla_rules_path"].default == Path("config/sla.yaml")


def test_a_cutoff_and_a_fixed_date_are_read_from_the_file(tmp_path):
    rules = load_sla_rules(write(tmp_path, (
        'cutoff: "16:30"\n'
        "platforms:\n  jd: {hours: 24, cutoff: 15:00}\n"
        "products:\n  campaign:\n    skus: [P1212-*]\n    ship_by: 2026-12-20 23:59:00\n")))
    assert rules.cutoff == time(16, 30)
    assert rules.cutoff_for("jd") == time(15, 0)  # unquoted YAML reads 15:00 as 900
    assert rules.products[0].ship_by == datetime(2026, 12, 20, 23, 59, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("text", "key"), [
    ("platforms:\n  jd: {hours: -1}\n", "platforms.jd.hours"),
    ("platforms:\n  jd: {hours: 24, cutof: '16:00'}\n", "platforms.jd.cutof"),
    ("platforms:\n  jd: {}\n", "platforms.jd.hours"),
    ("products:\n  presale: {skus: [], hours: 72}\n", "products.presale.skus"),
    ("products:\n  presale: {skus: [PRE-*]}\n", "products.presale"),
    ("products:\n  presale: {skus: [PRE-*], ship_by: soon}\n", "products.presale.ship_by"),
    ("timezone: Asia/Shangai\n", "timezone"),
    ("cutoff: '25:00'\n", "cutoff"),
    ("warn_before_minutes: yes\n", "warn_before_minutes"),
    ("warn_befor_minutes: 60\n", "warn_befor_minutes"),
    ("default_hours: 0\n", "default_hours"),
])
def test_a_mistake_in_the_file_names_the_file_and_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as raised:
        load_sla_rules(path)
    message = str(raised.value)
    assert message.startswith(f"{path.resolve()}: {key}: "), message


def test_a_file_that_is_not_yaml_says_so(tmp_path):
    with pytest.raises(ValueError, match="not valid YAML"):
        load_sla_rules(write(tmp_path, "platforms: [\n"))


def test_a_missing_file_says_it_cannot_be_read(tmp_path):
    with pytest.raises(ValueError, match="cannot read the SLA rules"):
        load_sla_rules(tmp_path / "absent.yaml")
