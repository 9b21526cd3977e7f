"""The SF e-waybill client against the sandbox's SF simulator, over real HTTP."""

from __future__ import annotations

import itertools

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.carrier import SfCarrierClient, message_digest
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import carrier as sf_simulator
from sandbox.server import free_loopback_port

_partner_numbers = itertools.count(1)
_order_numbers = itertools.count(1)


@pytest.fixture
def account(sandbox):
    return sf_simulator.register_partner(sandbox.state, f"partner-{next(_partner_numbers)}")


@pytest.fixture
def client(sandbox, account):
    with SfCarrierClient(f"{sandbox.url}/sf", account["partner_id"], account["checkword"]) as sf:
        yield sf


def a_receiver(**changes) -> Receiver:
    fields = dict(
        name="测试收件人",
        phone="+8613800138000",
        province="广东省",
        city="深圳市",
        district="南山区",
        address="南山区示例路1号2栋301室",
    )
    fields.update(changes)
    return Receiver(**fields)


def a_parcel(**receiver_changes) -> Parcel:
    return Parcel(
        order_ref=f"ORDER-{next(_order_numbers)}",
        receiver=a_receiver(**receiver_changes),
        weight_grams=1250,
        items=[("保温杯 白色", 2)],
    )


def test_the_digest_is_base64_of_the_raw_md5_of_the_form_encoded_text():
    # Computed outside Python: printf '%7B%22orderId%22%3A%22A+1%22%7D1700000000cw'
    # | openssl md5 -binary | base64
    expected = "22RvTeyWa9GKPvtUfI2SaQ=="
    assert message_digest('{"orderId":"A 1"}', "1700000000", "cw") == expected
    assert sf_simulator.message_digest('{"orderId":"A 1"}', "1700000000", "cw") == expected


def test_the_digest_reproduces_the_reference_vector_of_appendix_a():
    # Inputs recovered for the reference's vector: msgData {"orderId":"T1"}, timestamp
    # 1700000000, checkword "checkword".
    for digest in (message_digest, sf_simulator.message_digest):
        assert digest('{"orderId":"T1"}', "1700000000", "checkword") == "y6rpJQRgZcJdwDjFw/mtyQ=="


def test_a_good_parcel_gets_an_sf_number_that_the_carrier_records(client, sandbox):
    parcel = a_parcel()
    waybill = client.create_waybill(parcel)

    assert waybill.carrier == "SF"
    assert waybill.tracking_number.startswith("SF") and len(waybill.tracking_number) == 14
    record = sandbox.state.waybills[waybill.tracking_number]
    assert record["order_id"] == parcel.order_ref
    assert record["receiver"]["province"] == "广东省"
    assert record["receiver"]["address"] == "南山区示例路1号2栋301室"
    assert record["total_weight"] == 1.25


def test_a_province_in_short_form_is_accepted(client):
    assert client.create_waybill(a_parcel(province="粤")).tracking_number.startswith("SF")


def test_a_parcel_without_province_is_rejected_with_a_reason_naming_the_field(client, sandbox):
    before = len(sandbox.state.waybills)
    with pytest.raises(Rejected) as refusal:
        client.create_waybill(a_parcel(province=None))
    assert "province" in str(refusal.value)
    assert len(sandbox.state.waybills) == before


def test_a_receiver_in_a_province_that_does_not_exist_is_rejected(client):
    with pytest.raises(Rejected, match="province"):
        client.create_waybill(a_parcel(province="火星省"))


def test_a_parcel_abroad_needs_no_chinese_province_but_still_an_address(client, sandbox):
    abroad = dict(province=None, city="Singapore", district=None, address="1 Test Road #01-01",
                  phone="+6581234567", country_code="SG")
    waybill = client.create_waybill(a_parcel(**abroad))
    assert sandbox.state.waybills[waybill.tracking_number]
    with pytest.raises(Rejected, match="address"):
        client.create_waybill(a_parcel(**dict(abroad, address=None)))


def test_a_receiver_without_phone_is_rejected_naming_the_mobile(client):
    with pytest.raises(Rejected, match="mobile"):
        client.create_waybill(a_parcel(phone=None))


