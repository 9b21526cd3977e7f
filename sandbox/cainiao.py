"""Cainiao e-waybill (菜鸟电子面单) simulator, served on the Taobao TOP gateway.

A seller with a Cainiao e-waybill subscription buys waybill numbers of a real carrier
(`cp_code`: ZTO, YTO, SF...) through TOP, signed and authorised exactly like every other
TOP call (reference §5, §9.2): the gateway, signing, sessions, faults and error bodies
are `sandbox.taobao`'s, which imports this module and adds `HANDLERS` to its own.

* `cainiao.waybill.ii.get` [H]: one JSON parameter `param_waybill_cloud_print_apply_new_request`
  {cp_code, sender, trade_order_info_dtos[<=10]{object_id, order_info{order_channels_type,
  trade_order_list}, package_info, recipient{name, mobile, phone, address{...}, oaid, tid},
  template_url, user_id}}; answers `modules{waybill_cloud_print_response[{object_id,
  waybill_code, print_data, cp_code, real_cp_code}]}`. A Taobao receiver that is
  desensitised travels as `oaid` + `tid` and Cainiao opens it itself [H].
* `cainiao.waybill.ii.cancel` [H]: `cp_code`, `waybill_code`; answers `cancel_result`.
* `cainiao.waybill.ii.query.by.waybillcode` [H name, params]: `param_list[{cp_code,
  object_id, waybill_code}]`; answers `modules{waybill_cloud_print_with_result_desc_response[
  {object_id, success, error_code, error_message, waybill_cloud_print_response}]}` [H].
* `cainiao.waybill.ii.query.by.tradecode` [H name]: the waybills of our object ids
  (`param_list[{object_id, order_channels_type, trade_order_list}]` [M]); the client
  uses it to find the number to cancel.

Waybills live in `state.waybills` with `carrier` (our code of the real carrier),
`picked_up_at` and `cancelled`, so `POST /_sandbox/carrier/pickups` and SF's `collect`
rules (a cancelled waybill is not collected, a pickup keeps its first time) apply.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

from sandbox import taobao as top
from sandbox.carrier import collect as _carrier_collect
from sandbox.geography import is_known_province
from sandbox.taobao_render import oaid as trade_oaid

GET = "cainiao.waybill.ii.get"  # [H]
CANCEL = "cainiao.waybill.ii.cancel"  # [H]
QUERY_BY_WAYBILL = "cainiao.waybill.ii.query.by.waybillcode"  # [H]
QUERY_BY_TRADE = "cainiao.waybill.ii.query.by.tradecode"  # [H]
MAX_ORDERS_PER_GET = 10  # [H] trade_order_info_dtos: 数量限制为10
MAX_QUERIES = 10  # [L]
TEMPLATE_PREFIX = "http://cloudprint.cainiao.com/template/standard/"  # [H]
CHINA = timezone(timedelta(hours=8))

# --- UNVERIFIED ([L] unless marked): Cainiao's own refusals and number shapes -------------
# cp_code -> our carrier code. The codes are the usual ones; Cainiao's table is not held.
CP_CODES = {"ZTO": "ZTO", "YTO": "YTO", "STO": "STO", "YUNDA": "YUNDA", "SF": "SF",
            "EMS": "EMS", "HTKY": "JT", "POSTB": "POST"}  # fmt: skip
NUMBER_PREFIXES = {"ZTO": "73", "YTO": "YT", "STO": "77", "YUNDA": "43", "SF": "SF",
                   "EMS": "11", "HTKY": "55", "POSTB": "98"}  # fmt: skip
# One bad order refuses the whole call, naming its object_id in sub_msg: what TOP does with
# a mixed batch is not in the material we hold; the client copes with either answer.
WHOLE_CALL_REFUSED = True
BAD_CP_CODE = top.TopError(15, "Remote service error", "isv.cp-code-not-subscribed")
BAD_ADDRESS = top.TopError(15, "Remote service error", "isv.waybill-address-invalid")
BAD_RECEIVER = top.TopError(15, "Remote service error", "isv.waybill-receiver-invalid")
BAD_OAID = top.TopError(15, "Remote service error", "isv.waybill-oaid-invalid")
WAYBILL_NOT_FOUND = top.TopError(15, "Remote service error", "isv.waybill-not-exist")
ALREADY_COLLECTED = top.TopError(15, "Remote service error", "isv.waybill-already-collected")
# The query answers carry the state of each waybill; TOP documents a status ("如签收、发货、
# 失效") but no field we could read, so these two fields are the simulator's own.
STATUS_FIELD, STATUS_TIME_FIELD = "waybill_status", "status_time"
STATUS_ISSUED, STATUS_COLLECTED, STATUS_CANCELLED = "ISSUED", "GOT", "CANCELLED"
# --- end UNVERIFIED

_serials = itertools.count(int(time.time() * 1000) % 10**10)


def _json_param(params: dict, name: str) -> object:
    try:
        return json.loads(top._required(params, name))
    except ValueError:
        raise top.Refusal(top.INVALID_ARGUMENT, f"{name} is not JSON") from None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _cp_code(request: dict) -> str:
    cp_code = _text(request.get("cp_code"))
    if not cp_code:
        raise top.Refusal(top.MISSING_ARGUMENT, "Missing required arguments:cp_code")
    if cp_code not in CP_CODES:
        raise top.Refusal(BAD_CP_CODE, f"物流公司{cp_code}未开通电子面单服务")
    return cp_code


def _address_problem(who: str, party: object) -> str | None:
    party = party if isinstance(party, dict) else {}
    address = party.get("address") if isinstance(party.get("address"), dict) else {}
    for name in ("province", "city", "detail"):
        if not _text(address.get(name)):
            return f"{who}.address.{name}不能为空"
    if not is_known_province(address["province"]):
        return f"{who}.address.province {address['province']}无法识别"
    return None


def _check_sender(request: dict) -> dict:
    sender = request.get("sender")
    if not isinstance(sender, dict) or not _text(sender.get("name")):
        raise top.Refusal(top.MISSING_ARGUMENT, "Missing required arguments:sender.name")
    if not (_text(sender.get("mobile")) or _text(sender.get("phone"))):
        raise top.Refusal(top.MISSING_ARGUMENT, "Missing required arguments:sender.mobile")
    problem = _address_problem("sender", sender)
    if problem:
        raise top.Refusal(BAD_ADDRESS, problem)
    return sender


def _recipient_problem(index, shop: str, recipient: object) -> tuple[top.TopError, str] | None:
    """Why Cainiao would not print this receiver; an oaid must belong to the shop's tid."""
    recipient = recipient if isinstance(recipient, dict) else {}
    if _text(recipient.get("oaid")):
        wanted = _text(recipient.get("tid"))
        if not wanted:
            return top.MISSING_ARGUMENT, "recipient.tid不能为空: oaid needs the trade's tid"
        try:
            order = index.find(shop, wanted)
        except top.Refusal:
            return BAD_OAID, f"订单{wanted}不存在或不属于当前卖家"
        if trade_oaid(order) != recipient["oaid"]:
            return BAD_OAID, f"oaid与订单{wanted}不匹配"
        return None  # Cainiao opens the receiver itself; name and phone may stay empty
    if not _text(recipient.get("name")):
        return BAD_RECEIVER, "recipient.name不能为空"
    phone = _text(recipient.get("mobile")) or _text(recipient.get("phone"))
    if sum(c.isdigit() for c in phone) < 7 or "*" in phone:
        return BAD_RECEIVER, "recipient.mobile/phone不正确"
    if "*" in recipient["name"]:
        return BAD_RECEIVER, "recipient.name是脱敏值"
    problem = _address_problem("recipient", recipient)
    return (BAD_ADDRESS, problem) if problem else None


