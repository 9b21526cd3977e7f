"""The scan rule a packer meets at the bench: forward only, harmless repeats, a weight
that must be given and is checked, and a loud stop for a cancelled order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from oms.domain.warehouse_steps import (
    HANDED_OVER,
    PACKED,
    PRINTED,
    WEIGHED,
    Parcel,
    ParcelShipment,
    Scan,
    ScanPolicy,
    StepRecord,
    Verdict,
    judge_scan,
    malformed,
    weight_flag,
    with_step,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def parcel(*steps: str, status: str = "label_created", cancelled: bool = False, expected: int | None = 1000,
           merged: int = 1) -> Parcel:
    records = {step: StepRecord(step, T0 + timedelta(minutes=i), "bench-1", "li") for i, step in enumerate(steps)}
    shipments = tuple(ParcelShipment(100 + n, f"ORDER-{n + 1}", status, cancelled and n == 0,
                                     T0 if status == "picked_up" else None, dict(records))
                      for n in range(merged))
    return Parcel("SF1", shipments, expected)


def scan(step: str, weight: int | None = None) -> Scan:
    return Scan(step, "SF1", weight, station="bench-2", operator="wang")


def test_the_four_steps_in_order_are_each_accepted():
    state = parcel()
    for step, weight in ((PRINTED, None), (PACKED, None), (WEIGHED, 1000), (HANDED_OVER, None)):
        decision = judge_scan(scan(step, weight), state)
        assert decision.verdict is Verdict.ACCEPTED, decision.message
        assert decision.shipment_ids == (100,)
        state = with_step(state, decision.shipment_ids, StepRecord(step, T0, "bench-2", "wang", weight))
    assert set(state.shipments[0].steps) == {PRINTED, PACKED, WEIGHED, HANDED_OVER}


def test_a_repeated_scan_changes_nothing_and_says_when_it_was_first_scanned():
    decision = judge_scan(scan(PACKED), parcel(PRINTED, PACKED))
    assert decision.verdict is Verdict.REPEATED and decision.shipment_ids == ()
    assert "already scanned packed at 2026-11-02 09:01:00 UTC (bench-1, li)" in decision.message


def test_times_in_messages_are_on_the_warehouse_clock():
    from zoneinfo import ZoneInfo

    decision = judge_scan(scan(PACKED), parcel(PRINTED, PACKED),
                          ScanPolicy(display_zone=ZoneInfo("Asia/Shanghai")))
    assert "17:01:00 CST" in decision.message


def test_going_back_a_step_is_refused():
    decision = judge_scan(scan(PACKED), parcel(PRINTED, WEIGHED))
    assert decision.verdict is Verdict.REFUSED
    assert "already weighed" in decision.message and "only move forward" in decision.message


def test_printing_may_be_skipped_because_the_scanned_label_proves_it():
    assert judge_scan(scan(PACKED), parcel()).verdict is Verdict.ACCEPTED


def test_weighing_may_be_skipped_only_where_the_station_is_configured_so():
    refused = judge_scan(scan(HANDED_OVER), parcel(PRINTED, PACKED))
    assert refused.verdict is Verdict.REFUSED and "not weighed yet" in refused.message
    no_scale = ScanPolicy(optional_steps=frozenset({PRINTED, WEIGHED}))
    assert judge_scan(scan(HANDED_OVER), parcel(PRINTED, PACKED), no_scale).verdict is Verdict.ACCEPTED


def test_packing_is_never_skipped_by_default():
    decision = judge_scan(scan(WEIGHED, 1000), parcel(PRINTED))
    assert decision.verdict is Verdict.REFUSED and "scan packed first" in decision.message


def test_the_handover_cannot_be_made_optional():
    with pytest.raises(ValueError, match="handover"):
        ScanPolicy(optional_steps=frozenset({HANDED_OVER}))


def test_weighing_without_a_weight_is_refused():
    decision = judge_scan(scan(WEIGHED), parcel(PRINTED, PACKED))
    assert decision.verdict is Verdict.REFUSED and "weight" in decision.message
    assert malformed(Scan(WEIGHED, "SF1", -5)) != []
    assert malformed(Scan("boxed", "SF1")) == ["unknown step 'boxed'; steps are printed, packed, weighed, handed_over"]


def test_a_weight_far_off_is_accepted_but_flagged():
    decision = judge_scan(scan(WEIGHED, 1600), parcel(PRINTED, PACKED, expected=1000))
    assert decision.verdict is Verdict.ACCEPTED
    assert decision.weight_flag and "600 g heavier than the 1000 g" in decision.weight_flag
    assert decision.message.startswith("CHECK:")


@pytest.mark.parametrize(("weighed", "expected", "flagged"), [
    (1190, 1000, False),  # within 20 % (200 g is the larger allowance here too)
    (1250, 1000, True),
    (300, 150, False),  # a light parcel: the 200 g allowance covers box and filling
    (400, 150, True),
    (5900, 5000, False),  # 20 % of a heavy one is 1000 g
    (3900, 5000, True),
])
def test_the_tolerance_is_the_larger_of_the_share_and_the_grams(weighed, expected, flagged):
    assert (weight_flag(weighed, expected) is not None) is flagged


def test_no_flag_when_the_expected_weight_is_unknown():
    decision = judge_scan(scan(WEIGHED, 9999), parcel(PRINTED, PACKED, expected=None))
    assert decision.verdict is Verdict.ACCEPTED and decision.weight_flag is None


def test_a_tighter_tolerance_flags_what_the_default_lets_pass():
    strict = ScanPolicy(weight_tolerance_ratio=0.05, weight_tolerance_grams=50)
    assert weight_flag(1100, 1000) is None
    assert weight_flag(1100, 1000, strict) is not None


@pytest.mark.parametrize("step", [PRINTED, PACKED, WEIGHED, HANDED_OVER])
def test_a_cancelled_order_stops_the_packer_whatever_the_step(step):
    decision = judge_scan(scan(step, 1000), parcel(PRINTED, PACKED, cancelled=True))
    assert decision.verdict is Verdict.REFUSED
    assert decision.message == "STOP: order ORDER-1 cancelled on the platform, do not ship; put the goods back"


def test_a_voided_waybill_stops_the_packer_even_without_a_weight():
    decision = judge_scan(scan(WEIGHED), parcel(PRINTED, status="voided"))
    assert decision.verdict is Verdict.REFUSED
    assert decision.message.startswith("STOP: this waybill was voided, do not ship with this label")
    cancelled = judge_scan(scan(WEIGHED), parcel(PRINTED, status="voided", cancelled=True))
    assert cancelled.message.startswith("STOP: order ORDER-1 cancelled on the platform")


def test_a_parcel_the_carrier_collected_is_refused():
    decision = judge_scan(scan(HANDED_OVER), parcel(PRINTED, PACKED, WEIGHED, status="picked_up"))
    assert decision.verdict is Verdict.REFUSED and "already collected" in decision.message


def test_one_scan_of_a_merged_parcel_moves_every_order_in_it():
    decision = judge_scan(scan(PACKED), parcel(PRINTED, merged=3))
    assert decision.verdict is Verdict.ACCEPTED and decision.shipment_ids == (100, 101, 102)


def test_a_merged_parcel_with_one_cancelled_order_is_stopped_until_its_items_are_out():
    decision = judge_scan(scan(PACKED), parcel(PRINTED, merged=2, cancelled=True))
    assert decision.verdict is Verdict.REFUSED and decision.shipment_ids == ()
    assert decision.message.startswith("STOP: order ORDER-1 cancelled on the platform, do not ship; "
                                       "take its items out of this parcel")
