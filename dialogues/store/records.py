"""Write and read archive records. Parameterized SQL only; callers pass an open connection."""

from __future__ import annotations

import json
import os
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pyarrow as pa

from dialogues.domain.models import ModelInfo
from dialogues.domain.prompts import Prompt, PromptSet
from dialogues.store.sql import marks

MODEL_COLUMNS = (
    "id", "backend", "provider", "family", "parameters", "parameter_size", "quantization",
    "training", "digest", "context_length", "api_base", "notes",
)  # fmt: skip


_ids = random.Random(int.from_bytes(os.urandom(16), "big"))
_ids_lock = threading.Lock()
# A forked worker must not repeat its parent's ids.
os.register_at_fork(after_in_child=lambda: _ids.seed(int.from_bytes(os.urandom(16), "big")))


def new_id() -> str:
    """A random 16-hex-digit id (64 bits; not a secret, so no system call per id)."""
    # uuid4 asks the kernel for 16 bytes every time: ~0.5 ms under load, four times a call.
    with _ids_lock:
        return f"{_ids.getrandbits(64):016x}"


ARROW_MIN_ROWS = 4  # executemany costs ~1 ms a row; an Arrow insert is one statement


def insert_rows(
    db: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[dict[str, Any]],
    or_ignore: bool = False,
) -> None:
    """Insert dict rows into one table; rows with different keys go in separate statements.

    With or_ignore a row whose primary key is already there is skipped, not an error.
    """
    verb = "INSERT OR IGNORE INTO" if or_ignore else "INSERT INTO"
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)  # key order must not split them
    for cols, same in shapes.items():
        names = ", ".join(cols)
        if len(same) >= ARROW_MIN_ROWS:
            frame = pa.Table.from_pylist(same)  # noqa: F841 - DuckDB reads the local by name
            db.execute(f"{verb} {table} BY NAME SELECT * FROM frame")
        else:
            sql = f"{verb} {table} ({names}) VALUES ({marks(cols)})"
            db.executemany(sql, [[r[c] for c in cols] for r in same])


# json.dumps with any option builds a new encoder per call; one shared encoder is stateless.
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def to_json(value: Any) -> str | None:
    """JSON text for a *_json column (None stays NULL)."""
    return None if value is None else _JSON.encode(value)


def save_model(db: duckdb.DuckDBPyConnection, info: ModelInfo) -> None:
    """Insert a model, or update it with what the provider tells now; hand-set fields stay.

    A field a researcher set by hand (`update_model`) is never overwritten. Any other field
    takes the provider's value when the provider gives one, so a re-pulled model's new
    quantization or digest is recorded. Rows older than schema step m004 do not say which
    fields were set by hand; there a provider only fills fields that are still empty.
    """
    values = [getattr(info, c) for c in MODEL_COLUMNS]
    metadata = to_json(info.metadata or None)
    if _tells_nothing_new(db, [*values, metadata]):
        return  # no write (the upsert costs ~7 ms a run); updated_at keeps the last change
    placeholders = marks(MODEL_COLUMNS)
    edited = "from_json(models.edited_json, '[\"VARCHAR\"]')"
    provider = {c: f"coalesce(excluded.{c}, models.{c})" for c in MODEL_COLUMNS}
    # the old rule, for rows from before m004: fill empty fields; the digest follows the file
    legacy = {c: f"coalesce(models.{c}, excluded.{c})" for c in MODEL_COLUMNS}
    legacy["digest"] = provider["digest"]
    updates = ", ".join(
        f"{c} = CASE WHEN models.edited_json IS NULL THEN {legacy[c]} "
        f"WHEN list_contains({edited}, '{c}') THEN models.{c} ELSE {provider[c]} END"
        for c in MODEL_COLUMNS[1:]
    )
    db.execute(
        f"INSERT INTO models ({', '.join(MODEL_COLUMNS)}, metadata_json, edited_json) "
        f"VALUES ({placeholders}, ?, '[]') ON CONFLICT (id) DO UPDATE SET {updates}, "
        "metadata_json = coalesce(excluded.metadata_json, models.metadata_json), "
        "updated_at = now()",
        [*values, metadata],
    )


def _tells_nothing_new(db: duckdb.DuckDBPyConnection, values: list[Any]) -> bool:
    """True if the model is stored and every value the provider gives is the stored one.

    Then no rule of save_model changes the row, whoever set its fields.
    """
    stored = db.execute(
        f"SELECT {', '.join(MODEL_COLUMNS)}, metadata_json FROM models WHERE id = ?", [values[0]]
    ).fetchone()
    if stored is None:
        return False
    return all(new is None or new == old for new, old in zip(values, stored, strict=True))


