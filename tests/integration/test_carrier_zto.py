"""The ZTO e-waybill client against the sandbox's ZTO simulator, over real HTTP.

Waybills are ordered, collected by the (simulated) courier, asked about and cancelled
through the client; the simulator's state is read only to check what the carrier holds.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.zto import ZtoCarrierClient, data_digest, pickup_time
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import zto as zto_simulator

_app_numbers = itertools.count(1)
_order_numbers = itertools.count(1)


@pytest.fixture
def account(sandbox):
    return zto_simulator.register_account(sandbox.state, f"zto-app-{next(_app_numbers)}")


@pytest.fixture
def client(sandbox, account):
    with ZtoCarrierClient(f"{sandbox.url}/zto", account["app_key"], account["app_secret"]) as zto:
        yield zto


def a_parcel(**receiver_changes) -> Parcel:
    fields = dict(name="测试收件人", phone="+8613800138000", province="广东省", city="深圳市",
                  district="南山区", address="南山区示例路1号2栋301室")  # fmt: skip
    fields.update(receiver_changes)
    return Parcel(order_ref=f"ZTO-ORDER-{next(_order_numbers)}", receiver=Receiver(**fields),
                  weight_grams=1250, items=[("保温杯 白色", 2)])  # fmt: skip


def courier_collects(sandbox, numbers: list[str]) -> dict:
    """The courier comes, through the sandbox's shared carrier control endpoint."""
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def test_the_digest_is_base64_of_the_raw_md5_of_body_and_secret():
    # Computed outside Python:
    # printf '%s' '{"billCode":"73100196611386"}secret' | openssl md5 -binary | base64
    expected = "ReFPbU5W4tYFdD7A8uvG4w=="
    assert data_digest('{"billCode":"73100196611386"}', "secret") == expected
    assert zto_simulator.data_digest('{"billCode":"73100196611386"}', "secret") == expected


def test_a_good_parcel_gets_a_zto_number_that_the_carrier_records(client, sandbox):
    parcel = a_parcel()
    waybill = client.create_waybill(parcel)

    assert waybill.carrier == "ZTO"
    assert waybill.tracking_number.startswith("73") and len(waybill.tracking_number) == 14
    record = sandbox.state.waybills[waybill.tracking_number]
    assert record["carrier"] == "ZTO"
    assert record["order_id"] == parcel.order_ref
    assert record["receiver"]["receiverProvince"] == "广东省"
    assert record["items"][0]["weight"] == 1250


def test_the_same_order_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    first, second = client.create_waybill(parcel), client.create_waybill(parcel)

    assert first == second
    issued = [r for r in sandbox.state.waybills.values()
              if r.get("carrier") == "ZTO" and r.get("order_id") == parcel.order_ref]  # fmt: skip
    assert len(issued) == 1


def test_a_wrong_secret_gets_ztos_own_signature_error_and_is_rejected(sandbox, account):
    before = len(sandbox.state.waybills)
    with ZtoCarrierClient(f"{sandbox.url}/zto", account["app_key"], "not-the-secret") as wrong:
        with pytest.raises(Rejected) as refusal:
            wrong.create_waybill(a_parcel())

    assert refusal.value.code == zto_simulator.ERROR_BAD_DIGEST
    assert refusal.value.body["status"] is False
    assert refusal.value.body["statusCode"] == "S211"
    assert not refusal.value.retryable
    assert len(sandbox.state.waybills) == before


def test_a_batch_with_bad_addresses_refuses_those_parcels_and_numbers_the_others(client, sandbox):
    parcels = [a_parcel(), a_parcel(province="火星省"), a_parcel(city=None), a_parcel()]
    outcomes = client.create_waybills(parcels)

    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Rejected, Waybill]
    assert outcomes[1].code == zto_simulator.ERROR_BAD_ADDRESS and "province" in str(outcomes[1])
    assert outcomes[2].code == zto_simulator.ERROR_MISSING_FIELD and "City" in str(outcomes[2])
    assert outcomes[0].tracking_number != outcomes[3].tracking_number
    for parcel, outcome in zip(parcels[::3], outcomes[::3]):
        assert sandbox.state.waybills[outcome.tracking_number]["order_id"] == parcel.order_ref


def test_a_masked_receiver_travels_as_the_platforms_ciphertexts(client, sandbox):
    ciphertexts = {"name": "~AgAAname~0~~", "phone": "$Y/YKphone$0$$", "address": "~AgAAaddr~0~~"}
    waybill = client.create_waybill(a_parcel(name="林*坤", phone="138****8000", masked=True,
                                             encrypted=ciphertexts))  # fmt: skip

    receiver = sandbox.state.waybills[waybill.tracking_number]["receiver"]
    assert receiver["receiverName"] == ciphertexts["name"]
    assert receiver["receiverMobile"] == ciphertexts["phone"]
    assert receiver["receiverAddress"] == ciphertexts["address"]


