"""The after-sales lifecycle of config/after_sales.yaml: which nodes a request takes, and why."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from oms.after_sales_rules import load_lifecycle
from oms.domain.refunds import Lifecycle, RequestFacts, plan, waits

LIFECYCLE = load_lifecycle("config/after_sales.yaml")


def facts(amount: str, kind: str = "refund_only", **overrides) -> RequestFacts:
    values = dict(kind=kind, amount=Decimal(amount), currency="CNY", reason_code="damaged", platform="taobao",
                  cross_border=False, skus=("SKU-0005",))
    values.update(overrides)
    return RequestFacts(**values)


def path(request: RequestFacts, lifecycle: Lifecycle = LIFECYCLE) -> dict[str, str]:
    return {step.node.name: step.action for step in plan(lifecycle, request).steps if step.action != "skip"}


def test_a_small_refund_only_is_approved_by_the_rule_and_says_which():
    decided = plan(LIFECYCLE, facts("30.00"))
    assert decided.auto_rule.name == "small-refund"
    assert not decided.needs_a_person
    (approval,) = [step for step in decided.steps if step.action == "auto"]
    assert approval.node.name == "supervisor_review"
    assert "approved by rule small-refund" in approval.why and "30.00 <= 50" in approval.why


def test_a_supervisor_alone_decides_up_to_200_and_operations_and_finance_above():
    assert path(facts("150.00")) == {"supervisor_review": "ask", "payout": "payout"}
    assert path(facts("350.00")) == {"operations_review": "ask", "finance_review": "ask", "payout": "payout"}


def test_a_returned_parcel_is_inspected_even_when_its_money_was_approved_by_rule():
    lifecycle = Lifecycle.from_mapping({
        "auto_approve": [{"name": "tiny", "when": {"amount_at_most": 50}}],
        "nodes": [{"name": "supervisor_review", "role": "supervisor"},
                  {"name": "warehouse_inspection", "kind": "check", "role": "warehouse",
                   "when": {"kinds": ["return_and_refund"]}},
                  {"name": "payout", "kind": "payout"}]})
    assert path(facts("20.00", kind="return_and_refund"), lifecycle) == \
        {"supervisor_review": "auto", "warehouse_inspection": "ask", "payout": "payout"}


def test_customs_is_on_the_path_of_a_cross_border_request_only():
    assert "customs" in path(facts("150.00", currency="SGD", cross_border=True))
    domestic = plan(LIFECYCLE, facts("150.00"))
    (customs,) = [step for step in domestic.steps if step.node.name == "customs"]
    assert (customs.action, customs.why) == ("skip", "the order is domestic")


def test_a_repeat_refunder_goes_through_risk_review_and_loses_the_small_refund_rule():
    repeat = facts("30.00", earlier_refunds=3)
    assert path(repeat) == {"risk_review": "ask", "supervisor_review": "ask", "payout": "payout"}


def test_a_switched_off_node_is_skipped_and_says_so():
    electronics = facts("150.00", kind="return_and_refund", skus=("SKU-0012",))
    (quality,) = [step for step in plan(LIFECYCLE, electronics).steps if step.node.name == "quality_check"]
    assert (quality.action, quality.why) == ("skip", "switched off")


def test_conditions_on_reason_channel_category_and_member_level():
    lifecycle = Lifecycle.from_mapping({"nodes": [
        {"name": "vip_desk", "role": "vip", "when": {"member_levels": ["gold"], "channels": ["jd"]}},
        {"name": "fraud_desk", "role": "risk", "when": {"reasons": ["not_received"], "categories": ["electronics"]}},
        {"name": "payout", "kind": "payout"}],
        "categories": {"electronics": ["SKU-001*"]}})
    assert "vip_desk" in path(facts("90", platform="jd", member_level="gold"), lifecycle)
    assert "vip_desk" not in path(facts("90", platform="taobao", member_level="gold"), lifecycle)
    assert "fraud_desk" in path(facts("90", reason_code="not_received", skus=("SKU-0013",)), lifecycle)
    assert "fraud_desk" not in path(facts("90", reason_code="not_received", skus=("SKU-0099",)), lifecycle)


def test_the_wait_is_cut_at_each_rung_of_the_ladder_and_ends_at_the_timeout():
    node = LIFECYCLE.node("supervisor_review")
    assert [(w.length, w.then_notify) for w in waits(node)] == [
        (timedelta(hours=2), "team_lead"), (timedelta(hours=2), "finance"), (timedelta(hours=20), None)]


def test_the_platform_deadline_shortens_the_wait_and_drops_the_rungs_after_it():
    node = LIFECYCLE.node("supervisor_review")
    assert [(w.length, w.then_notify) for w in waits(node, cap=timedelta(hours=3))] == [
        (timedelta(hours=2), "team_lead"), (timedelta(hours=1), None)]


@pytest.mark.parametrize("document, message", [
    ({"nodes": []}, "at least one node"),
    ({"nodes": [{"name": "a", "role": "x"}]}, "kind payout"),
    ({"nodes": [{"name": "a", "role": "x", "kind": "vote"}, {"name": "p", "kind": "payout"}]}, "kind must be"),
    ({"nodes": [{"name": "a", "role": "x", "timeout": "soon"}, {"name": "p", "kind": "payout"}]}, "duration"),
    ({"nodes": [{"name": "a", "role": "x", "when": {"amount_below": 5}}, {"name": "p", "kind": "payout"}]},
     "unknown key amount_below"),
    ({"nodes": [{"name": "a"}, {"name": "p", "kind": "payout"}]}, "role"),
    ({"nodes": [{"name": "a", "role": "x", "when": {"kinds": ["gift"]}}, {"name": "p", "kind": "payout"}]},
     "gift is not one of"),
])
def test_a_mistake_in_the_lifecycle_is_an_error_naming_it(document, message):
    with pytest.raises(ValueError, match=message):
        Lifecycle.from_mapping(document, source="after_sales.yaml")