def test_a_wrong_checkword_is_rejected_for_its_digest(sandbox, account):
    wrong = SfCarrierClient(f"{sandbox.url}/sf", account["partner_id"], "not-the-checkword")
    with wrong, pytest.raises(Rejected, match="msgDigest") as refusal:
        wrong.create_waybill(a_parcel())
    assert refusal.value.code == sf_simulator.API_RESULT_BAD_DIGEST


def test_the_same_order_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    first = client.create_waybill(parcel)
    second = client.create_waybill(parcel)

    assert first == second
    issued = [r for r in sandbox.state.waybills.values() if r["order_id"] == parcel.order_ref]
    assert len(issued) == 1


def test_a_masked_receiver_travels_as_the_platforms_ciphertexts(client, sandbox):
    ciphertexts = {
        "name": "~AgAAAAKj5K0name~e3T2WeW7~0~~",
        "phone": "$Y/YKpKSphone$AgAAAAKj$0$$",
        "address": "~AgAAAAKj5K0addr~e3T2WeW7~0~~",
    }
    masked = a_parcel(name="林*坤", phone="138****8000", address="南山区****", masked=True,
                      encrypted=ciphertexts)  # fmt: skip
    waybill = client.create_waybill(masked)

    receiver = sandbox.state.waybills[waybill.tracking_number]["receiver"]
    assert receiver["contact"] == ciphertexts["name"]
    assert receiver["mobile"] == ciphertexts["phone"]
    assert receiver["address"] == ciphertexts["address"]


def test_a_masked_receiver_without_ciphertexts_is_rejected_rather_than_printing_masks(client):
    with pytest.raises(Rejected):
        client.create_waybill(a_parcel(name="林*坤", phone="138****8000", masked=True))


def test_an_armed_rate_limit_becomes_rate_limited_with_the_wait(client, sandbox):
    sandbox.state.faults.arm("carrier", "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        client.create_waybill(a_parcel())
    assert limited.value.retry_after == 7
    assert limited.value.retryable


def test_an_armed_server_error_becomes_unavailable(client, sandbox):
    sandbox.state.faults.arm("carrier", "server_error")
    with pytest.raises(Unavailable):
        client.create_waybill(a_parcel())


def test_a_body_that_is_not_json_becomes_unavailable(client, sandbox):
    sandbox.state.faults.arm("carrier", "malformed")
    with pytest.raises(Unavailable):
        client.create_waybill(a_parcel())


def test_a_slow_carrier_becomes_unavailable_when_the_client_stops_waiting(sandbox, account):
    sandbox.state.faults.arm("carrier", "latency", delay_seconds=1.0)
    impatient = httpx.Client(timeout=0.2)
    sf = SfCarrierClient(f"{sandbox.url}/sf", account["partner_id"], account["checkword"],
                         http=impatient)  # fmt: skip
    with impatient, pytest.raises(Unavailable):
        sf.create_waybill(a_parcel())


def test_a_carrier_nobody_listens_on_is_unavailable(account):
    nowhere = f"http://127.0.0.1:{free_loopback_port()}/sf"
    with SfCarrierClient(nowhere, account["partner_id"], account["checkword"]) as sf:
        with pytest.raises(Unavailable):
            sf.create_waybill(a_parcel())


def test_a_batch_with_one_bad_parcel_returns_waybills_for_the_others(client, sandbox):
    parcels = [a_parcel(), a_parcel(city=None), a_parcel()]
    outcomes = client.create_waybills(parcels)

    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Waybill]
    assert "city" in str(outcomes[1])
    assert outcomes[0].tracking_number != outcomes[2].tracking_number
    for parcel, outcome in zip(parcels[::2], outcomes[::2]):
        assert sandbox.state.waybills[outcome.tracking_number]["order_id"] == parcel.order_ref


def test_running_a_batch_again_returns_the_numbers_already_issued(client):
    parcels = [a_parcel(), a_parcel()]
    assert client.create_waybills(parcels) == client.create_waybills(parcels)


def test_a_retryable_failure_in_a_batch_is_raised_not_recorded_as_a_refusal(client, sandbox):
    sandbox.state.faults.arm("carrier", "server_error")
    with pytest.raises(Unavailable):
        client.create_waybills([a_parcel(), a_parcel()])
