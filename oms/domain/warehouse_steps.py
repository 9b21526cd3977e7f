"""Warehouse steps of a parcel, and what one scan of it comes to.

A parcel moves waybill printed -> packed -> weighed -> handed over, each step entered by
scanning its label. The rules a packer meets at the scanner:

- Steps only move forward. Scanning the step a parcel already has is harmless (a jittery
  scanner, a second look) and says when it was first scanned; scanning an earlier one is
  refused, because the history must not say a handed-over parcel was packed afterwards.
- A step may be skipped only if the station's policy lets it be: printing is optional by
  default (the label being scanned proves it was printed), weighing only where a station
  has no scale and is configured so.
- Weighing needs the scale's figure. A weight far from the SKUs' sum is accepted (the
  scale is the truth, the catalogue may be out of date) but flagged for a person, since
  a wrong item or a missing one is what the weight check exists to catch.
- A parcel whose order the platform cancelled is refused loudly whatever the step: the
  goods must go back to the shelf, not out of the door. So is one the carrier already has.

Merged orders share one parcel (one tracking number, several shipments): a scan judges
the parcel as a whole, since it is one box on the bench.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo
from enum import StrEnum

PRINTED, PACKED, WEIGHED, HANDED_OVER = "printed", "packed", "weighed", "handed_over"
STEPS: tuple[str, ...] = (PRINTED, PACKED, WEIGHED, HANDED_OVER)
SOURCES = ("cli", "scanner", "carrier")

_STEP_WORDS = {PRINTED: "waybill printed", PACKED: "packed", WEIGHED: "weighed", HANDED_OVER: "handed over"}


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # a new history row
    REPEATED = "repeated"  # that step was scanned before: nothing changes
    REFUSED = "refused"  # nothing recorded; the message tells the packer why


@dataclass(frozen=True)
class ScanPolicy:
    """How strict a station is; the defaults suit a station with a scale."""

    optional_steps: frozenset[str] = frozenset({PRINTED})
    # A weight is off when it differs from the expected one by more than both the share
    # and the grams: the share matters for heavy parcels, the grams for light ones (a box
    # and its filling weigh about as much as a small item).
    weight_tolerance_ratio: float = 0.2
    weight_tolerance_grams: int = 200
    display_zone: tzinfo = timezone.utc  # the warehouse's clock, for times in messages

    def __post_init__(self) -> None:
        unknown = set(self.optional_steps) - set(STEPS)
        if unknown:
            raise ValueError(f"unknown step(s) {sorted(unknown)}; steps are {', '.join(STEPS)}")
        if HANDED_OVER in self.optional_steps:
            raise ValueError("the handover cannot be optional: it is the step that says the parcel left")


DEFAULT_POLICY = ScanPolicy()


@dataclass(frozen=True)
class Scan:
    step: str
    tracking_number: str
    weight_grams: int | None = None
    station: str | None = None
    operator: str | None = None
    source: str = "cli"


@dataclass(frozen=True)
class StepRecord:
    step: str
    at: datetime
    station: str | None = None
    operator: str | None = None
    weight_grams: int | None = None


@dataclass(frozen=True)
class ParcelShipment:
    """One order's shipment inside the parcel, as the scan rule needs to see it."""

    shipment_id: int
    order_ref: str  # the platform's order id: what the packer finds on the packing slip
    status: str  # label_created | picked_up | voided
    # The platform cancelled the order (our order is cancelled, or the shipment carries
    # cancel_requested_at): whatever its status, it must not leave.
    cancelled: bool = False
    picked_up_at: datetime | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class Parcel:
    tracking_number: str
    shipments: tuple[ParcelShipment, ...]
    expected_grams: int | None = None  # the sum of its SKUs' weights, when known


@dataclass(frozen=True)
class ScanDecision:
    verdict: Verdict
    message: str
    shipment_ids: tuple[int, ...] = ()  # the shipments that get a history row
    weight_flag: str | None = None  # why a person should look at the weight


def malformed(scan: Scan) -> list[str]:
    """What makes a scan unreadable, before any parcel is looked at; empty when fine."""
    problems = []
    if scan.step not in STEPS:
        problems.append(f"unknown step {scan.step!r}; steps are {', '.join(STEPS)}")
    if not scan.tracking_number or not scan.tracking_number.strip():
        problems.append("a tracking number is needed")
    if scan.source not in SOURCES:
        problems.append(f"unknown source {scan.source!r}")
    if scan.weight_grams is not None and scan.weight_grams <= 0:
        problems.append(f"a weight must be a positive number of grams, not {scan.weight_grams}")
    if scan.step == WEIGHED and scan.weight_grams is None:
        problems.append("the weighed step needs the scale's weight in grams")
    return problems


