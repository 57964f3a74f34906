"""Open the DuckDB archive: one short connection per unit of work, retried on the file lock.

DuckDB lets one process at a time hold a file, so the app and a CLI batch share the archive by
taking turns: connect, do the work, close. Only a lock that persists reaches the user, as one
line naming the file.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from dialogues.domain.errors import ArchiveError
from dialogues.store import migrations

LOCK_TIMEOUT_S = float(os.environ.get("DIALOGUES_LOCK_TIMEOUT", "15"))
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def _describe(path: Path, exc: Exception) -> ArchiveError:
    text = str(exc)
    low = text.lower()
    if _is_lock_error(exc):
        return ArchiveError(
            f"archive {path} is in use by another process and stayed locked for "
            f"{LOCK_TIMEOUT_S:.0f} s; close the other program or pass --archive for another file"
        )
    if "not a valid duckdb" in low or "invalid" in low and "database" in low:
        return ArchiveError(f"archive {path} is not a DuckDB database; nothing was changed")
    if "permission denied" in low or "read-only" in low or "read only" in low:
        return ArchiveError(f"archive {path} is read-only; copy it somewhere writable")
    return ArchiveError(f"archive {path} cannot be opened: {text.splitlines()[0]}")


def waiting_flag(path: Path) -> Path:
    """The file that tells a batch's writer another process is waiting for the archive."""
    return path.with_name(path.name + ".waiting")


def set_flag(flag: Path, up: bool) -> None:
    """Raise or take down the waiting flag; a folder where that fails is not an error."""
    try:
        if up:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)
    except OSError:  # a read-only folder: the writer still lets go every few seconds
        pass


def _open(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with a short backoff while another process holds the lock.

    While it waits it raises the waiting flag, and a batch's writer lets go of the file at its
    next commit; whoever gets in takes the flag down.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    flag = waiting_flag(path)
    waited = False
    try:
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except (duckdb.Error, OSError) as exc:
                if not _is_lock_error(exc) or time.monotonic() >= deadline:
                    raise _describe(path, exc) from exc
            set_flag(flag, up=True)
            waited = True
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        if waited:  # in or given up, this process waits no longer
            set_flag(flag, up=False)


def _check_writable(path: Path) -> bool:
    """True if we may write the file; a read-only file is opened read-only."""
    if path.exists():
        # Mode bits as well as access(): root may write anything, but a file someone made
        # read-only is meant to stay unchanged.
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create folder {parent} for the archive: {exc}") from exc
    return os.access(parent, os.W_OK)


def _backup(path: Path, before: str) -> Path:
    """Copy the archive aside before a migration changes it."""
    target = path.with_name(f"{path.name}.before-{before}.bak")
    shutil.copy2(path, target)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        shutil.copy2(wal, target.with_name(target.name + ".wal"))
    return target


def _migrate(path: Path, db: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Bring the archive to the newest schema; returns the (possibly reopened) connection."""
    done = migrations.applied(db)
    newer = migrations.unknown(done)
    if newer:
        db.close()
        raise ArchiveError(
            f"archive {path} was written by a newer dialogues (schema step {newer[-1]}); "
            "upgrade dialogues to open it; nothing was changed"
        )
    todo = migrations.pending(done)
    if todo and done:
        db.close()
        _backup(path, todo[0].__name__)
        db = _open(path, False, LOCK_TIMEOUT_S)
    for migration in todo:
        migrations.apply(db, migration)
    return db


def open_connection(path: Path, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open the archive (migrating it on first use in this process); the caller closes it."""
    path = Path(path)
    writable = _check_writable(path)
    if not writable and not path.exists():
        raise ArchiveError(f"cannot create archive {path}: its folder is read-only")
    db = _open(path, not writable, LOCK_TIMEOUT_S if timeout is None else timeout)
    try:
        key = str(path.resolve())
        if key not in _migrated:
            with _migrate_lock:
                if not writable:
                    if migrations.pending(_applied_read_only(db)):
                        raise ArchiveError(
                            f"archive {path} is read-only and needs a schema upgrade; "
                            "copy it somewhere writable"
                        )
                else:
                    db = _migrate(path, db)
                _migrated.add(key)
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def connect(path: Path, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """One unit of work on the archive: open (migrating if needed), yield, close."""
    db = open_connection(path, timeout)
    try:
        yield db
    finally:
        db.close()


def _applied_read_only(db: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        return [r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()]
    except duckdb.Error:
        return []


@contextmanager
def transaction(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection inside BEGIN/COMMIT: all or nothing."""
    with connect(path) as db:
        db.execute("BEGIN TRANSACTION")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
