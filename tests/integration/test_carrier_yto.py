"""The YTO e-waybill client against the sandbox's YTO simulator, over real HTTP.

Waybills are ordered, collected by the (simulated) courier, asked about and cancelled
through the client; the simulator's state is read only to check what the carrier holds.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.yto import YtoCarrierClient, pickup_time, sign
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import yto as yto_simulator

_user_numbers = itertools.count(1)
_order_numbers = itertools.count(1)


@pytest.fixture
def account(sandbox):
    return yto_simulator.register_account(sandbox.state, f"yto-user-{next(_user_numbers)}")


def client_for(sandbox, account, secret: str | None = None, **options) -> YtoCarrierClient:
    return YtoCarrierClient(f"{sandbox.url}/yto", account["user_id"], account["customer_code"],
                            secret or account["secret"], **options)  # fmt: skip


@pytest.fixture
def client(sandbox, account):
    with client_for(sandbox, account) as yto:
        yield yto


def a_parcel(**receiver_changes) -> Parcel:
    fields = dict(name="测试收件人", phone="+8613800138000", province="广东省", city="深圳市",
                  district="南山区", address="南山区示例路1号2栋301室")  # fmt: skip
    fields.update(receiver_changes)
    return Parcel(order_ref=f"YTO-ORDER-{next(_order_numbers)}", receiver=Receiver(**fields),
                  weight_grams=1250, items=[("保温杯 白色", 2)])  # fmt: skip


def courier_collects(sandbox, numbers: list[str]) -> dict:
    """The courier comes, through the sandbox's shared carrier control endpoint."""
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def test_the_sign_reproduces_the_vector_of_a_published_yto_test_request():
    # A client's test quotes this request body for YTO's test account (secret 123456):
    # {"timestamp":"1630056973033","param":"{\"NUMBER\":\"YT2600227881409\"}",
    #  "sign":"uhSL6hg8txxadZi26YPYPg==","format":"JSON"}
    param = '{"NUMBER":"YT2600227881409"}'
    for signer in (sign, yto_simulator.sign):
        assert signer(param, "track_query_adapter", "123456") == "uhSL6hg8txxadZi26YPYPg=="


def test_a_good_parcel_gets_a_yto_number_that_the_carrier_records(client, sandbox):
    parcel = a_parcel()
    waybill = client.create_waybill(parcel)

    assert waybill.carrier == "YTO"
    assert waybill.tracking_number.startswith("YT") and len(waybill.tracking_number) == 15
    record = sandbox.state.waybills[waybill.tracking_number]
    assert record["carrier"] == "YTO"
    assert record["order_id"] == parcel.order_ref
    assert record["receiver"]["recipientProvinceName"] == "广东省"
    assert record["weight"] == 1.25


def test_the_same_order_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    first, second = client.create_waybill(parcel), client.create_waybill(parcel)

    assert first == second
    issued = [r for r in sandbox.state.waybills.values()
              if r.get("carrier") == "YTO" and r.get("order_id") == parcel.order_ref]  # fmt: skip
    assert len(issued) == 1


def test_a_wrong_secret_gets_ytos_own_sign_error_and_is_rejected(sandbox, account):
    before = len(sandbox.state.waybills)
    with client_for(sandbox, account, secret="not-the-secret") as wrong:
        with pytest.raises(Rejected) as refusal:
            wrong.create_waybill(a_parcel())

    assert refusal.value.code == yto_simulator.ERROR_BAD_SIGN
    assert refusal.value.body == {"success": False, "code": yto_simulator.ERROR_BAD_SIGN,
                                  "message": "签名验证失败: sign does not match"}  # fmt: skip
    assert not refusal.value.retryable
    assert len(sandbox.state.waybills) == before


def test_a_request_signed_for_another_method_is_refused(sandbox, account):
    # The method takes part in the sign, so a sign cannot be replayed on another API.
    param = json.dumps({"NUMBER": "YT0000000000000"})
    body = {"timestamp": "1", "param": param, "format": "JSON",
            "sign": sign(param, yto_simulator.CREATE_METHOD, account["secret"])}  # fmt: skip
    url = (f"{sandbox.url}/yto/open/{yto_simulator.TRACK_METHOD}/v1/"
           f"{account['user_id']}/{account['customer_code']}")  # fmt: skip
    answer = httpx.post(url, json=body).json()
    assert answer["success"] is False and answer["code"] == yto_simulator.ERROR_BAD_SIGN


def test_a_batch_with_bad_addresses_refuses_those_parcels_and_numbers_the_others(client, sandbox):
    parcels = [a_parcel(), a_parcel(province="火星省"), a_parcel(address=None), a_parcel()]
    outcomes = client.create_waybills(parcels)

    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Rejected, Waybill]
    assert outcomes[1].code == yto_simulator.ERROR_BAD_ADDRESS and "Province" in str(outcomes[1])
    assert outcomes[2].code == yto_simulator.ERROR_MISSING_FIELD and "Address" in str(outcomes[2])
    assert outcomes[0].tracking_number != outcomes[3].tracking_number
    for parcel, outcome in zip(parcels[::3], outcomes[::3]):
        assert sandbox.state.waybills[outcome.tracking_number]["order_id"] == parcel.order_ref