def update_model(db: duckdb.DuckDBPyConnection, model_id: str, fields: dict[str, Any]) -> None:
    """Set metadata fields of a model by hand (the Models page); they stay set by hand."""
    editable = set(MODEL_COLUMNS) - {"id", "backend", "provider"}
    unknown = set(fields) - editable
    if unknown:
        raise ValueError(f"not an editable model field: {', '.join(sorted(unknown))}")
    if not fields:
        return
    sets = ", ".join(f"{k} = ?" for k in fields)
    # Rows from before m004 keep NULL: all their set fields count as hand-set already.
    marked = (
        "CASE WHEN edited_json IS NULL THEN NULL ELSE to_json(list_sort(list_distinct("
        "list_concat(from_json(edited_json, '[\"VARCHAR\"]'), ?::VARCHAR[])))) END"
    )
    db.execute(
        f"UPDATE models SET {sets}, edited_json = {marked}, updated_at = current_timestamp "
        "WHERE id = ?",
        [*fields.values(), sorted(fields), model_id],
    )


def model_info(row: dict[str, Any]) -> ModelInfo:
    """A models row (as a dict) back to a ModelInfo."""
    meta = row.get("metadata_json")
    fields: dict[str, Any] = {c: row.get(c) for c in MODEL_COLUMNS}
    return ModelInfo(**fields, metadata=json.loads(meta) if isinstance(meta, str) else (meta or {}))


