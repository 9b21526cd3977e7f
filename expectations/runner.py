"""Run a Great Expectations suite from this folder over a batch of records.

A fresh ephemeral context per call: a context shared between threads gave wrong results
here, and building one costs about 30 ms, which a batch of thousands easily carries.
`great_expectations` is imported inside the function because importing it takes seconds,
and only the validate step needs it.
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


@dataclass
class SuiteOutcome:
    """Which records failed, and why; `checked` and `failed_expectations` feed the artifact."""

    checked: int
    reasons_by_row: dict[int, list[str]] = field(default_factory=dict)
    failed_expectations: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.reasons_by_row


@lru_cache(maxsize=None)
def load_suite_definition(name: str) -> dict[str, Any]:
    return json.loads((SUITES / f"{name}.json").read_text(encoding="utf-8"))


def validate_records(suite_name: str, records: list[dict[str, Any]]) -> SuiteOutcome:
    if not records:
        return SuiteOutcome(checked=0)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import pandas as pd

    # GX announces a temporary docs folder at INFO on every ephemeral context; its import
    # sets its own logger levels, so quieten it after importing.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

    suite = _build_suite(gx, load_suite_definition(suite_name))
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


def _build_suite(gx, definition: dict[str, Any]):
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    suite = gx.ExpectationSuite(name=definition["name"])
    for item in definition["expectations"]:
        suite.add_expectation_configuration(
            ExpectationConfiguration(type=item["type"], kwargs=item["kwargs"], meta=item["meta"])
        )
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
            raise RuntimeError(
                f"expectation {config.type} could not run: "
                f"{expectation_result.exception_info.get('exception_message')}"
            )
        rows = expectation_result.result.get("unexpected_index_list") or []
        failed[reason] = len(rows)
        for row in rows:
            reasons[int(row)].append(reason)
    return SuiteOutcome(checked, dict(reasons), failed)
