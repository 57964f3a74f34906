"""Read-side queries for the app: run progress, paged transcripts, one conversation.

Paging happens in SQL (LIMIT/OFFSET, a separate count) and the table gets a short preview of
each response, so an archive of 100,000 responses opens as fast as an empty one. Parameterized
SQL only: every value a person typed travels as a parameter, never inside the SQL text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from dialogues.store.records import cells_sql, fetch_dicts, messages
from dialogues.store.sql import is_in

PREVIEW_CHARS = 160
_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")
NO_ANSWER = "no answer: thinking used the whole token budget"
NO_ANSWER_PLAIN = "no answer: the token budget ran out before any visible text"


@dataclass(frozen=True)
class TranscriptFilter:
    """What the Transcripts page narrows responses by; an empty field means 'any'."""

    run_ids: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    set_ids: tuple[str, ...] = ()
    prompt_keys: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    text: str = ""
    """Case-insensitive substring of the visible content or the reasoning."""
    errors_only: bool = False


def run_progress(db: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """Per model of a run: calls planned, answered and failed (the latest attempt counts)."""
    head = db.execute("SELECT total_cells, params_json FROM runs WHERE id = ?", [run_id]).fetchone()
    if head is None:
        return []
    total_cells, params = head
    models = list((json.loads(params) if params else {}).get("models") or [])
    rows = db.execute(
        f"""
        WITH cells AS ({cells_sql("c.run_id = ?")})
        SELECT model_id, count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok)
        FROM cells GROUP BY model_id
        """,
        [run_id],
    ).fetchall()
    counts = {model: (done, errors) for model, done, errors in rows}
    for model in counts:
        if model not in models:
            models.append(model)
    # Every model of a run plans the same cells, so the run's total splits evenly.
    per_model = (total_cells or 0) // max(1, len(models))
    return [
        {"model": m, "total": per_model, "done": counts.get(m, (0, 0))[0],
         "errors": counts.get(m, (0, 0))[1]}
        for m in models
    ]  # fmt: skip


def _where(f: TranscriptFilter) -> tuple[str, list[Any]]:
    """The WHERE clause and its parameters for a filter over responses (m) and their conversations (c)."""
    clauses = ["m.role = 'assistant'"]
    params: list[Any] = []
    for column, values in (
        ("c.run_id", f.run_ids),
        ("m.model_id", f.models),
        ("c.set_id", f.set_ids),
        ("m.prompt_key", f.prompt_keys),
        ("c.condition", f.conditions),
        ("m.phase", f.phases),
    ):
        if values:
            clauses.append(is_in(column, values, params))
    if f.text.strip():
        # A case-insensitive literal regex: RE2 finds it ~2.5x faster than ILIKE lower-cases
        # every text, and a search reads every response's text.
        pattern = "(?i)" + _escape_regex(f.text.strip())
        clauses.append(
            "(regexp_matches(m.content, ?) OR regexp_matches(coalesce(m.reasoning, ''), ?))"
        )
        params += [pattern, pattern]
    if f.errors_only:
        clauses.append("m.error IS NOT NULL")
    return " AND ".join(clauses), params


def _escape_regex(text: str) -> str:
    """A typed search is a plain substring: every regex metacharacter matches itself."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def transcript_page(
    db: duckdb.DuckDBPyConnection, filters: TranscriptFilter, page: int = 1, page_size: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """One page of responses, newest first, and how many match in all."""
    where, params = _where(filters)
    base = f"FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {where}"
    offset = max(0, page - 1) * page_size
    # Two steps, because decoding the long text columns of every matching row cost more than
    # the rest of the query: first the page's row ids and the total, from the narrow columns
    # (one scan), then the preview columns of those rows only. The id check guards the rowids.
    hits = db.execute(
        f"SELECT m.rowid, m.id, count(*) OVER () {base} ORDER BY m.created_at DESC, m.id "
        "LIMIT ? OFFSET ?",
        [*params, page_size, offset],
    ).fetchall()
    if not hits:  # nothing matches, or a page past the end: the total still counts
        total = db.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # type: ignore[index]
        return [], int(total)
    rows = fetch_dicts(
        db,
        f"""
        SELECT m.id, m.conversation_id, c.run_id, m.model_id AS model, c.set_id, m.prompt_key,
               c.condition, c."repeat", m.phase, m.seq, m.attempt,
               left(m.content, {PREVIEW_CHARS}) AS preview,
               length(coalesce(m.content, '')) AS content_chars,
               length(coalesce(m.reasoning, '')) AS reasoning_chars,
               m.tokens_out, m.finish_reason, m.error_kind, m.error, m.created_at
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.rowid IN (SELECT unnest(?::BIGINT[])) AND m.id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY m.created_at DESC, m.id
        """,
        [[h[0] for h in hits], [h[1] for h in hits]],
    )
    for row in rows:
        row["state"] = response_state(row)
    return rows, int(hits[0][2])