def test_a_masked_receiver_without_ciphertexts_is_rejected_rather_than_printing_masks(client):
    with pytest.raises(Rejected):
        client.create_waybill(a_parcel(name="林*坤", phone="138****8000", masked=True))


def test_a_parcel_reports_no_pickup_until_collected_then_the_time_in_utc(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    assert client.pickups([number]) == {number: None}

    visit = courier_collects(sandbox, [number])
    picked_up_at = client.pickups([number])[number]

    assert visit["collected"] == [number]
    # YTO states the time to the second, on Beijing's clock; the client hands over UTC.
    assert picked_up_at == datetime.fromisoformat(visit["collected_at"]).replace(microsecond=0)
    assert picked_up_at.utcoffset() == timedelta(0)


def test_many_numbers_are_asked_one_a_call_and_answered_in_order(client, sandbox):
    numbers = [client.create_waybill(a_parcel()).tracking_number for _ in range(4)]
    collected = yto_simulator.collect(sandbox.state, numbers[::2], datetime.now(timezone.utc))
    answers = client.pickups(numbers)

    assert list(answers) == numbers
    assert [number for number, moment in answers.items() if moment is not None] == collected


def test_another_accounts_parcel_shows_no_pickup(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    courier_collects(sandbox, [number])
    stranger = yto_simulator.register_account(sandbox.state, f"yto-user-{next(_user_numbers)}")

    with client_for(sandbox, stranger) as other:
        assert other.pickups([number]) == {number: None}


def test_a_cancel_before_pickup_succeeds_and_the_courier_can_no_longer_collect_it(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)

    assert sandbox.state.waybills[number]["cancelled"] is True
    assert courier_collects(sandbox, [number])["collected"] == []
    assert client.pickups([number]) == {number: None}
    client.cancel_waybill(parcel.order_ref)  # twice is harmless (a lost answer, say)
    with pytest.raises(Rejected, match="cancelled"):
        client.create_waybill(parcel)  # the dead number never comes back


def test_a_cancel_after_pickup_is_refused_with_ytos_reason(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.code == yto_simulator.ERROR_ALREADY_COLLECTED
    assert "collected" in str(refusal.value)
    assert sandbox.state.waybills[number]["cancelled"] is False
    assert client.pickups([number])[number] is not None


def test_cancelling_an_order_yto_never_received_is_rejected(client):
    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill("YTO-ORDER-NEVER-PLACED")
    assert refusal.value.code == yto_simulator.ERROR_ORDER_NOT_FOUND


def test_an_armed_server_error_becomes_unavailable_and_the_retry_works(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    for attempt in (lambda: client.create_waybills([a_parcel()]),
                    lambda: client.pickups([number]),
                    lambda: client.cancel_waybill(parcel.order_ref)):  # fmt: skip
        sandbox.state.faults.arm(yto_simulator.FAULT_PLATFORM, "server_error")
        with pytest.raises(Unavailable):
            attempt()
    assert sandbox.state.waybills[number]["cancelled"] is False
    client.cancel_waybill(parcel.order_ref)
    assert sandbox.state.waybills[number]["cancelled"] is True


def test_an_armed_rate_limit_becomes_rate_limited_with_the_wait(client, sandbox):
    sandbox.state.faults.arm(yto_simulator.FAULT_PLATFORM, "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        client.create_waybill(a_parcel())
    assert limited.value.retry_after == 7
    assert limited.value.retryable


def test_a_body_that_is_not_json_becomes_unavailable(client, sandbox):
    sandbox.state.faults.arm(yto_simulator.FAULT_PLATFORM, "malformed")
    with pytest.raises(Unavailable):
        client.create_waybill(a_parcel())


def test_faults_armed_for_yto_leave_the_other_carriers_alone(client, sandbox):
    sandbox.state.faults.arm("zto", "server_error")
    sandbox.state.faults.arm("carrier", "server_error")
    assert client.create_waybill(a_parcel()).tracking_number.startswith("YT")


def test_the_pickup_is_the_earliest_pickup_event_in_whatever_order_yto_lists_them():
    events = [
        {"infoContent": "SIGNED", "upload_Time": "2026-04-12 18:00:00"},
        {"infoContent": "GOT", "upload_Time": "2026-04-10 08:00:00"},
        {"infoContent": "DEPARTURE", "upload_Time": "2026-04-11 10:00:00"},
    ]
    assert pickup_time(events) == datetime(2026, 4, 10, 0, 0, tzinfo=timezone.utc)
    assert pickup_time(events[:1] + events[2:]) == datetime(2026, 4, 11, 2, 0, tzinfo=timezone.utc)
    assert pickup_time(events[2:]) is None
    with pytest.raises(Unavailable):
        pickup_time([{"infoContent": "GOT", "upload_Time": "10/04/2026"}])
