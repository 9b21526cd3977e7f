"""The Kuaidi100 e-waybill client against the sandbox's Kuaidi100 simulator, over HTTP."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors.base import Parcel, Waybill
from connectors.kuaidi100 import (
    Kuaidi100CarrierClient,
    label_sign,
    pickup_time,
    query_sign,
)
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import kuaidi100 as k100_simulator

_orders = itertools.count(1)


@pytest.fixture
def account(sandbox):
    return k100_simulator.register_account(sandbox.state)


def a_client(sandbox, account, carrier="ZTO", **changes) -> Kuaidi100CarrierClient:
    fields = {**account, **changes}
    base = f"{sandbox.url}/kuaidi100"
    return Kuaidi100CarrierClient(base, base, fields["key"], fields["secret"], fields["customer"],
                                  carrier, partner_id="demo-monthly-account")  # fmt: skip


@pytest.fixture
def client(sandbox, account):
    with a_client(sandbox, account) as k100:
        yield k100


def a_parcel(**receiver_changes) -> Parcel:
    fields = dict(name="测试收件人", phone="+8613800138000", province="广东省", city="深圳市",
                  district="南山区", address="南山区示例路1号2栋301室")  # fmt: skip
    fields.update(receiver_changes)
    return Parcel(order_ref=f"K100-ORDER-{next(_orders)}", receiver=Receiver(**fields),
                  weight_grams=1250, items=[("保温杯 白色", 2)])  # fmt: skip


def courier_collects(sandbox, numbers: list[str]) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def test_the_signs_are_uppercase_md5_of_kuaidi100s_concatenations():
    # Computed outside Python with md5sum, uppercased.
    for sign in (label_sign, k100_simulator.label_sign):
        assert sign('{"a":1}', "1700000000000", "key", "secret") == "02ABE0B0C5C14E06EFBC8395E72B7160"
    for sign in (query_sign, k100_simulator.query_sign):
        assert sign('{"com":"zhongtong","num":"7"}', "key", "CUSTOMER") == \
            "EFE9A73CC49AA6F503334A45D4B9E81F"


def test_each_parcel_gets_a_waybill_of_the_real_carrier(client, sandbox):
    parcels = [a_parcel(), a_parcel()]
    waybills = client.create_waybills(parcels)

    assert [w.carrier for w in waybills] == ["ZTO", "ZTO"]
    assert waybills[0].tracking_number != waybills[1].tracking_number
    for parcel, waybill in zip(parcels, waybills):
        record = sandbox.state.waybills[waybill.tracking_number]
        assert (record["carrier"], record["kuaidicom"], record["via"]) == ("ZTO", "zhongtong", "kuaidi100")
        assert record["order_id"] == parcel.order_ref
        assert record["receiver"]["printAddr"] == "广东省深圳市南山区示例路1号2栋301室"


def test_another_carrier_is_named_in_the_label_order(sandbox, account):
    with a_client(sandbox, account, carrier="YTO") as yto:
        waybill = yto.create_waybill(a_parcel())
    assert waybill.carrier == "YTO"
    assert sandbox.state.waybills[waybill.tracking_number]["kuaidicom"] == "yuantong"


def test_an_unmapped_carrier_is_refused_before_any_request(account):
    sent: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda request: sent.append(request)))
    with pytest.raises(Rejected) as refusal:
        Kuaidi100CarrierClient("http://unused", "http://unused", account["key"], account["secret"],
                               account["customer"], "DHL", http=http)  # fmt: skip
    assert refusal.value.code == "unmapped_carrier"
    assert sent == []


def test_the_same_order_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    assert client.create_waybill(parcel) == client.create_waybill(parcel)
    issued = [r for r in sandbox.state.waybills.values() if r.get("order_id") == parcel.order_ref]
    assert len(issued) == 1


def test_a_wrong_secret_gets_kuaidi100s_error_body_and_a_rejection(sandbox, account):
    with a_client(sandbox, account, secret="not-the-secret") as wrong:
        outcomes = wrong.create_waybills([a_parcel()])
    assert isinstance(outcomes[0], Rejected)
    assert outcomes[0].code == k100_simulator.ERROR_SIGN
    assert outcomes[0].body["result"] is False
    assert not [r for r in sandbox.state.waybills.values() if r.get("key") == account["key"]]


def test_a_wrong_customer_cannot_track(client, sandbox, account):
    number = client.create_waybill(a_parcel()).tracking_number
    with a_client(sandbox, account, customer="NOT-THE-CUSTOMER") as wrong:
        with pytest.raises(Rejected) as refusal:
            wrong.pickups([number])
    assert refusal.value.code == k100_simulator.ERROR_SIGN


def test_a_bad_address_is_refused_for_its_parcel_while_the_others_get_numbers(client):
    outcomes = client.create_waybills([a_parcel(), a_parcel(address=None), a_parcel()])
    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Waybill]
    assert outcomes[1].code == k100_simulator.ERROR_ADDRESS
    assert "printAddr" in str(outcomes[1])


def test_pickups_are_none_until_the_courier_came_then_the_time_in_utc(client, sandbox):
    waiting, taken = (client.create_waybill(a_parcel()).tracking_number for _ in range(2))
    assert client.pickups([waiting, taken]) == {waiting: None, taken: None}

    visit = courier_collects(sandbox, [taken])
    answers = client.pickups([waiting, taken])

    assert visit["collected"] == [taken]
    assert answers[waiting] is None
    assert answers[taken] == datetime.fromisoformat(visit["collected_at"]).replace(microsecond=0)
    assert answers[taken].utcoffset() == timedelta(0)


def test_the_simulators_own_collect_takes_only_kuaidi100_parcels(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    sandbox.state.waybills["SF-ELSEWHERE"] = {"carrier": "SF", "cancelled": False, "picked_up_at": None}
    try:
        collected = k100_simulator.collect(sandbox.state, [number, "SF-ELSEWHERE"],
                                           datetime.now(timezone.utc))  # fmt: skip
        assert collected == [number]
        assert sandbox.state.waybills["SF-ELSEWHERE"]["picked_up_at"] is None
    finally:
        del sandbox.state.waybills["SF-ELSEWHERE"]


def test_a_cancel_before_pickup_works_and_nothing_is_collected_after(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)
    client.cancel_waybill(parcel.order_ref)

    assert sandbox.state.waybills[number]["cancelled"] is True
    assert courier_collects(sandbox, [number])["collected"] == []
    with pytest.raises(Rejected):
        client.create_waybill(parcel)


def test_a_cancel_by_another_client_finds_the_number_by_the_order(sandbox, account, client):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    with a_client(sandbox, account) as fresh:
        fresh.cancel_waybill(parcel.order_ref)
    assert sandbox.state.waybills[number]["cancelled"] is True


def test_a_cancel_after_pickup_is_refused(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.code == k100_simulator.ERROR_ALREADY_COLLECTED
    assert not refusal.value.retryable
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_a_server_error_raises_unavailable_for_every_call(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    for attempt in (lambda: client.create_waybills([a_parcel()]), lambda: client.pickups([number]),
                    lambda: client.cancel_waybill(parcel.order_ref)):  # fmt: skip
        sandbox.state.faults.arm(k100_simulator.FAULTS, "server_error")
        with pytest.raises(Unavailable):
            attempt()
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_the_pickup_is_the_earliest_collection_event_in_utc():
    answer = {"state": "0", "data": [
        {"time": "2026-04-11 10:00:00", "status": "在途", "context": "运输中"},
        {"time": "2026-04-10 08:00:00", "status": "揽收", "context": "已揽收"},
    ]}
    assert pickup_time(answer) == datetime(2026, 4, 10, 0, 0, tzinfo=timezone.utc)
    in_transit_only = {"state": "0", "data": answer["data"][:1]}
    assert pickup_time(in_transit_only) == datetime(2026, 4, 11, 2, 0, tzinfo=timezone.utc)
    assert pickup_time({"state": "2", "data": []}) is None
