"""The Cainiao e-waybill client against the sandbox's TOP gateway, over real HTTP.

Waybills of ZTO are bought through a Taobao shop's Cainiao subscription, collected by the
(simulated) courier, asked about and cancelled through the client; the simulator's state
is read only to check what Cainiao received and holds.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.base import Parcel, ShopAccess, Waybill
from connectors.cainiao import CainiaoCarrierClient
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver
from sandbox import cainiao as cainiao_simulator
from sandbox import taobao as taobao_simulator
from sandbox import taobao_render as render
from sandbox.model import SimLine, SimOrder

UTC = timezone.utc
_order_refs = itertools.count(1)
_order_ids = itertools.count(900_000_001)  # far above the generator's and other tests' ids


class RecordingClient(httpx.Client):
    """An httpx client that keeps every TOP method it called and the form it sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        super().__init__(timeout=10, event_hooks={"request": [self._record]})

    def _record(self, request: httpx.Request) -> None:
        self.sent.append({**dict(request.url.params), **dict(parse_qsl(request.content.decode()))})

    def methods(self) -> list[str]:
        return [call["method"] for call in self.sent]


@pytest.fixture
def credentials(sandbox, shop_name):
    return taobao_simulator.register_shop(sandbox.state, shop_name, datetime.now(UTC))


@pytest.fixture
def http():
    with RecordingClient() as client:
        yield client


def cainiao(sandbox, shop_name, credentials, http=None, **changed) -> CainiaoCarrierClient:
    access = ShopAccess(shop_name, "taobao", f"{sandbox.url}/taobao", {**credentials, **changed})
    return CainiaoCarrierClient(access, cp_code="ZTO", http=http)


@pytest.fixture
def client(sandbox, shop_name, credentials, http):
    with cainiao(sandbox, shop_name, credentials, http) as carrier:
        yield carrier


def a_parcel(**receiver_changes) -> Parcel:
    fields = dict(name="测试收件人", phone="+8613800138000", province="广东省", city="深圳市",
                  district="南山区", address="南山区示例路1号2栋301室")  # fmt: skip
    fields.update(receiver_changes)
    return Parcel(order_ref=f"CN-ORDER-{next(_order_refs)}", receiver=Receiver(**fields),
                  weight_grams=1250, items=[("保温杯 白色", 2)])  # fmt: skip


def a_taobao_trade(sandbox, shop) -> SimOrder:
    now = datetime.now(UTC)
    order = SimOrder(
        order_id=next(_order_ids), shop=shop, status="paid", currency="CNY", created_at=now,
        updated_at=now, lines=[SimLine("SKU-7", "帆布包 黑色", 2, Decimal("59.00"), 1)],
        shipping_fee=Decimal("8"), receiver_name="欧阳娜", phone="13912345678", province="浙江省",
        city="杭州市", district="西湖区", address="文三路 88 号 2 栋 301 室",
    )
    with sandbox.state.lock:
        sandbox.state.orders[shop].append(order)
    return order


def masked_parcel(order: SimOrder, order_ref: str | None = None) -> Parcel:
    """The parcel of a Taobao trade as the pipeline holds it: masks plus the oaid."""
    receiver = Receiver(name="欧*娜", phone="139****5678", province="浙江省", city="杭州市",
                        district="西湖区", address="文三路**", masked=True,
                        encrypted={"oaid": render.oaid(order)})  # fmt: skip
    return Parcel(order_ref=order_ref or str(render.tid(order)), receiver=receiver,
                  weight_grams=800, items=[("帆布包 黑色", 2)])  # fmt: skip


def courier_collects(sandbox, numbers: list[str]) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/carrier/pickups",
                          json={"tracking_numbers": numbers})  # fmt: skip
    response.raise_for_status()
    return response.json()


def orders_per_get(http: RecordingClient) -> list[int]:
    gets = [c for c in http.sent if c["method"] == cainiao_simulator.GET]
    return [len(json.loads(c["param_waybill_cloud_print_apply_new_request"])["trade_order_info_dtos"])
            for c in gets]


# ---- waybills ---------------------------------------------------------------------------