def list_models(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every model the archive knows, with its metadata."""
    return fetch_dicts(db, "SELECT * FROM models ORDER BY id")


def save_prompt_set(db: duckdb.DuckDBPyConnection, ps: PromptSet) -> None:
    """Store a prompt-set version and its prompts once; a known version is left alone."""
    known = db.execute(
        "SELECT 1 FROM prompt_sets WHERE id = ? AND version_hash = ?", [ps.id, ps.version_hash]
    ).fetchone()
    if known:
        return
    db.execute(
        "INSERT INTO prompt_sets (id, version_hash, title, source, credit, licence, mode, kind, path)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ps.id, ps.version_hash, ps.title, ps.source, ps.credit, ps.licence, ps.mode, ps.kind,
         ps.path],
    )  # fmt: skip
    # Another set with the very same prompts has the same version hash and stored them already.
    rows = [
        {"set_hash": ps.version_hash, "position": p.position, "key": p.key, "title": p.title,
         "content": p.content, "content_hash": p.content_hash, "meta_json": to_json(p.meta or None)}
        for p in ps.prompts
    ]  # fmt: skip
    insert_rows(db, "prompts", rows, or_ignore=True)


def load_prompt_set(db: duckdb.DuckDBPyConnection, set_id: str, version_hash: str) -> PromptSet:
    """A stored prompt-set version, exactly as it was run."""
    head = fetch_dicts(
        db, "SELECT * FROM prompt_sets WHERE id = ? AND version_hash = ?", [set_id, version_hash]
    )
    if not head:
        raise KeyError(f"prompt set {set_id}@{version_hash} is not in the archive")
    rows = fetch_dicts(
        db, "SELECT * FROM prompts WHERE set_hash = ? ORDER BY position", [version_hash]
    )
    prompts = tuple(
        Prompt(r["key"], r["position"], r["content"], r["title"],
               json.loads(r["meta_json"]) if r["meta_json"] else {})
        for r in rows
    )  # fmt: skip
    h = head[0]
    return PromptSet(
        id=h["id"], title=h["title"], mode=h["mode"], kind=h["kind"], prompts=prompts,
        source=h["source"], credit=h["credit"], licence=h["licence"], path=h["path"],
    )  # fmt: skip


@dataclass
class RunRecord:
    """A run as stored: what was asked for, so it can be resumed or replayed."""

    id: str
    name: str | None
    kind: str
    set_id: str | None
    set_hash: str | None
    condition: str | None
    repeats: int | None
    temperature: float | None
    seed: int | None
    max_tokens: int | None
    concurrency: int | None
    total_cells: int | None
    warmup_set_id: str | None = None
    warmup_set_hash: str | None = None
    created_by: str | None = None
    params: dict[str, Any] | None = None


@dataclass
class MessageRow:
    """One messages row as the runner, dialogues and importers write it (see migrations)."""

    id: str
    conversation_id: str
    seq: int
    role: str
    """'system' | 'user' | 'assistant'."""
    speaker: str | None
    """The model id for a reply; 'prompt' or 'researcher' for a user turn."""
    model_id: str | None = None
    """The model that wrote this message: set on every reply (see `reply`), NULL otherwise."""
    attempt: int = 1
    phase: str | None = None
    side: str | None = None
    """'a' | 'b' in a model-to-model dialogue: the side that spoke or was spoken to."""
    cell_key: str | None = None
    prompt_key: str | None = None
    prompt_hash: str | None = None
    content: str | None = None
    reasoning: str | None = None
    reasoning_source: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    reasoning_tokens: int | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    model_version: str | None = None
    request_json: str | None = None
    raw_json: str | None = None
    created_at: Any = None
    """Left out when None, so the archive's clock stamps the row."""

    @classmethod
    def reply(cls, model: str, **fields: Any) -> MessageRow:
        """A reply of `model`: the one rule for which model wrote a message."""
        return cls(role="assistant", speaker=model, model_id=model, **fields)

    @classmethod
    def prompt(cls, speaker: str, **fields: Any) -> MessageRow:
        """A user turn: a prompt of the set ('prompt') or a researcher's message."""
        return cls(role="user", speaker=speaker, **fields)

    def row(self) -> dict[str, Any]:
        """The row as a dict for insert_rows (every column, so rows share one INSERT)."""
        out = dict(self.__dict__)
        if out["created_at"] is None:
            del out["created_at"]
        return out


def fill_reply_models(db: duckdb.DuckDBPyConnection) -> None:
    """Give replies stored without a model_id (older archives and files) the model that wrote them.

    That is the conversation's model, or model B for side 'b' of a model-to-model dialogue:
    what MessageRow.reply records when a reply is written. Schema step m005 runs this.
    """
    db.execute(
        """
        UPDATE messages SET model_id = CASE WHEN messages.side = 'b' THEN c.model_b_id
                                            ELSE c.model_id END
        FROM conversations c
        WHERE c.id = messages.conversation_id AND messages.role = 'assistant'
          AND messages.model_id IS NULL
        """
    )


def create_run(db: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    """Record a new run."""
    data = asdict(run)
    params = data.pop("params")
    cols = list(data)
    db.execute(
        f"INSERT INTO runs ({', '.join(cols)}, params_json) VALUES ({marks(cols)}, ?)",
        [*data.values(), to_json(params)],
    )


def get_run(db: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord | None:
    """One run by id (or None)."""
    rows = fetch_dicts(db, "SELECT * FROM runs WHERE id = ?", [run_id])
    if not rows:
        return None
    r = rows[0]
    fields = {k: r[k] for k in RunRecord.__dataclass_fields__ if k != "params"}
    return RunRecord(**fields, params=json.loads(r["params_json"]) if r["params_json"] else {})


def latest_attempt(m: str = "m") -> str:
    """SQL that holds when message `m` is its turn's latest attempt: the reply a turn's
    outcome is (cells_sql) and the one every score and total counts."""
    # An anti-join against later attempts is cheaper than a window over every message.
    return (f"NOT EXISTS (SELECT 1 FROM messages later WHERE later.conversation_id = "
            f"{m}.conversation_id AND later.seq = {m}.seq AND later.attempt > {m}.attempt)")  # fmt: skip


def cells_sql(where: str = "TRUE") -> str:
    """SELECT run_id, model_id, cell_key, ok: one row per planned call answered or failed.

    The one rule for a cell's outcome: its latest attempt counts (ok = that attempt has no
    error), so a failure retried with success is done. `where` narrows m and c.
    """
    return f"""
        SELECT c.run_id, m.model_id, m.cell_key, arg_max(m.error IS NULL, m.attempt) AS ok
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.role = 'assistant' AND m.cell_key IS NOT NULL AND {where}
        GROUP BY ALL
    """


def list_runs(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every run with cells planned, finished with a response, and finished with an error."""
    return fetch_dicts(
        db,
        f"""
        WITH cells AS ({cells_sql()})
        SELECT r.id, r.name, r.kind, r.created_at, r.set_id, r.condition, r.repeats,
               coalesce(r.total_cells, 0) AS total,
               count(*) FILTER (WHERE cells.ok) AS done,
               count(*) FILTER (WHERE NOT cells.ok) AS errors
        FROM runs r LEFT JOIN cells ON cells.run_id = r.id
        GROUP BY ALL ORDER BY r.created_at DESC, r.id
        """,
    )


def cell_outcomes(db: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, str]:
    """cell_key → 'done' or 'error' (the latest attempt counts) for one run."""
    rows = db.execute(
        f"SELECT cell_key, ok FROM ({cells_sql('c.run_id = ?')})", [run_id]
    ).fetchall()
    return {key: "done" if ok else "error" for key, ok in rows}


def conversation_ids(db: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, str]:
    """conv_key → conversation id for the conversations a run has started."""
    rows = db.execute(
        "SELECT conv_key, id FROM conversations WHERE run_id = ?", [run_id]
    ).fetchall()
    return dict(rows)


def history(db: duckdb.DuckDBPyConnection, conversation_id: str) -> list[dict[str, Any]]:
    """The messages that made it into a conversation: per position, its successful row."""
    return fetch_dicts(
        db,
        """
        SELECT * FROM messages
        WHERE conversation_id = ? AND error IS NULL
        QUALIFY row_number() OVER (PARTITION BY seq ORDER BY attempt DESC) = 1
        ORDER BY seq
        """,
        [conversation_id],
    )


def messages(db: duckdb.DuckDBPyConnection, conversation_id: str) -> list[dict[str, Any]]:
    """Every row of a conversation, failed attempts included, in order."""
    return fetch_dicts(
        db,
        "SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq, attempt",
        [conversation_id],
    )


def fetch_dicts(
    db: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Run a query and return rows as dicts."""
    cur = db.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
