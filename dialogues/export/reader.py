"""Read the workbench's own JSONL export back into an archive.

Atomic: every line is read and checked before the archive is touched, then everything lands in
one transaction, so a bad line (named by file and line) leaves the archive as it was.
Idempotent: rows keep their original ids and a row whose id is already there is skipped, so
importing the same file twice adds nothing, and a later export of the same conversations adds
only what is new (annotations made since, say). Models, runs, prompt sets and taggers already
in the archive are left as they are: a researcher's edits there win over the file's copy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from dialogues.domain.errors import UserError
from dialogues.export import JSONL_FORMAT, TABLES
from dialogues.store import connect, transaction
from dialogues.store.records import fill_reply_models

KEYS = {
    "models": ("id",),
    "prompt_sets": ("id", "version_hash"),
    "prompts": ("set_hash", "position"),
    "runs": ("id",),
    "conversations": ("id",),
    "messages": ("id",),
    "annotations": ("id",),
    "taggers": ("id",),
    "tags": ("id",),
}
# Besides the primary key, rows that must not meet a different row already in the archive.
UNIQUE = {
    "conversations": ("run_id", "conv_key"),
    "messages": ("conversation_id", "seq", "attempt"),
}
# A tag for the same message, target and tagger is already there: the archive's own wins.
SKIP_IF_PRESENT = {"tags": ("message_id", "target", "tagger_id")}
LISTS = ("models", "prompt_sets", "prompts", "taggers", "messages")


@dataclass(frozen=True)
class Column:
    """One archive column: its DuckDB type and whether it may be NULL."""

    name: str
    type: str
    nullable: bool


@dataclass
class Staged:
    """Rows read from the file, per table, each remembering the line it came from."""

    rows: dict[str, dict[tuple[Any, ...], tuple[int, dict[str, Any]]]] = field(
        default_factory=lambda: {t: {} for t in TABLES}
    )

    def add(self, table: str, row: dict[str, Any], line: int, unique: bool) -> str | None:
        """Keep a row once; returns a problem if a row that must be unique came twice."""
        key = tuple(row.get(k) for k in KEYS[table])
        seen = self.rows[table].get(key)
        if seen is not None:
            if unique:
                return f"{table[:-1]} {'/'.join(map(str, key))} is also on line {seen[0]}"
            return None  # a model or run shared by many conversations: the first copy serves
        self.rows[table][key] = (line, row)
        return None


@dataclass
class ImportReport:
    """What an import added."""

    path: Path
    lines: int
    added: dict[str, int]
    seconds: float


def schema(db: duckdb.DuckDBPyConnection) -> dict[str, list[Column]]:
    """The archive's columns per table, in table order."""
    return {
        t: [Column(r[0], r[1], r[2] == "YES") for r in db.execute(f"DESCRIBE {t}").fetchall()]
        for t in TABLES
    }


def _check_value(col: Column, value: Any) -> str | None:
    """None if value fits the column, else what is wrong with it."""
    if value is None:
        return None if col.nullable else f"{col.name} must not be null"
    kind = col.type.upper()
    if kind == "JSON":
        return None
    if kind in ("INTEGER", "BIGINT", "SMALLINT", "HUGEINT"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{col.name} must be an integer, not {value!r}"
    if kind in ("DOUBLE", "FLOAT", "REAL"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"{col.name} must be a number, not {value!r}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{col.name} must be true or false"
    if not isinstance(value, str):
        return f"{col.name} must be a string, not {value!r}"
    if kind.startswith("TIMESTAMP"):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return f"{col.name} is not an ISO date and time: {value!r}"
    return None


def check_row(table: str, row: Any, cols: list[Column]) -> str | None:
    """None if row is an object whose fields fit the table, else the first problem."""
    if not isinstance(row, dict):
        return f"a {table[:-1]} must be an object"
    known = {c.name for c in cols}
    extra = sorted(k for k in row if k not in known and k not in ("annotations", "tags"))
    if extra:
        return f"{table[:-1]} has unknown fields {', '.join(extra)} (a newer dialogues wrote it?)"
    for col in cols:
        problem = _check_value(col, row.get(col.name))
        if problem:
            ident = row.get("id") or "/".join(str(row.get(k)) for k in KEYS[table])
            return f"{table[:-1]} {ident}: {problem}"
    return None


def _read_line(text: str, cols: dict[str, list[Column]]) -> list[tuple[str, dict[str, Any]]]:
    """A line's rows as (table, row), after checking shape, types and links; raises ValueError."""
    try:
        rec = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(rec, dict) or rec.get("format") != JSONL_FORMAT:
        raise ValueError(f"not a dialogues export line (expected format {JSONL_FORMAT!r})")
    for key in ("conversation", "run"):
        if not isinstance(rec.get(key), dict):
            raise ValueError(f"{key!r} must be an object")
    for key in LISTS:
        if not isinstance(rec.get(key, []), list):
            raise ValueError(f"{key!r} must be a list")
    conv, run = rec["conversation"], rec["run"]
    if conv.get("run_id") != run.get("id"):
        raise ValueError("conversation.run_id does not match run.id")
    out: list[tuple[str, dict[str, Any]]] = [("runs", run), ("conversations", conv)]
    for key in ("models", "prompt_sets", "prompts", "taggers"):
        out += [(key, r) for r in rec.get(key, [])]
    for m in rec.get("messages", []):
        if not isinstance(m, dict):
            raise ValueError("a message must be an object")
        if m.get("conversation_id") != conv.get("id"):
            raise ValueError(f"message {m.get('id')} belongs to another conversation")
        out.append(("messages", {k: v for k, v in m.items() if k not in ("annotations", "tags")}))
        for table in ("annotations", "tags"):
            nested = m.get(table, [])
            if not isinstance(nested, list):
                raise ValueError(f"message {m.get('id')}: {table!r} must be a list")
            for r in nested:
                if isinstance(r, dict) and r.get("message_id") != m.get("id"):
                    raise ValueError(f"a {table[:-1]} of message {m.get('id')} names another")
                out.append((table, r))
    for table, row in out:
        problem = check_row(table, row, cols[table])
        if problem:
            raise ValueError(problem)
    return out


def read(path: Path, cols: dict[str, list[Column]]) -> tuple[Staged, int]:
    """Every row of the file, checked; a problem raises UserError naming the file and line."""
    staged = Staged()
    lines = 0
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                lines += 1
                try:
                    rows = _read_line(text, cols)
                except ValueError as exc:
                    raise UserError(f"{path} line {number}: {exc}; nothing was imported") from None
                for table, row in rows:
                    dup = staged.add(table, row, number, table not in ("models", "runs",
                                                                       "prompt_sets", "prompts",
                                                                       "taggers"))  # fmt: skip
                    if dup:
                        raise UserError(f"{path} line {number}: {dup}; nothing was imported")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path} is not UTF-8 text ({exc.reason}); nothing was imported"
            ) from None
    return staged, lines