def test_a_batch_of_up_to_ten_parcels_takes_one_call_and_zto_numbers(client, http, sandbox):
    parcels = [a_parcel() for _ in range(7)]
    outcomes = client.create_waybills(parcels)

    assert all(isinstance(outcome, Waybill) for outcome in outcomes)
    assert {outcome.carrier for outcome in outcomes} == {"ZTO"}
    assert orders_per_get(http) == [7]
    assert len({outcome.tracking_number for outcome in outcomes}) == 7
    for parcel, outcome in zip(parcels, outcomes):
        record = sandbox.state.waybills[outcome.tracking_number]
        assert record["carrier"] == "ZTO" and record["cp_code"] == "ZTO"
        assert record["object_id"] == parcel.order_ref
        assert record["package_info"]["weight"] == 1250


def test_twenty_three_parcels_go_in_three_calls_of_at_most_ten(client, http):
    parcels = [a_parcel() for _ in range(23)]
    outcomes = client.create_waybills(parcels)

    assert orders_per_get(http) == [10, 10, 3]
    assert all(isinstance(outcome, Waybill) for outcome in outcomes)
    assert len({outcome.tracking_number for outcome in outcomes}) == 23


def test_the_simulator_refuses_more_than_ten_orders_in_one_call(sandbox, credentials):
    dto = {"object_id": "x", "order_info": {"order_channels_type": "OTHERS", "trade_order_list": ["x"]}}
    request = {"cp_code": "ZTO", "sender": {"name": "a", "mobile": "13800000000", "address": {
        "province": "浙江省", "city": "杭州市", "detail": "1号"}}, "trade_order_info_dtos": [dto] * 11}
    with pytest.raises(taobao_simulator.Refusal) as refusal:
        cainiao_simulator.waybill_get(None, "any", {
            "param_waybill_cloud_print_apply_new_request": json.dumps(request)})
    assert refusal.value.error.code == 41 and "1..10" in refusal.value.sub_msg


def test_the_same_object_id_twice_gets_the_same_number_and_one_waybill(client, sandbox):
    parcel = a_parcel()
    first = client.create_waybills([parcel])[0]
    second = client.create_waybills([parcel, a_parcel()])[0]

    assert first == second
    issued = [r for r in sandbox.state.waybills.values() if r.get("object_id") == parcel.order_ref]
    assert len(issued) == 1


def test_a_masked_taobao_receiver_is_sent_as_oaid_and_tid_never_as_masks(
    client, sandbox, shop_name
):
    order = a_taobao_trade(sandbox, shop_name)
    waybill = client.create_waybill(masked_parcel(order))

    record = sandbox.state.waybills[waybill.tracking_number]
    sent = record["recipient"]
    assert sent["oaid"] == render.oaid(order) and sent["tid"] == str(render.tid(order))
    assert "name" not in sent and "mobile" not in sent and "detail" not in sent["address"]
    assert "*" not in json.dumps(sent, ensure_ascii=False)
    assert record["order_info"] == {"order_channels_type": "TB",
                                    "trade_order_list": [str(render.tid(order))]}


def test_a_parcel_named_otherwise_takes_its_tid_from_the_mapping(client, sandbox, shop_name):
    order = a_taobao_trade(sandbox, shop_name)
    parcel = masked_parcel(order, order_ref="MERGED-1-2")
    outcome = client.create_waybills([parcel], trade_ids={"MERGED-1-2": str(render.tid(order))})[0]

    assert sandbox.state.waybills[outcome.tracking_number]["recipient"]["tid"] == str(render.tid(order))


def test_a_masked_receiver_without_a_tid_is_refused_before_anything_is_sent(client, http, sandbox, shop_name):
    parcel = masked_parcel(a_taobao_trade(sandbox, shop_name), order_ref="NO-TID")
    outcome = client.create_waybills([parcel])[0]

    assert isinstance(outcome, Rejected) and outcome.code == "no_oaid"
    assert http.sent == []


def test_a_wrong_oaid_is_refused_by_cainiao(client, sandbox, shop_name):
    order = a_taobao_trade(sandbox, shop_name)
    parcel = masked_parcel(order)
    parcel.receiver.encrypted["oaid"] = "1" + "0" * 31
    outcome = client.create_waybills([parcel])[0]

    assert isinstance(outcome, Rejected)
    assert outcome.body["sub_code"] == cainiao_simulator.BAD_OAID.sub_code


