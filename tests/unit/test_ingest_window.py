"""Ingest windows are walked in slices that cover them exactly once."""

from datetime import datetime, timedelta, timezone

from tasks.ingest import Window

START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_slices_cover_the_window_end_to_end_without_gaps_or_overlap():
    window = Window(START, START + timedelta(hours=30))
    pieces = window.slices(timedelta(hours=12))
    assert [(p.start - START, p.end - START) for p in pieces] == [
        (timedelta(0), timedelta(hours=12)),
        (timedelta(hours=12), timedelta(hours=24)),
        (timedelta(hours=24), timedelta(hours=30)),
    ]


def test_an_empty_window_has_no_slices():
    assert Window(START, START).slices(timedelta(hours=1)) == []
