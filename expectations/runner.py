"""Run a Great Expectations suite from this folder over a batch of records.

A suite is a JSON file: its `expectations` are Great Expectations configurations, each
with `meta.reason`, the sentence an operator reads in the review queue. Loading a suite
checks every expectation against Great Expectations' registry and builds it, so a
misspelt type or a missing argument stops the pipeline with the file's name instead of
being dropped and letting bad rows through.

A fresh ephemeral context per call: a context shared between threads gave wrong results
here, and building one costs about 30 ms, which a batch of thousands easily carries.
`great_expectations` is imported inside the functions because importing it takes
seconds, and only the validate step needs it.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SUITES = Path(__file__).parent


class SuiteError(RuntimeError):
    """A suite file that cannot be used as written: a bug to fix, never a bad row."""


class UnknownExpectation(SuiteError):
    """A suite names an expectation type Great Expectations does not have."""


@dataclass
class SuiteOutcome:
    """Which records failed, and why; `checked` and `failed_expectations` feed the artifact."""

    checked: int
    reasons_by_row: dict[int, list[str]] = field(default_factory=dict)
    failed_expectations: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.reasons_by_row

    @property
    def failed_rows(self) -> int:
        return len(self.reasons_by_row)


@lru_cache(maxsize=None)
def load_suite_definition(name: str, directory: Path = SUITES) -> dict[str, Any]:
    """The suite's JSON as written, after checking its shape (no Great Expectations)."""
    path = directory / f"{name}.json"
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"no suite {name!r}: {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise SuiteError(f"{path} is not valid JSON: {error}") from None
    items = definition.get("expectations")
    if not isinstance(items, list) or not items:
        raise SuiteError(f"{path} has no list of expectations")
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise SuiteError(f"{path}: expectation #{position + 1} has no type")
        if not isinstance(item.get("kwargs"), dict):
            raise SuiteError(f"{path}: expectation #{position + 1} ({item['type']}) has no kwargs")
        if not str((item.get("meta") or {}).get("reason") or "").strip():
            raise SuiteError(f"{path}: expectation #{position + 1} ({item['type']}) has no meta.reason; "
                             "operators would see a bare expectation name")
    return definition


def load_suite(name: str, directory: Path = SUITES):
    """The suite as a Great Expectations `ExpectationSuite`, every expectation checked."""
    _quiet_import()
    return _build_suite(load_suite_definition(name, directory), directory / f"{name}.json")


def validate_records(suite_name: str, records: list[dict[str, Any]], directory: Path = SUITES) -> SuiteOutcome:
    suite = load_suite(suite_name, directory) if records else None
    if not records:
        return SuiteOutcome(checked=0)
    gx = _quiet_import()
    import pandas as pd

    context = gx.get_context(mode="ephemeral")
    _silence_progress_bars(context)
    batch = (
        context.data_sources.add_pandas("records")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": pd.DataFrame.from_records(records)})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    return _outcome(len(records), result)


def _quiet_import():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    # GX announces a temporary docs folder at INFO on every ephemeral context; its import
    # sets its own logger levels, so quieten it after importing.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx


def _build_suite(definition: dict[str, Any], path: Path):
    import great_expectations as gx
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.registry import get_expectation_impl

    suite = gx.ExpectationSuite(name=definition.get("name", path.stem))
    for position, item in enumerate(definition["expectations"]):
        where = f"{path}: expectation #{position + 1} ({item['type']})"
        try:
            get_expectation_impl(item["type"])
        except ExpectationNotFoundError:
            raise UnknownExpectation(f"{where} is not an expectation Great Expectations knows") from None
        configuration = ExpectationConfiguration(type=item["type"], kwargs=item["kwargs"], meta=item["meta"])
        try:
            # Building the expectation validates its arguments (a missing column, a bad
            # bound), which GX would otherwise only report when the batch runs.
            configuration.to_domain_obj()
        except Exception as error:
            raise SuiteError(f"{where} has arguments Great Expectations refuses: {error}") from None
        suite.add_expectation_configuration(configuration)
    return suite


def _silence_progress_bars(context) -> None:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)


def _outcome(checked: int, result) -> SuiteOutcome:
    reasons: dict[int, list[str]] = defaultdict(list)
    failed: dict[str, int] = {}
    for expectation_result in result.results:
        if expectation_result.success:
            continue
        config = expectation_result.expectation_config
        reason = config.meta.get("reason", config.type)
        if expectation_result.exception_info and expectation_result.exception_info.get(
            "raised_exception"
        ):
            # A suite that cannot run is a broken pipeline, not a bad order.
            raise SuiteError(
                f"expectation {config.type} could not run: "
                f"{expectation_result.exception_info.get('exception_message')}"
            )
        rows = sorted({int(row) for row in expectation_result.result.get("unexpected_index_list") or []})
        # Two expectations may share a reason (one rule written per country, say).
        failed[reason] = failed.get(reason, 0) + len(rows)
        for row in rows:
            if reason not in reasons[row]:
                reasons[row].append(reason)
    return SuiteOutcome(checked, dict(reasons), failed)