def _dto_problem(index, shop: str, dto: object) -> tuple[top.TopError, str] | None:
    if not isinstance(dto, dict) or not _text(dto.get("object_id")):
        return top.MISSING_ARGUMENT, "trade_order_info_dtos.object_id不能为空"
    order_info = dto.get("order_info")
    if (not isinstance(order_info, dict) or not _text(order_info.get("order_channels_type"))
            or not order_info.get("trade_order_list")):
        return top.MISSING_ARGUMENT, "order_info.order_channels_type/trade_order_list不能为空"
    if not _text(dto.get("template_url")).startswith(TEMPLATE_PREFIX):
        return top.INVALID_ARGUMENT, f"template_url must be {TEMPLATE_PREFIX}{{id}}"
    package = dto.get("package_info")
    if not isinstance(package, dict) or not package.get("items"):
        return top.MISSING_ARGUMENT, "package_info.items不能为空"
    return _recipient_problem(index, shop, dto.get("recipient"))


def _key(shop: str, cp_code: str, object_id: str) -> tuple[str, str, str]:
    return shop, cp_code, object_id


# (shop, cp_code, object_id) -> number. Module-level like sandbox.taobao's _APP_KINDS: the
# shared SandboxState has no field for it; a number counts only while it is in the
# state's waybills, so a fresh state never sees another's numbers.
_ISSUED: dict[tuple[str, str, str], str] = {}


