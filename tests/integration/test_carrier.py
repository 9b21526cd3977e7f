"""The SF e-waybill client against the sandbox's SF simulator, over real HTTP.

Waybills are ordered, collected by the (simulated) courier, asked about and cancelled
through the client; the simulator's state is read only to check what the carrier holds.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.carrier import SfCarrierClient, message_digest, pickup_time
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import carrier as sf_simulator
from sandbox.model import SandboxState
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
    issued = [r for r in sandbox.state.waybills.values() if r.get("order_id") == parcel.order_ref]
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


# --- pickups and cancellation -----------------------------------------------------------


def courier_collects(sandbox, numbers: list[str]) -> dict:
    """The courier comes for these parcels, through the sandbox's control endpoint."""
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def signed_call(sandbox, account, service_code: str, message: dict) -> dict:
    """One correctly signed call that bypasses the client, for requests it never sends."""
    msg_data = json.dumps(message, ensure_ascii=False)
    timestamp = str(int(time.time()))
    form = {
        "partnerID": account["partner_id"],
        "requestID": str(uuid.uuid4()),
        "serviceCode": service_code,
        "timestamp": timestamp,
        "msgDigest": message_digest(msg_data, timestamp, account["checkword"]),
        "msgData": msg_data,
    }
    envelope = httpx.post(f"{sandbox.url}/sf/std/service", data=form).json()
    assert envelope["apiResultCode"] == sf_simulator.API_RESULT_OK, envelope
    return json.loads(envelope["apiResultData"])


