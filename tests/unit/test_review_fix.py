"""Operators' fixes to parked payloads: assignments, replacements and the changes they record."""

from __future__ import annotations

import pytest

from oms.domain.review_fix import (
    FixRejected,
    apply_assignments,
    diff_payloads,
    parse_assignment,
)

PAYLOAD = {
    "id": 450789469,
    "shipping_address": {"phone": "138-0013", "city": "北京市", "zip": None},
    "line_items": [{"sku": "SKU-0001", "quantity": 2}, {"sku": "", "quantity": 1}],
}


def test_a_plain_assignment_writes_a_string_even_when_it_looks_like_a_number():
    assignment = parse_assignment("shipping_address.phone=13800138000")
    assert assignment.path == ("shipping_address", "phone")
    assert assignment.value == "13800138000"


def test_a_colon_assignment_writes_a_json_value():
    assert parse_assignment("line_items.0.quantity:=3").value == 3
    assert parse_assignment("shipping_address.zip:=null").value is None
    assert parse_assignment('note:={"a": [1, true]}').value == {"a": [1, True]}


def test_the_value_may_contain_equals_signs():
    assert parse_assignment("note=a=b").value == "a=b"


@pytest.mark.parametrize("text", ["no-equals-sign", "=value", "a..b=1", "a.=1"])
def test_assignments_without_a_usable_path_are_rejected(text):
    with pytest.raises(FixRejected):
        parse_assignment(text)


def test_bad_json_is_rejected_with_a_hint_to_use_a_plain_string():
    with pytest.raises(FixRejected, match="plain string"):
        parse_assignment("shipping_address.phone:=138-0013-8000")


def test_assignments_change_a_copy_and_leave_the_original_alone():
    fixed = apply_assignments(PAYLOAD, [parse_assignment("shipping_address.phone=13800138000"),
                                        parse_assignment("line_items.1.sku=SKU-0002")])
    assert fixed["shipping_address"]["phone"] == "13800138000"
    assert fixed["line_items"][1]["sku"] == "SKU-0002"
    assert PAYLOAD["shipping_address"]["phone"] == "138-0013"
    assert PAYLOAD["line_items"][1]["sku"] == ""


def test_missing_objects_along_a_path_are_created():
    fixed = apply_assignments(PAYLOAD, [parse_assignment("billing_address.city=上海市")])
    assert fixed["billing_address"] == {"city": "上海市"}


def test_a_list_position_out_of_range_is_rejected_rather_than_growing_the_list():
    with pytest.raises(FixRejected, match="2 element"):
        apply_assignments(PAYLOAD, [parse_assignment("line_items.2.sku=X")])


def test_a_path_through_a_plain_value_is_rejected():
    with pytest.raises(FixRejected, match="shipping_address.city is a string"):
        apply_assignments(PAYLOAD, [parse_assignment("shipping_address.city.name=x")])


def test_the_diff_names_each_changed_field_with_its_old_and_new_value():
    fixed = apply_assignments(PAYLOAD, [parse_assignment("shipping_address.phone=13800138000"),
                                        parse_assignment("line_items.0.quantity:=3")])
    changes = [change.as_json() for change in diff_payloads(PAYLOAD, fixed)]
    assert changes == [
        {"path": "shipping_address.phone", "kind": "changed", "before": "138-0013", "after": "13800138000"},
        {"path": "line_items.0.quantity", "kind": "changed", "before": 2, "after": 3},
    ]


def test_a_replacement_records_added_and_removed_fields():
    replacement = {key: value for key, value in PAYLOAD.items() if key != "id"} | {"note": "call first"}
    changes = {change.label: change.as_json() for change in diff_payloads(PAYLOAD, replacement)}
    assert changes == {
        "id": {"path": "id", "kind": "removed", "before": 450789469},
        "note": {"path": "note", "kind": "added", "after": "call first"},
    }


def test_a_list_of_another_length_is_one_change_of_the_whole_list():
    replacement = PAYLOAD | {"line_items": PAYLOAD["line_items"][:1]}
    [change] = diff_payloads(PAYLOAD, replacement)
    assert change.label == "line_items" and change.before == PAYLOAD["line_items"]


def test_a_number_turned_into_a_boolean_or_a_string_is_a_change():
    assert [c.label for c in diff_payloads({"a": 1, "b": 2}, {"a": True, "b": "2"})] == ["a", "b"]


def test_an_unchanged_payload_has_no_changes():
    assert diff_payloads(PAYLOAD, apply_assignments(PAYLOAD, [parse_assignment("shipping_address.city=北京市")])) == []