def test_a_plaintext_receiver_is_sent_as_plaintext(client, sandbox):
    waybill = client.create_waybill(a_parcel())

    record = sandbox.state.waybills[waybill.tracking_number]
    assert record["recipient"] == {"name": "测试收件人", "mobile": "+8613800138000", "address": {
        "province": "广东省", "city": "深圳市", "district": "南山区", "detail": "南山区示例路1号2栋301室"}}
    assert record["order_info"]["order_channels_type"] == "OTHERS"
    assert "oaid" not in record["recipient"]


def test_a_wrong_signature_gets_tops_error_body_and_rejected(sandbox, shop_name, credentials):
    before = len(sandbox.state.waybills)
    with cainiao(sandbox, shop_name, credentials, app_secret="not-the-secret") as wrong:
        with pytest.raises(Rejected) as refusal:
            wrong.create_waybills([a_parcel(), a_parcel()])

    assert refusal.value.code == 25
    assert refusal.value.body["msg"] == "Invalid Signature" and "request_id" in refusal.value.body
    assert not refusal.value.retryable
    assert len(sandbox.state.waybills) == before


def test_a_batch_with_bad_addresses_refuses_those_parcels_and_numbers_the_others(client, sandbox):
    parcels = [a_parcel(), a_parcel(province="火星省"), a_parcel(city=None), a_parcel()]
    outcomes = client.create_waybills(parcels)

    assert [type(outcome) for outcome in outcomes] == [Waybill, Rejected, Rejected, Waybill]
    assert outcomes[1].body["sub_code"] == cainiao_simulator.BAD_ADDRESS.sub_code
    assert "province" in str(outcomes[1]) and "city" in str(outcomes[2])
    assert parcels[1].order_ref in str(outcomes[1])
    for parcel, outcome in zip(parcels[::3], outcomes[::3]):
        assert sandbox.state.waybills[outcome.tracking_number]["object_id"] == parcel.order_ref


def test_an_outage_raises_unavailable(client, sandbox):
    sandbox.state.faults.arm("taobao", "server_error", 1)
    with pytest.raises(Unavailable):
        client.create_waybills([a_parcel()])


# ---- pickups and cancels ----------------------------------------------------------------


def test_a_parcel_the_courier_has_not_collected_reports_no_pickup(client):
    waybill = client.create_waybill(a_parcel())
    number = waybill.tracking_number
    assert client.pickups([number]) == {number: None}


def test_after_the_courier_came_the_pickup_time_is_in_utc(client, sandbox):
    number = client.create_waybill(a_parcel()).tracking_number
    other = client.create_waybill(a_parcel()).tracking_number
    visit = courier_collects(sandbox, [number])

    picked_up = client.pickups([number, other])
    collected_at = datetime.fromisoformat(visit["collected_at"])
    assert visit["collected"] == [number]
    assert picked_up[other] is None
    assert picked_up[number] == collected_at.replace(microsecond=0)  # TOP times are whole seconds
    assert picked_up[number].utcoffset() == timedelta(0)


def test_a_waybill_is_cancelled_before_pickup_and_is_not_collected_after(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    client.cancel_waybill(parcel.order_ref)

    assert sandbox.state.waybills[number]["cancelled"] is True
    assert courier_collects(sandbox, [number])["collected"] == []
    client.cancel_waybill(parcel.order_ref)  # twice is harmless
    with pytest.raises(Rejected):  # a cancelled number never comes back as printable
        client.create_waybill(parcel)


def test_a_waybill_the_courier_collected_cannot_be_cancelled(client, sandbox):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])

    with pytest.raises(Rejected) as refusal:
        client.cancel_waybill(parcel.order_ref)
    assert refusal.value.body["sub_code"] == cainiao_simulator.ALREADY_COLLECTED.sub_code
    assert sandbox.state.waybills[number]["cancelled"] is False


def test_another_shops_waybills_are_unknown(client, sandbox, shop_name):
    parcel = a_parcel()
    number = client.create_waybill(parcel).tracking_number
    courier_collects(sandbox, [number])
    stranger = taobao_simulator.register_shop(sandbox.state, shop_name + "-other", datetime.now(UTC))
    with cainiao(sandbox, shop_name + "-other", stranger) as other:
        assert other.pickups([number]) == {number: None}
        with pytest.raises(Rejected):
            other.cancel_waybill(parcel.order_ref)