def judge_scan(scan: Scan, parcel: Parcel, policy: ScanPolicy = DEFAULT_POLICY) -> ScanDecision:
    """The verdict on one scan of a parcel in its current state (see the module rules)."""
    # A cancelled order is said first, whatever else is wrong with the scan: it is the
    # one message that must not be missed at the bench.
    cancelled = [s.order_ref for s in parcel.shipments if s.cancelled]
    staying = [s for s in parcel.shipments if not s.cancelled and s.status == "label_created"]
    if cancelled and staying:
        # A merged parcel: the live orders' goods stay in the box, under the same label.
        return ScanDecision(Verdict.REFUSED, f"STOP: order {', '.join(cancelled)} cancelled on the platform, "
                                             "do not ship; take its items out of this parcel and put them back, "
                                             "then ask a supervisor to release the parcel")
    if cancelled:
        return ScanDecision(Verdict.REFUSED, f"STOP: order {', '.join(cancelled)} cancelled on the platform, "
                                             "do not ship; put the goods back")
    if any(s.status == "voided" for s in parcel.shipments):
        return ScanDecision(Verdict.REFUSED, "STOP: this waybill was voided, do not ship with this label; "
                                             "ask a supervisor for the parcel's new one")
    problems = malformed(scan)
    if problems:
        return ScanDecision(Verdict.REFUSED, "; ".join(problems))
    missing_step = [s for s in parcel.shipments if scan.step not in s.steps]
    if not missing_step:
        first = min((s.steps[scan.step] for s in parcel.shipments), key=lambda r: r.at)
        return ScanDecision(Verdict.REPEATED, f"already scanned {_STEP_WORDS[scan.step]} at "
                                              f"{_describe(first, policy)}; nothing changed")
    collected = [s for s in parcel.shipments if s.status == "picked_up"]
    if collected:
        when = min((s.picked_up_at for s in collected if s.picked_up_at), default=None)
        at = f" at {_clock(when, policy)}" if when else ""
        return ScanDecision(Verdict.REFUSED, f"the carrier already collected this parcel{at}; "
                                             "nothing can be scanned for it any more")
    for shipment in missing_step:
        refusal = _order_problem(scan.step, shipment, policy)
        if refusal:
            return ScanDecision(Verdict.REFUSED, refusal)
    ids = tuple(s.shipment_id for s in missing_step)
    if scan.step == WEIGHED:
        flag = weight_flag(scan.weight_grams, parcel.expected_grams, policy)
        if flag:
            return ScanDecision(Verdict.ACCEPTED, f"CHECK: {flag}; open the parcel and check the contents",
                                ids, weight_flag=flag)
        return ScanDecision(Verdict.ACCEPTED, f"weighed {scan.weight_grams} g", ids)
    return ScanDecision(Verdict.ACCEPTED, _STEP_WORDS[scan.step], ids)


def weight_flag(weighed: int, expected: int | None, policy: ScanPolicy = DEFAULT_POLICY) -> str | None:
    """Why the weight looks wrong, or None when it is within the tolerance (or nothing is
    known to compare it with)."""
    if expected is None or expected <= 0:
        return None
    allowed = max(expected * policy.weight_tolerance_ratio, policy.weight_tolerance_grams)
    if abs(weighed - expected) <= allowed:
        return None
    direction = "heavier" if weighed > expected else "lighter"
    return (f"weighed {weighed} g, {abs(weighed - expected)} g {direction} than the {expected} g "
            f"its SKUs add up to (tolerance {round(allowed)} g)")


def with_step(parcel: Parcel, shipment_ids: tuple[int, ...], record: StepRecord) -> Parcel:
    """The parcel after `record` was stored for those shipments (for the next scan of a batch)."""
    changed = tuple(replace(s, steps=s.steps | {record.step: record}) if s.shipment_id in shipment_ids else s
                    for s in parcel.shipments)
    return replace(parcel, shipments=changed)


def last_step(steps: dict[str, StepRecord] | list[str]) -> str | None:
    """The furthest step among those given."""
    reached = [step for step in STEPS if step in steps]
    return reached[-1] if reached else None


def _order_problem(step: str, shipment: ParcelShipment, policy: ScanPolicy) -> str | None:
    position = STEPS.index(step)
    furthest = last_step(shipment.steps)
    if furthest is not None and STEPS.index(furthest) > position:
        return (f"this parcel is already {_STEP_WORDS[furthest]} (at {_describe(shipment.steps[furthest], policy)}); "
                f"steps only move forward, ask a supervisor if {_STEP_WORDS[step]} must be redone")
    skipped = [s for s in STEPS[:position] if s not in shipment.steps and s not in policy.optional_steps]
    if skipped:
        return (f"not {_STEP_WORDS[skipped[0]]} yet: scan {skipped[0]} first "
                f"(this station may not skip {', '.join(skipped)})")
    return None


def _describe(record: StepRecord, policy: ScanPolicy) -> str:
    where = ", ".join(part for part in (record.station, record.operator) if part)
    return _clock(record.at, policy) + (f" ({where})" if where else "")


def _clock(moment: datetime, policy: ScanPolicy) -> str:
    local = moment.astimezone(policy.display_zone) if moment.tzinfo else moment
    return local.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()
