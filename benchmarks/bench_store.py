"""Benchmark: the store on SQLite and on PostgreSQL, side by side, through the same code (advisor.adapters.sql).

    .venv/bin/python benchmarks/bench_store.py [--ops 500] [--entities 20000] [--threads 8]

For each engine: opening a database already migrated (what every `advisor tokens` command and every start pays:
yoyo finds nothing to apply), storing a proposed recommendation, approving it by compare-and-set (read, then the
conditional UPDATE), authenticating a token (SQLite checks `data_version` and keeps its cache; PostgreSQL reads
the active tokens again), saving and loading the recent samples of `--entities` VMs (16 each, as the server saves
them), and approvals from `--threads` threads at once over two connections, as two processes would.

PostgreSQL is Debian's, started here by tests.support.postgres on a private port, with its defaults (fsync and
synchronous commit on) and reached over loopback TCP, then once more with `synchronous_commit=off` given in the
URL; SQLite is a file in a temporary directory with the server's settings (WAL, synchronous=NORMAL). Prints
figures; asserts nothing about speed (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.adapters.postgres.db import PostgresDatabase
from advisor.adapters.sql.access import TokenStore
from advisor.adapters.sql.database import Database
from advisor.adapters.sql.samples import SampleArchive
from advisor.adapters.sql.store import SqlStore
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.domain.access import Role
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.domain.recommendation import Recommendation, RecommendationState
from advisor.features.samples import Series
from tests.support.postgres import PostgresServer

COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))
PARAMETERS = MigrationParameters(Technique.PRECOPY, 100, 300)


def proposal(rec_id: str) -> Recommendation:
    return Recommendation(rec_id, "target:v", time.time(), (Move("v", "a", "b", PARAMETERS, COST, ("why",)),),
                          "summary")


def p50_us(call: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def approve(store: SqlStore, rec_id: str) -> bool:
    before = store.get_recommendation(rec_id)
    assert before is not None
    return store.replace_recommendation(before, replace(before, state=RecommendationState.APPROVED)) is not None


def measure(name: str, open_database: Callable[[], Database], ops: int, entities: int, threads: int) -> dict[str, str]:
    first = open_database()
    t0 = time.perf_counter()
    open_database().close()
    reopen_ms = (time.perf_counter() - t0) * 1e3
    store = SqlStore(first)
    add = p50_us(lambda i: store.add_recommendation(proposal(f"r{i}")), ops)
    decide = p50_us(lambda i: approve(store, f"r{i}"), ops)
    tokens = TokenStore(first, time.time)
    token = tokens.create("bench", Role.READER)
    auth = p50_us(lambda _: tokens.authenticate(token), ops)

    rng = np.random.default_rng(1)
    series = [Series("vm", f"vm-{i}", np.arange(16, dtype=np.float64), rng.random((16, 6), dtype=np.float32))
              for i in range(entities)]
    archive = SampleArchive(first)
    t0 = time.perf_counter()
    archive.save(series)
    save_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = len(archive.load({"vm": 6}))
    load_s = time.perf_counter() - t0
    assert loaded == entities

    stores = [store, SqlStore(open_database())]
    for i in range(ops):
        store.add_recommendation(proposal(f"c{i}"))
    start = threading.Barrier(threads)

    def decider(k: int) -> None:
        start.wait()
        for i in range(k, ops, threads):
            approve(stores[k % 2], f"c{i}")

    workers = [threading.Thread(target=decider, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    concurrent = ops / (time.perf_counter() - t0)
    for s in stores:
        s.close()
    return {"engine": name, "reopen ms": f"{reopen_ms:.1f}", "add us": f"{add:.0f}", "approve us": f"{decide:.0f}",
            "auth us": f"{auth:.0f}", f"save {entities} s": f"{save_s:.2f}", f"load {entities} s": f"{load_s:.2f}",
            f"approvals/s ({threads} thr)": f"{concurrent:.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        rows.append(measure("sqlite", lambda: SqliteDatabase(Path(tmp) / "advisor.sqlite3"), args.ops, args.entities,
                            args.threads))
    server = PostgresServer(durable=True)
    try:
        server.start()
        url = server.url(server.new_database())
        rows.append(measure("postgresql", lambda: PostgresDatabase(url), args.ops, args.entities, args.threads))
        # The same without waiting for the WAL's flush at each commit (SQLite's synchronous=NORMAL does not wait
        # either): how much of a write is the disk's.
        relaxed = server.url(server.new_database()) + "?options=-c%20synchronous_commit%3Doff"
        rows.append(measure("postgresql, synchronous_commit off", lambda: PostgresDatabase(relaxed), args.ops,
                            args.entities, args.threads))
    finally:
        server.stop()
    columns = list(rows[0])
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(row[c].rjust(w) for c, w in zip(columns, widths, strict=True)))


if __name__ == "__main__":
    main()