def test_a_parcel_reports_no_pickup_until_collected_then_the_time_in_utc(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    assert client.pickups([number]) == {number: None}

    visit = courier_collects(sandbox, [number])
    picked_up_at = client.pickups([number])[number]

    assert visit["collected"] == [number]
    collected_at = datetime.fromisoformat(visit["collected_at"])
    # ZTO states the scan time to the millisecond.
    assert picked_up_at == collected_at.replace(microsecond=collected_at.microsecond // 1000 * 1000)
    assert picked_up_at.utcoffset() == timedelta(0)


def test_the_simulators_collect_takes_only_zto_parcels(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    sandbox.state.waybills["SF-NOT-MINE"] = {"carrier": "SF", "cancelled": False, "picked_up_at": None}
    try:
        collected = zto_simulator.collect(sandbox.state, None, datetime.now(timezone.utc))
        assert number in collected and "SF-NOT-MINE" not in collected
        assert sandbox.state.waybills["SF-NOT-MINE"]["picked_up_at"] is None
    finally:
        del sandbox.state.waybills["SF-NOT-MINE"]


def test_another_apps_parcel_shows_no_pickup(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    courier_collects(sandbox, [number])
    stranger = zto_simulator.register_account(sandbox.state, f"zto-app-{next(_app_numbers)}")

    with ZtoCarrierClient(f"{sandbox.url}/zto", stranger["app_key"], stranger["app_secret"]) as other:
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


def test_a_cancel_after_pickup_is_refused_with_ztos_reason(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.code == zto_simulator.ERROR_ALREADY_COLLECTED
    assert "collected" in str(refusal.value)
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_cancelling_an_order_zto_never_received_is_rejected(client):
    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill("ZTO-ORDER-NEVER-PLACED")
    assert refusal.value.code == zto_simulator.ERROR_ORDER_NOT_FOUND


def test_an_armed_server_error_becomes_unavailable_and_the_retry_works(client, sandbox):
    parcel = a_parcel()
    sandbox.state.faults.arm(zto_simulator.FAULT_PLATFORM, "server_error")
    with pytest.raises(Unavailable):
        client.create_waybills([parcel, a_parcel()])
    number = client.create_waybill(parcel).tracking_number

    sandbox.state.faults.arm(zto_simulator.FAULT_PLATFORM, "server_error")
    with pytest.raises(Unavailable):
        client.pickups([number])


def test_an_armed_rate_limit_becomes_rate_limited_with_the_wait(client, sandbox):
    sandbox.state.faults.arm(zto_simulator.FAULT_PLATFORM, "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        client.create_waybill(a_parcel())
    assert limited.value.retry_after == 7
    assert limited.value.retryable


def test_a_body_that_is_not_json_becomes_unavailable(client, sandbox):
    sandbox.state.faults.arm(zto_simulator.FAULT_PLATFORM, "malformed")
    with pytest.raises(Unavailable):
        client.create_waybill(a_parcel())


def test_a_flow_limit_stated_with_http_200_is_rate_limited_too():
    # ZOP answers its call limits (S206, S221) with HTTP 200 and status false.
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": None, "message": "api qps flow limit",
                                         "status": False, "statusCode": "S221"})  # fmt: skip

    http = httpx.Client(transport=httpx.MockTransport(gateway))
    with http, pytest.raises(RateLimited):
        ZtoCarrierClient("https://japi.zto.com", "key", "secret", http=http).create_waybill(a_parcel())


def test_the_pickup_is_the_earliest_pickup_scan_in_any_order_and_any_time_form():
    scans = [
        {"action": "SIGNED", "scanDate": "2026-04-12 18:00:00"},
        {"scanType": "收件", "scanDate": "2026-04-10 08:00:00"},  # Beijing time as text
        {"action": "GOT", "scanDate": 1775800800000},  # 2026-04-10 06:00 UTC in ms
    ]
    assert pickup_time(scans) == datetime(2026, 4, 10, 0, 0, tzinfo=timezone.utc)
    assert pickup_time([{"action": "DEPARTURE_SIGNED", "scanDate": "2026-04-12 18:00:00"}]) == (
        datetime(2026, 4, 12, 10, 0, tzinfo=timezone.utc))
    assert pickup_time([{"action": "ARRIVAL", "scanDate": "2026-04-11 10:00:00"}]) is None
    with pytest.raises(Unavailable):
        pickup_time([{"action": "GOT", "scanDate": "10/04/2026"}])