def _conflicts(db: duckdb.DuckDBPyConnection, staged: Staged, path: Path) -> None:
    """Refuse rows that would clash with a different row already in the archive."""
    for table, cols in UNIQUE.items():
        rows = staged.rows[table]
        if not rows:
            continue
        wanted = {tuple(r[c] for c in cols): (line, r["id"]) for line, r in rows.values()}
        found = db.execute(
            f"SELECT {', '.join(cols)}, id FROM {table} WHERE {cols[0]} IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [sorted({str(k[0]) for k in wanted})],
        ).fetchall()
        for *key, existing in found:
            line, new_id = wanted.get(tuple(key), (None, existing))
            if line is not None and new_id != existing:
                raise UserError(
                    f"{path} line {line}: {table[:-1]} {new_id} takes the place of {existing}, "
                    f"already in the archive ({', '.join(map(str, key))}); nothing was imported"
                )


def _arrow_type(col: Column) -> Any:
    import pyarrow as pa

    kind = col.type.upper()
    if kind in ("INTEGER", "BIGINT", "SMALLINT", "HUGEINT"):
        return pa.int64()
    if kind in ("DOUBLE", "FLOAT", "REAL"):
        return pa.float64()
    if kind == "BOOLEAN":
        return pa.bool_()
    return pa.string()  # text, JSON text and ISO timestamps: DuckDB casts on insert


def _cell(col: Column, value: Any) -> Any:
    if value is None:
        return None
    if col.type.upper() == "JSON":
        return json.dumps(value, ensure_ascii=False)  # as records.to_json writes it
    if col.type.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return float(value)
    return value


def insert(db: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
           cols: list[Column]) -> None:  # fmt: skip
    """Insert rows in one statement, skipping any whose key is already there."""
    import pyarrow as pa

    if not rows:
        return
    arrow_schema = pa.schema([(c.name, _arrow_type(c)) for c in cols])
    data = pa.Table.from_pylist(
        [{c.name: _cell(c, r.get(c.name)) for c in cols} for r in rows], schema=arrow_schema
    )
    names = ", ".join(f'"{c.name}"' for c in cols)
    # Anti-joins rather than INSERT OR IGNORE: DuckDB handles a conflict row by row, which
    # made re-importing 80,000 known messages take a minute.
    skip = [KEYS[table], *([SKIP_IF_PRESENT[table]] if table in SKIP_IF_PRESENT else [])]
    joins = " ".join(
        f"ANTI JOIN {table} ON " + " AND ".join(f's."{k}" = {table}."{k}"' for k in key)
        for key in skip
    )
    db.register("_import_rows", data)
    try:
        db.execute(f"INSERT INTO {table} ({names}) SELECT s.* FROM "
                   f"(SELECT {names} FROM _import_rows) s {joins}")  # fmt: skip
    finally:
        db.unregister("_import_rows")


def _counts(db: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in TABLES}


def import_jsonl(archive: Path, path: Path) -> ImportReport:
    """Import a `dialogues export jsonl` file: all of it in one transaction, or nothing."""
    started = time.perf_counter()
    path = Path(path)
    with connect(archive) as db:
        cols = schema(db)
    staged, lines = read(path, cols)
    try:
        with transaction(archive) as db:
            _conflicts(db, staged, path)
            before = _counts(db)
            for table in TABLES:
                insert(db, table, [r for _, r in staged.rows[table].values()], cols[table])
            fill_reply_models(db)  # a file from before messages carried model_id
            after = _counts(db)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"cannot import {path}: {first}; nothing was imported") from None
    added = {t: after[t] - before[t] for t in TABLES}
    return ImportReport(path, lines, added, time.perf_counter() - started)