def test_a_fresh_waybill_reports_no_pickup(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number

    assert client.pickups([number]) == {number: None}
    assert sandbox.state.waybills[number]["picked_up_at"] is None


def test_after_the_courier_came_the_waybill_reports_the_pickup_time_in_utc(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    visit = courier_collects(sandbox, [number])
    picked_up_at = client.pickups([number])[number]

    assert visit["collected"] == [number]
    # SF states the time to the second, on Beijing's clock; the client hands over UTC.
    assert picked_up_at == datetime.fromisoformat(visit["collected_at"]).replace(microsecond=0)
    assert picked_up_at.utcoffset() == timedelta(0)


def test_many_numbers_are_asked_ten_a_call(sandbox, account):
    services_called: list[str] = []

    def note_service(request: httpx.Request) -> None:
        services_called.append(parse_qs(request.content.decode())["serviceCode"][0])

    http = httpx.Client(timeout=10, event_hooks={"request": [note_service]})
    sf = SfCarrierClient(f"{sandbox.url}/sf", account["partner_id"], account["checkword"],
                         http=http)  # fmt: skip
    with http:
        numbers = [sf.create_waybill(a_parcel()).tracking_number for _ in range(23)]
        collected = sf_simulator.collect(sandbox.state, numbers[::3], datetime.now(timezone.utc))
        services_called.clear()
        answers = sf.pickups(numbers)

    route_queries = math.ceil(len(numbers) / sf_simulator.MAX_TRACKING_NUMBERS)
    assert services_called == [sf_simulator.SEARCH_ROUTES_SERVICE] * route_queries
    assert list(answers) == numbers
    assert [number for number, moment in answers.items() if moment is not None] == collected


def test_the_carrier_refuses_a_route_query_with_more_numbers_than_sf_allows(sandbox, account):
    def query(numbers):
        return {"trackingType": 1, "trackingNumber": numbers, "methodType": 1}

    numbers = [f"SF{serial:012d}" for serial in range(sf_simulator.MAX_TRACKING_NUMBERS + 1)]
    too_many = signed_call(sandbox, account, sf_simulator.SEARCH_ROUTES_SERVICE, query(numbers))
    just_enough = signed_call(sandbox, account, sf_simulator.SEARCH_ROUTES_SERVICE,
                              query(numbers[:-1]))  # fmt: skip

    assert too_many["success"] is False
    assert too_many["errorCode"] == sf_simulator.ERROR_TOO_MANY_NUMBERS
    assert just_enough["success"] is True
    assert [answer["mailNo"] for answer in just_enough["msgData"]["routeResps"]] == numbers[:-1]


def test_a_cancel_before_pickup_succeeds_and_the_courier_can_no_longer_collect_it(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)

    assert sandbox.state.waybills[number]["cancelled"] is True
    assert courier_collects(sandbox, [number])["collected"] == []
    assert sandbox.state.waybills[number]["picked_up_at"] is None
    assert client.pickups([number]) == {number: None}


def test_cancelling_twice_is_harmless(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)
    client.cancel_waybill(parcel.order_ref)  # e.g. the first answer was lost

    assert sandbox.state.waybills[number]["cancelled"] is True


def test_a_cancelled_order_cannot_get_its_dead_waybill_back(client):
    parcel = a_parcel()
    client.create_waybill(parcel)
    client.cancel_waybill(parcel.order_ref)

    with pytest.raises(Rejected, match="cancelled"):
        client.create_waybill(parcel)


def test_a_cancel_after_pickup_is_refused_with_sfs_reason(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.code == sf_simulator.ERROR_ALREADY_COLLECTED
    assert "collected" in str(refusal.value)
    assert not refusal.value.retryable
    assert sandbox.state.waybills[number]["cancelled"] is False
    assert client.pickups([number])[number] is not None


def test_cancelling_an_order_sf_never_received_is_rejected(client):
    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill("ORDER-NEVER-PLACED")
    assert refusal.value.code == sf_simulator.ERROR_ORDER_NOT_FOUND


def test_an_armed_server_error_makes_the_route_query_unavailable(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    sandbox.state.faults.arm("carrier", "server_error")

    with pytest.raises(Unavailable):
        client.pickups([number])


def test_an_armed_server_error_makes_a_cancel_unavailable_and_the_retry_cancels(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    sandbox.state.faults.arm("carrier", "server_error")

    with pytest.raises(Unavailable):
        client.cancel_waybill(parcel.order_ref)
    assert sandbox.state.waybills[number]["cancelled"] is False
    client.cancel_waybill(parcel.order_ref)
    assert sandbox.state.waybills[number]["cancelled"] is True


def test_a_wrong_checkword_can_neither_read_routes_nor_cancel(client, sandbox, account):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    wrong = SfCarrierClient(f"{sandbox.url}/sf", account["partner_id"], "not-the-checkword")

    with wrong:
        for attempt in (lambda: wrong.pickups([number]), lambda: wrong.cancel_waybill(parcel.order_ref)):
            with pytest.raises(Rejected) as refusal:
                attempt()
            assert refusal.value.code == sf_simulator.API_RESULT_BAD_DIGEST
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_another_accounts_parcel_shows_no_pickup(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    courier_collects(sandbox, [number])
    stranger = sf_simulator.register_partner(sandbox.state, f"partner-{next(_partner_numbers)}")

    with SfCarrierClient(f"{sandbox.url}/sf", stranger["partner_id"], stranger["checkword"]) as sf:
        assert sf.pickups([number]) == {number: None}


def test_the_pickup_endpoint_wants_numbers_or_all(sandbox):
    assert httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups", json={}).status_code == 422


def test_collecting_everything_skips_cancelled_and_already_collected_parcels():
    state = SandboxState()
    earlier = datetime(2026, 5, 1, 7, 0, tzinfo=timezone.utc)
    now = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
    state.waybills.update({
        "SF-WAITING": {"cancelled": False, "picked_up_at": None},
        "SF-CANCELLED": {"cancelled": True, "picked_up_at": None},
        "SF-GONE": {"cancelled": False, "picked_up_at": earlier},
    })

    assert sf_simulator.collect(state, None, now) == ["SF-WAITING"]
    assert state.waybills["SF-WAITING"]["picked_up_at"] == now
    assert state.waybills["SF-CANCELLED"]["picked_up_at"] is None
    assert state.waybills["SF-GONE"]["picked_up_at"] == earlier
    assert sf_simulator.collect(state, None, now) == []


def test_the_pickup_is_the_earliest_pickup_scan_in_whatever_order_sf_lists_events():
    routes = [
        {"opCode": "80", "acceptTime": "2026-04-12 18:00:00", "remark": "signed"},
        {"opCode": "50", "acceptTime": "2026-04-10 08:00:00", "remark": "collected"},
        {"opCode": "31", "acceptTime": "2026-04-11 10:00:00", "remark": "in transit"},
    ]
    assert pickup_time(routes) == datetime(2026, 4, 10, 0, 0, tzinfo=timezone.utc)


def test_a_parcel_delivered_without_a_pickup_scan_counts_as_collected_at_its_first_event():
    routes = [
        {"opCode": "80", "acceptTime": "2026-04-12 18:00:00"},
        {"opCode": "31", "acceptTime": "2026-04-11 10:00:00"},
    ]
    assert pickup_time(routes) == datetime(2026, 4, 11, 2, 0, tzinfo=timezone.utc)
    assert pickup_time([{"opCode": "31", "acceptTime": "2026-04-11 10:00:00"}]) is None
    assert pickup_time([]) is None


def test_an_unreadable_event_time_is_unavailable_rather_than_a_guess():
    with pytest.raises(Unavailable):
        pickup_time([{"opCode": "50", "acceptTime": "10/04/2026"}])