def state_code(row: dict[str, Any]) -> str:
    """How a response ended: 'ok', 'error', 'no-answer' (budget spent), 'cut-off' or 'empty'."""
    if row.get("error") is not None:
        return "error"
    content = row.get("content", row.get("preview")) or ""
    if row.get("finish_reason") == "length":
        return "cut-off" if content.strip() else "no-answer"
    return "ok" if content.strip() else "empty"


def response_state(row: dict[str, Any]) -> str:
    """state_code in words for the app: ok, failed, cut off, or no answer at all."""
    code = state_code(row)
    if code == "error":
        return f"failed ({row.get('error_kind') or 'error'})"
    if code == "no-answer":
        return NO_ANSWER if row.get("reasoning") or row.get("reasoning_chars") else NO_ANSWER_PLAIN
    return {"cut-off": "cut off at the token limit", "empty": "empty answer"}.get(code, code)


def conversation(db: duckdb.DuckDBPyConnection, conversation_id: str) -> dict[str, Any] | None:
    """One conversation with its run, and every message in order, failed attempts included."""
    heads = fetch_dicts(
        db,
        """
        SELECT c.*, r.name AS run_name, r.created_at AS run_created_at, r.temperature,
               r.max_tokens, r.seed AS run_seed
        FROM conversations c LEFT JOIN runs r ON r.id = c.run_id
        WHERE c.id = ?
        """,
        [conversation_id],
    )
    if not heads:
        return None
    rows = messages(db, conversation_id)
    for row in rows:
        row["state"] = response_state(row) if row["role"] == "assistant" else None
    return {**heads[0], "messages": rows}


def filter_options(db: duckdb.DuckDBPyConnection) -> dict[str, list[Any]]:
    """Distinct values for the Transcripts filters (runs come with a label to show)."""

    def distinct(sql: str) -> list[Any]:
        return [r[0] for r in db.execute(sql).fetchall()]

    runs = run_choices(db)
    return {
        "runs": runs,
        "models": distinct(
            "SELECT DISTINCT model_id FROM messages WHERE model_id IS NOT NULL ORDER BY 1"
        ),
        "set_ids": distinct(
            "SELECT DISTINCT set_id FROM conversations WHERE set_id IS NOT NULL ORDER BY 1"
        ),
        "prompt_keys": distinct(
            "SELECT DISTINCT prompt_key FROM messages "
            "WHERE role = 'assistant' AND prompt_key IS NOT NULL ORDER BY 1"
        ),
        "conditions": distinct(
            "SELECT DISTINCT condition FROM conversations WHERE condition IS NOT NULL ORDER BY 1"
        ),
        "phases": distinct(
            "SELECT DISTINCT phase FROM messages WHERE phase IS NOT NULL ORDER BY 1"
        ),
    }


def run_choices(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every run for a picker, newest first: id, name, prompt set, condition, date."""
    return fetch_dicts(
        db,
        "SELECT id, name, set_id, condition, created_at FROM runs ORDER BY created_at DESC, id",
    )


def run_label(run: dict[str, Any]) -> str:
    """A run as one line for a picker: id, name or prompt set, date."""
    when = str(run.get("created_at") or "")[:16]
    what = run.get("name") or run.get("set_id") or run.get("kind") or ""
    return f"{run['id']} · {what} · {when}".strip(" ·")
