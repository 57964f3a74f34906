"""Group commit: finished calls are written by one thread, as soon as it is free.

When calls finish slowly each is committed at once. Under load a commit starts no sooner than
MIN_COMMIT_GAP_S after the previous one, and the calls that finished meanwhile share it. So a
killed process loses at most the calls of the last 0.2 s, which `--resume` does again; no
committed call is ever lost or doubled.

Opening a DuckDB file costs ~15 ms (and closing checkpoints it), so during a burst the writer
keeps its connection. When another process waits for the file (the app raises the archive's
waiting flag, see store.db), the writer lets go after its current commit and pauses for GAP_S
so the waiter gets in. Programs that raise no flag (DuckDB's own CLI, a notebook) get a turn
at least every HOLD_S.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dialogues.store import db as store_db
from dialogues.store.records import insert_rows

# pyarrow builds its first table by importing pandas: ~0.2 s holding the GIL. Paid when the
# writer is imported, not at a batch's first commit while its calls are in flight.
pa.Table.from_pylist([{"warm": 1}])

Rows = dict[str, list[dict[str, Any]]]  # table → rows
HOLD_S = 5.0  # longest stretch the writer keeps the file, waiting flag or not
GAP_S = 0.15  # pause after letting go, long enough for another process's retry to get in
IDLE_S = 0.3  # close when nothing arrived for this long
# Under load a commit gathers what finishes in the next MIN_COMMIT_GAP_S: a commit costs ~4 ms
# of CPU whatever its size, CPU a busy batch of hosted calls needs for the calls themselves.
MIN_COMMIT_GAP_S = float(os.environ.get("DIALOGUES_COMMIT_GAP", "0.2"))


@dataclass
class Batch:
    """Rows for several tables that must land together."""

    rows: Rows = field(default_factory=dict)
    done: Callable[[BaseException | None], None] | None = None


class ArchiveWriter:
    """A background thread that commits batches of rows in arrival order."""

    def __init__(self, path: Path, db: duckdb.DuckDBPyConnection | None = None):
        """Write to the archive at path; db, if given, is an open connection the writer takes over."""
        self.path = path
        self._queue: queue.Queue[Batch | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="archive-writer", daemon=True)
        self.error: BaseException | None = None
        self.commits = 0
        self._db: duckdb.DuckDBPyConnection | None = db
        self._held_since = time.monotonic()
        self._last_commit = 0.0
        self._closing = threading.Event()  # cuts the writer's pauses short at the end of a run
        self._flag = store_db.waiting_flag(path)
        self.opens = 1 if db is not None else 0  # connections this writer had: a test's gauge
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        """Queue rows for the next commit."""
        if self.error is not None:
            raise self.error
        self._queue.put(batch)

    def close(self) -> None:
        """Write everything queued, then stop; re-raises a write failure."""
        self._queue.put(None)
        self._closing.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=IDLE_S if self._db is not None else None)
            except queue.Empty:
                self._release()
                continue
            batches = [] if first is None else [first]
            stopping = first is None
            # Under load, let a commit gather what finishes meanwhile: one transaction of
            # forty rows costs about what one of two rows does.
            wait = self._last_commit + MIN_COMMIT_GAP_S - time.monotonic()
            if wait > 0 and not stopping:
                self._closing.wait(wait)
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                else:
                    batches.append(nxt)
            if batches:
                self._commit(batches)
            if self._db is not None and self._should_let_go():
                self._release()
                self._closing.wait(GAP_S)
        self._release()

    def _should_let_go(self) -> bool:
        if time.monotonic() - self._held_since > HOLD_S:
            return True
        if not self._flag.exists():  # a stat: ~3 us a commit
            return False
        store_db.set_flag(self._flag, up=False)  # a waiter that gave up must not keep us letting go
        return True

    def _release(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _commit(self, batches: list[Batch]) -> None:
        failure: BaseException | None = None
        try:
            if self._db is None:
                self._db = store_db.open_connection(self.path)
                self._held_since = time.monotonic()
                self.opens += 1
            db = self._db
            db.execute("BEGIN TRANSACTION")
            try:
                for table, rows in _merge(batches).items():
                    insert_rows(db, table, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self.commits += 1
            self._last_commit = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, not swallowed
            failure = self.error = exc
            self._release()
        for b in batches:
            if b.done is not None:
                b.done(failure)


def _merge(batches: list[Batch]) -> Rows:
    # Conversations first: messages refer to them.
    merged: Rows = {}
    for b in batches:
        for table, rows in b.rows.items():
            merged.setdefault(table, []).extend(rows)
    order = ["models", "conversations", "messages"]
    return {
        t: merged[t] for t in sorted(merged, key=lambda t: order.index(t) if t in order else 99)
    }