def _issue(state, shop: str, cp_code: str, sender: dict, dto: dict) -> str:
    """The number for this object id: the one issued before, else a new one [M]."""
    key = _key(shop, cp_code, dto["object_id"])
    number = _ISSUED.get(key)
    if number in state.waybills:
        return number
    while True:
        number = f"{NUMBER_PREFIXES[cp_code]}{next(_serials) % 10**12:012d}"
        if number not in state.waybills:
            break
    state.waybills[number] = {
        "carrier": CP_CODES[cp_code],
        "via": "cainiao",
        "cp_code": cp_code,
        "shop": shop,
        "object_id": dto["object_id"],
        "order_info": dto["order_info"],
        "recipient": dto.get("recipient") or {},  # exactly what was sent, for tests
        "sender": sender,
        "package_info": dto["package_info"],
        "issued_at": datetime.now(timezone.utc),
        "picked_up_at": None,  # set by `collect` when the courier takes the parcel
        "cancelled": False,
    }
    _ISSUED[key] = number
    return number


def _print_data(number: str, record: dict, encrypt: bool) -> str:
    """Cloud-print content: encrypted when asked or when the receiver is an oaid [M]."""
    if encrypt or _text(record["recipient"].get("oaid")):
        sealed = hashlib.sha256(f"{number}|{record['object_id']}".encode()).hexdigest()
        return json.dumps({"encryptedData": sealed, "signature": sealed[:16],
                           "templateURL": TEMPLATE_PREFIX + "101", "ver": "waybill_print_secret_version_1"})
    return json.dumps({"data": {"waybillCode": number, "cpCode": record["cp_code"],
                                "recipient": record["recipient"], "sender": record["sender"]},
                       "templateURL": TEMPLATE_PREFIX + "101"}, ensure_ascii=False)


def waybill_get(index, shop: str, params: dict) -> dict:
    request = _json_param(params, "param_waybill_cloud_print_apply_new_request")
    if not isinstance(request, dict):
        raise top.Refusal(top.INVALID_ARGUMENT, "param_waybill_cloud_print_apply_new_request is not an object")
    cp_code, sender = _cp_code(request), _check_sender(request)
    dtos = request.get("trade_order_info_dtos")
    if not isinstance(dtos, list) or not 1 <= len(dtos) <= MAX_ORDERS_PER_GET:
        raise top.Refusal(top.INVALID_ARGUMENT, f"trade_order_info_dtos holds 1..{MAX_ORDERS_PER_GET}")
    state = index.state
    with state.lock:
        for dto in dtos:
            problem = _dto_problem(index, shop, dto)
            if problem:
                error, why = problem
                object_id = dto.get("object_id") if isinstance(dto, dict) else None
                raise top.Refusal(error, f"object_id={object_id}: {why}")
        modules = []
        for dto in dtos:
            number = _issue(state, shop, cp_code, sender, dto)
            record = state.waybills[number]
            if record["cancelled"]:
                raise top.Refusal(top.INVALID_ARGUMENT,
                                  f"object_id={dto['object_id']}: 面单{number}已取消,请更换object_id")
            modules.append({
                "object_id": dto["object_id"], "waybill_code": number, "cp_code": cp_code,
                "real_cp_code": cp_code, "parent_waybill_code": "",
                "print_data": _print_data(number, record, request.get("need_encrypt") is True),
            })
    return {"modules": {"waybill_cloud_print_response": modules}, "request_id": uuid.uuid4().hex}


