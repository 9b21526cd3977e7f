"""The JD Logistics e-waybill client against the sandbox's JD Logistics simulator, over HTTP."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.jdl import JdlCarrierClient, pickup_time
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import jdl as jdl_simulator

_customers = itertools.count(1)
_orders = itertools.count(1)


@pytest.fixture
def account(sandbox):
    return jdl_simulator.register_customer(sandbox.state, f"010K{next(_customers):06d}")


def a_client(sandbox, account, **changes) -> JdlCarrierClient:
    fields = {**account, **changes}
    return JdlCarrierClient(f"{sandbox.url}/jdl", fields["app_key"], fields["app_secret"],
                            fields["access_token"], fields["customer_code"])  # fmt: skip


@pytest.fixture
def client(sandbox, account):
    with a_client(sandbox, account) as jdl:
        yield jdl


def a_parcel(**receiver_changes) -> Parcel:
    fields = dict(name="测试收件人", phone="+8613800138000", province="广东省", city="深圳市",
                  district="南山区", address="南山区示例路1号2栋301室")  # fmt: skip
    fields.update(receiver_changes)
    return Parcel(order_ref=f"JDL-ORDER-{next(_orders)}", receiver=Receiver(**fields),
                  weight_grams=1250, items=[("保温杯 白色", 2)])  # fmt: skip


def courier_collects(sandbox, numbers: list[str]) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def test_each_parcel_gets_a_jd_waybill_that_the_carrier_records(client, sandbox):
    parcels = [a_parcel(), a_parcel()]
    waybills = client.create_waybills(parcels)

    assert [w.carrier for w in waybills] == ["JD", "JD"]
    assert waybills[0].tracking_number != waybills[1].tracking_number
    for parcel, waybill in zip(parcels, waybills):
        assert waybill.tracking_number.startswith(jdl_simulator.WAYBILL_PREFIX)
        record = sandbox.state.waybills[waybill.tracking_number]
        assert (record["carrier"], record["order_id"]) == ("JD", parcel.order_ref)


def test_the_same_order_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    assert client.create_waybill(parcel) == client.create_waybill(parcel)
    issued = [r for r in sandbox.state.waybills.values() if r.get("order_id") == parcel.order_ref]
    assert len(issued) == 1


def test_a_wrong_secret_gets_jds_error_response_and_a_rejection(sandbox, account):
    with a_client(sandbox, account, app_secret="not-the-secret") as wrong:
        outcomes = wrong.create_waybills([a_parcel()])
    assert isinstance(outcomes[0], Rejected)
    assert outcomes[0].code == jdl_simulator.INVALID_SIGN[0]
    assert "error_response" in outcomes[0].body
    assert not [r for r in sandbox.state.waybills.values()
                if r.get("customer_code") == account["customer_code"]]  # fmt: skip


def test_a_bad_address_is_refused_for_its_parcel_while_the_others_get_numbers(client):
    outcomes = client.create_waybills([a_parcel(), a_parcel(address=None), a_parcel(province="火星省")])
    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Rejected]
    assert outcomes[1].code == jdl_simulator.ERROR_ADDRESS
    assert "receiveAddress" in str(outcomes[1])
    assert "province" in str(outcomes[2])


def test_pickups_are_none_until_the_courier_came_then_the_time_in_utc(client, sandbox):
    waiting, taken = (client.create_waybill(a_parcel()).tracking_number for _ in range(2))
    assert client.pickups([waiting, taken]) == {waiting: None, taken: None}

    visit = courier_collects(sandbox, [taken])
    answers = client.pickups([waiting, taken])

    assert visit["collected"] == [taken]
    assert answers[waiting] is None
    assert answers[taken] == datetime.fromisoformat(visit["collected_at"]).replace(microsecond=0)
    assert answers[taken].utcoffset() == timedelta(0)


def test_the_simulators_own_collect_takes_only_jd_parcels(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    sandbox.state.waybills["SF-ELSEWHERE"] = {"carrier": "SF", "cancelled": False, "picked_up_at": None}
    now = datetime.now(timezone.utc)
    try:
        assert jdl_simulator.collect(sandbox.state, [number, "SF-ELSEWHERE"], now) == [number]
        assert sandbox.state.waybills["SF-ELSEWHERE"]["picked_up_at"] is None
    finally:
        del sandbox.state.waybills["SF-ELSEWHERE"]


def test_a_cancel_before_pickup_works_and_nothing_is_collected_after(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)
    client.cancel_waybill(parcel.order_ref)  # a repeated cancel is harmless

    assert sandbox.state.waybills[number]["cancelled"] is True
    assert courier_collects(sandbox, [number])["collected"] == []
    with pytest.raises(Rejected):
        client.create_waybill(parcel)


def test_a_cancel_by_another_client_finds_the_number_by_the_order(sandbox, account, client):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    with a_client(sandbox, account) as fresh:  # e.g. another process, knowing only the order
        fresh.cancel_waybill(parcel.order_ref)
    assert sandbox.state.waybills[number]["cancelled"] is True


def test_a_cancel_after_pickup_is_refused(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.code == jdl_simulator.ERROR_ALREADY_COLLECTED
    assert not refusal.value.retryable
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_cancelling_an_order_jd_never_received_is_rejected(client):
    with pytest.raises(Rejected):
        client.cancel_waybill("JDL-NEVER-PLACED")


def test_a_server_error_raises_unavailable_for_every_call(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    for attempt in (lambda: client.create_waybills([a_parcel()]), lambda: client.pickups([number]),
                    lambda: client.cancel_waybill(parcel.order_ref)):  # fmt: skip
        sandbox.state.faults.arm(jdl_simulator.FAULTS, "server_error")
        with pytest.raises(Unavailable):
            attempt()
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_the_pickup_is_the_earliest_pickup_event_in_utc():
    events = [{"opeTitle": "配送员收货", "opeTime": "2026-04-12 18:00:00"},
              {"opeTitle": "揽收", "opeTime": "2026-04-10 08:00:00"}]  # fmt: skip
    assert pickup_time(events) == datetime(2026, 4, 10, 0, 0, tzinfo=timezone.utc)
    assert pickup_time(events[:1]) is None
    with pytest.raises(Unavailable):
        pickup_time([{"opeTitle": "揽收", "opeTime": "10/04/2026"}])
