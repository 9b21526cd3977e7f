"""Phones and e-mails are masked wherever they appear; ids, amounts and times never are."""

from __future__ import annotations

import logging

import pytest

from oms.domain.masking import (
    field_kind,
    mask_address,
    mask_name,
    mask_phone_value,
    mask_row,
    mask_text,
    redact_markdown,
    redact_table,
)
from oms.logging_privacy import PersonalDataMasked


@pytest.mark.parametrize("written, masked", [
    ("13800138000", "138****8000"),
    ("+86 138 0013 8000", "138****8000"),
    ("0086-13800138000", "138****8000"),
    ("(+86)13800138000", "138****8000"),
    ("86 138 0013 8000", "138****8000"),
    ("１３８００１３８０００", "138****8000"),
    ("138-0013-8000", "138****8000"),
    ("0755-88881234", "755****1234"),
    ("+65 9123 4567", "+65 ****67"),
    ("+6591234567", "+65 ****67"),
    ("+60 12-345 6789", "+60 ****89"),
    ("+66 81 234 5678", "+66 ****78"),
    ("+1 (415) 555-2671", "+1 415****2671"),
    ("(415) 555-2671", "415****2671"),
    ("+44 20 7946 0958", "+44 207****0958"),
    ("090-1234-5678", "901****5678"),
])
def test_phones_of_every_country_and_spelling_are_masked_in_text(written, masked):
    assert mask_text(f"call {written} today") == f"call {masked} today"


def test_a_phone_touching_chinese_text_or_punctuation_is_still_masked():
    assert mask_text("收件人电话13800138000，谢谢") == "收件人电话138****8000，谢谢"
    assert mask_text("mobile=13800138000&x=1") == "mobile=138****8000&x=1"
    assert mask_text("13800138000,13900139000.") == "138****8000,139****9000."
    assert mask_text("5 13800138000 7") == "5 138****8000 7"


@pytest.mark.parametrize("text", [
    "taobao tid 3812345678901234567 and 1234567890123456",  # 16-19 digits
    "jd order 290012345678 / 123456789012345678",  # 12 and 18 digits
    "pdd order_sn 231204-123456789012345",
    "amazon 123-1234567-1234567",
    "SF1234567890123 YT1234567890123 JDVA12345678901",
    "ZTO 78123456789012",
    "douyin 6912345678901234567",
    "at 2024-01-02T03:04:05.123+08:00, or 2024-01-02 03:04:05, or 2024/01/02",
    "paid 1234.56 CNY, ¥1,234,567.00, 1 234 567 units",
    "epoch 1701234567 and 1701234567890",
    "http://127.0.0.1:54321/api/v2/orders/13800138000?page=2",
    "order #13800138000 and shop_13800138000",
    "already masked: 138****8000 and +65 ****67",
])
def test_ids_tracking_numbers_amounts_and_times_are_left_intact(text):
    assert mask_text(text) == text


def test_e_mail_addresses_keep_their_first_letter_and_domain():
    assert mask_text("from alice.wong@example.com, cc 13800138000@163.com") == \
        "from a***@example.com, cc 1***@163.com"


def test_masking_twice_changes_nothing_more():
    once = mask_text("+86 138 0013 8000 / bob@example.com / +65 9123 4567")
    assert mask_text(once) == once


def test_names_keep_their_first_character():
    assert mask_name("张小明") == "张**"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("John Smith") == "J*** S***"
    assert mask_name("~AgV2cmVk~") == "****"  # a platform ciphertext is noise, not shown
    assert mask_name("张**") == "张**"


def test_addresses_keep_province_and_city_only():
    assert mask_address("广东省深圳市南山区科技园路1号") == "广东省深圳市****"
    assert mask_address("上海市浦东新区测试路 8 号") == "上海市****"
    assert mask_address("新疆维吾尔自治区乌鲁木齐市天山区1号") == "新疆维吾尔自治区乌鲁木齐市****"
    assert mask_address("建设路农贸市场 3 号") == "****"  # a street ending in 市场 is no city
    assert mask_address("1 Main St, Flat 2, Springfield") == "****, Springfield"
    assert mask_address("1 Raffles Place #20-01 048616") == "****"


def test_a_stored_phone_is_masked_whatever_it_is():
    assert mask_phone_value("+8613800138000") == "138****8000"
    assert mask_phone_value(13800138000) == "138****8000"
    assert mask_phone_value("12345") == "****"
    assert mask_phone_value("$1380$AbC=$") == "****"


@pytest.mark.parametrize("name, kind", [
    ("receiver_name", "name"), ("receiverName", "name"), ("buyer_nick", "name"), ("name", "name"),
    ("consignee", "name"), ("receiver_phone", "phone"), ("mobile", "phone"), ("Receiver Mobile", "phone"),
    ("tel", "phone"), ("email", "email"), ("buyer_email", "email"), ("receiver_address", "address"),
    ("address1", "address"), ("detail_address", "address"), ("zip", "postal"),
    ("receiver_postal_code", "postal"), ("receiver_city", None), ("receiver_province", None),
    ("shop_name", None), ("platform_order_id", None), ("tracking_number", None), ("total_amount", None),
])
def test_fields_are_known_by_their_names(name, kind):
    assert field_kind(name) == kind


def test_rows_are_masked_by_field_name_and_nested_addresses_keep_their_city():
    row = {"order": "3812345678901234567", "receiver_name": "张三", "receiver_phone": "+8613800138000",
           "receiver_province": "广东省", "receiver_address": "广东省深圳市南山区科技园路1号", "total": 12.5,
           "note": "please call 13900139000", "shipping_address": {
               "name": "Li Lei", "address1": "1 Raffles Place", "city": "Singapore", "zip": "048616",
               "phone": "+65 9123 4567"}, "lines": [{"sku": "SKU-1", "quantity": 2}]}
    assert mask_row(row) == {
        "order": "3812345678901234567", "receiver_name": "张*", "receiver_phone": "138****8000",
        "receiver_province": "广东省", "receiver_address": "广东省深圳市****", "total": 12.5,
        "note": "please call 139****9000", "shipping_address": {
            "name": "L*** L***", "address1": "****", "city": "Singapore", "zip": "048****",
            "phone": "+65 ****67"}, "lines": [{"sku": "SKU-1", "quantity": 2}]}


def test_table_artifacts_are_redacted_as_rows_or_columns_and_markdown_as_text():
    assert redact_table([{"receiver_name": "王五", "order": "290012345678"}]) == \
        [{"receiver_name": "王*", "order": "290012345678"}]
    assert redact_table({"phone": ["13800138000"], "sku": ["SKU-1"]}) == {"phone": ["138****8000"], "sku": ["SKU-1"]}
    assert redact_markdown("**Order 290012345678** to 13800138000") == "**Order 290012345678** to 138****8000"


def test_the_log_filter_masks_message_arguments_and_tracebacks_and_drops_nothing():
    record = logging.LogRecord("prefect.task_runs", logging.WARNING, __file__, 1,
                               "receiver %s of order %s", ("+86 138 0013 8000", "3812345678901234567"), None)
    try:
        raise ValueError("bad phone 13900139000")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert PersonalDataMasked().filter(record) is True
    assert record.getMessage() == "receiver 138****8000 of order 3812345678901234567"
    assert "13900139000" not in record.exc_text and "139****9000" in record.exc_text