def _mine(state, shop: str, cp_code: str, number: str) -> dict | None:
    record = state.waybills.get(number)
    if record and record.get("via") == "cainiao" and record["shop"] == shop and record["cp_code"] == cp_code:
        return record
    return None


def waybill_cancel(index, shop: str, params: dict) -> dict:
    cp_code, number = top._required(params, "cp_code"), top._required(params, "waybill_code")
    state = index.state
    with state.lock:  # the same lock as `collect`: a pickup and a cancel cannot both win
        record = _mine(state, shop, cp_code, number)
        if record is None:
            raise top.Refusal(WAYBILL_NOT_FOUND, f"面单{number}不存在")
        if record.get("picked_up_at"):
            raise top.Refusal(ALREADY_COLLECTED, f"面单{number}已揽收,不能取消")
        record["cancelled"] = True  # [L] cancelling twice answers true again
    return {"cancel_result": True, "request_id": uuid.uuid4().hex}


def _state_of(number: str, record: dict) -> dict:
    picked_up_at = record.get("picked_up_at")
    status = (STATUS_CANCELLED if record["cancelled"] else
              STATUS_COLLECTED if picked_up_at else STATUS_ISSUED)
    module = {"waybill_code": number, "cp_code": record["cp_code"], "real_cp_code": record["cp_code"],
              "print_data": _print_data(number, record, True), STATUS_FIELD: status}
    if picked_up_at:
        module[STATUS_TIME_FIELD] = picked_up_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return module


def _queries(params: dict) -> list[dict]:
    queries = _json_param(params, "param_list")
    if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
        raise top.Refusal(top.INVALID_ARGUMENT, f"param_list holds 1..{MAX_QUERIES} queries")
    return [query if isinstance(query, dict) else {} for query in queries]


def _answer(object_id: object, found: tuple[str, dict] | None) -> dict:
    if found is None:
        return {"object_id": object_id, "success": False, "error_code": WAYBILL_NOT_FOUND.sub_code,
                "error_message": "面单不存在"}
    return {"object_id": object_id, "success": True,
            "waybill_cloud_print_response": _state_of(*found)}


def query_by_waybill(index, shop: str, params: dict) -> dict:
    state, answers = index.state, []
    with state.lock:
        for query in _queries(params):
            number = _text(query.get("waybill_code"))
            record = _mine(state, shop, _text(query.get("cp_code")), number)
            answers.append(_answer(query.get("object_id"), (number, record) if record else None))
    return {"modules": {"waybill_cloud_print_with_result_desc_response": answers},
            "request_id": uuid.uuid4().hex}


def query_by_trade(index, shop: str, params: dict) -> dict:
    state, answers = index.state, []
    with state.lock:
        for query in _queries(params):
            object_id = _text(query.get("object_id"))
            found = None
            for cp_code in CP_CODES:
                number = _ISSUED.get(_key(shop, cp_code, object_id))
                if number and _mine(state, shop, cp_code, number):
                    found = (number, state.waybills[number])
            answers.append(_answer(object_id, found))
    return {"modules": {"waybill_cloud_print_with_result_desc_response": answers},
            "request_id": uuid.uuid4().hex}


def collect(state, numbers, now: datetime) -> list[str]:
    """The courier of the real carrier took these Cainiao waybills; SF's rules apply and
    other carriers' waybills are left alone."""
    return _carrier_collect(state, numbers, now, belongs=lambda record: "object_id" in record)


HANDLERS = {
    GET: waybill_get,
    CANCEL: waybill_cancel,
    QUERY_BY_WAYBILL: query_by_waybill,
    QUERY_BY_TRADE: query_by_trade,
}
top.HANDLERS.update(HANDLERS)
