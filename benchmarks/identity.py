"""How well and how fast `resolve_customers` finds one customer across channels.

For each size the labelled synthetic set of tests/customer_records.py (about 2.7 records
per person: several platforms, masked and encrypted values, typos, households,
neighbours, shared masks and common names) is resolved twice, each time in a fresh
child process (multiprocessing, spawn), so that one run's memory does not hide the
other's:

- `resolver`: `resolve_customers` with its default policy (exact keys, then names and
  addresses within blocks);
- `floor`: the same function with `MatchingPolicy(fuzzy=False)`: phone, e-mail and
  buyer-id keys joined by connected components, nothing else - the cheapest resolver
  that still reads phones properly, and what the fuzzy stage adds is the difference.

Precision, recall and F1 are pairwise (two records of one person in one cluster is a
true pair), counted from contingency tables (the sum of C(n, 2) over cluster x person
cells), never by listing pairs. `rec/s` is records over the wall time of the call;
generating the records is not timed. `peak MB` is the child's ru_maxrss; `base MB` is
its resident size just before the call (Python, libraries and the records themselves),
so the call's own memory is at most the difference.

    python benchmarks/identity.py                          # 10k, 100k and 1M records
    python benchmarks/identity.py --sizes 10000,100000

It prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORDS_PER_PERSON = 2.7  # what labelled_customer_records draws on average
SEED = 8
MODES = ("resolver", "floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="records per run, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    context = multiprocessing.get_context("spawn")
    rows = []
    for size in sizes:
        for mode in MODES:
            with context.Pool(1) as pool:
                rows.append(pool.apply(measure, (size, mode)))
            print(f"measured {size} records, {mode}", file=sys.stderr, flush=True)
    print_table(rows)


def measure(size: int, mode: str) -> dict:
    """One run in this (fresh) process: generate, resolve, score."""
    import pandas as pd

    from oms.domain.identity import MatchingPolicy, resolve_customers
    from tests.customer_records import labelled_customer_records

    records = labelled_customer_records(int(size / RECORDS_PER_PERSON) + 1, seed=SEED).head(size)
    truth = records.pop("person")
    policy = MatchingPolicy() if mode == "resolver" else MatchingPolicy(fuzzy=False)
    base = _resident_megabytes()
    started = time.perf_counter()
    clusters = resolve_customers(records, policy)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision, recall, f1 = pairwise_scores(truth, clusters, pd)
    return {"records": len(records), "mode": mode, "people": truth.nunique(), "clusters": clusters.nunique(),
            "precision": f"{precision:.4f}", "recall": f"{recall:.4f}", "F1": f"{f1:.4f}",
            "seconds": round(seconds, 2), "rec/s": round(len(records) / seconds), "base MB": round(base),
            "peak MB": round(peak)}


def pairwise_scores(truth, clusters, pd) -> tuple[float, float, float]:
    def pairs(counts) -> int:
        return int((counts * (counts - 1) // 2).sum())

    both = pd.DataFrame({"truth": truth.to_numpy(), "cluster": clusters.to_numpy()})
    together = pairs(both.value_counts().to_numpy())
    predicted, actual = pairs(clusters.value_counts().to_numpy()), pairs(truth.value_counts().to_numpy())
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def _resident_megabytes() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def print_table(rows: list[dict]) -> None:
    columns = ["records", "mode", "people", "clusters", "precision", "recall", "F1", "seconds", "rec/s",
               "base MB", "peak MB"]
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).rjust(widths[c]) for c in columns))
    print("\nresolver = resolve_customers with its default policy; floor = the same with fuzzy=False (exact phone, "
          "e-mail and buyer-id keys only), measured in the same run; P/R/F1 are pairwise; peak MB = ru_maxrss of "
          "the child, base MB = its resident size just before the call.")


if __name__ == "__main__":
    main()
