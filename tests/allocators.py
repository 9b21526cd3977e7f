"""Allocator processes for the concurrency tests: each runs the real allocation task body
over every waiting order, at the same moment as the others."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from datetime import datetime, timezone


def allocate_everything(database_url: str, batch_size: int, pass_started: datetime, start, results) -> None:
    """One worker of an allocation pass that began at `pass_started`: wait for the start
    signal, then walk all waiting orders in batches."""
    os.environ["OMS_DATABASE_URL"] = database_url
    from tasks.allocate import allocate_stock  # imported here: each process starts cold

    totals: Counter = Counter()
    start.wait()
    began = time.perf_counter()
    cursor = 0
    while True:
        batch = allocate_stock.fn(batch_size, after_id=cursor, decided_before=pass_started)
        totals.update(allocated=batch.allocated, backordered=batch.backordered, replans=batch.replans,
                      batches=1)
        if batch.considered < batch_size:
            break
        cursor = batch.last_id
    results.put(dict(totals, seconds=time.perf_counter() - began, pid=os.getpid()))


def run_allocators(database_url: str, workers: int, batch_size: int, timeout: float = 240) -> list[dict]:
    """Start `workers` processes together; return what each did."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    # One pass, one start time, as one fulfil-orders run gives all its batches.
    pass_started = datetime.now(timezone.utc)
    processes = [context.Process(target=allocate_everything,
                                 args=(database_url, batch_size, pass_started, start, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    time.sleep(0.5)
    start.set()
    reports = [results.get(timeout=timeout) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        if process.exitcode != 0:
            raise RuntimeError(f"allocator {process.pid} exited with {process.exitcode}")
    return reports
