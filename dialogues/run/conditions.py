"""Cold and warm conditions in the archive: which turns are warm-up and which are probes.

A warm conversation holds the warm-up exchanges and then the battery; scores must read the
probe replies only, so every score query selects its rows through `probe_messages`.
"""

from __future__ import annotations

from typing import Any

import duckdb

from dialogues.store import records

# The latest successful attempt at each position, as the conversation's history holds it.
_LATEST_OK = """
    SELECT m.*, c.run_id, c.condition, c.repeat, c.conv_key
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.role = 'assistant' AND m.error IS NULL AND m.phase = ? {where}
    QUALIFY row_number() OVER (PARTITION BY m.conversation_id, m.seq ORDER BY m.attempt DESC) = 1
    ORDER BY c.run_id, c.conv_key, m.seq
"""


def probe_messages(
    db: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    conversation_id: str | None = None,
) -> list[dict[str, Any]]:
    """Probe replies (phase 'probe') of a run or a conversation; warm-up replies never appear."""
    return _phase_messages(db, "probe", run_id, conversation_id)


def warmup_messages(
    db: duckdb.DuckDBPyConnection,
    run_id: str | None = None,
    conversation_id: str | None = None,
) -> list[dict[str, Any]]:
    """Warm-up replies (phase 'warmup'): stored and shown, never scored."""
    return _phase_messages(db, "warmup", run_id, conversation_id)


def warmup_length(db: duckdb.DuckDBPyConnection, conversation_id: str) -> int:
    """How many warm-up exchanges preceded the probes (0 for a cold conversation)."""
    row = db.execute(
        "SELECT count(DISTINCT seq) FROM messages "
        "WHERE conversation_id = ? AND role = 'user' AND phase = 'warmup'",
        [conversation_id],
    ).fetchone()
    return int(row[0]) if row else 0


def _phase_messages(
    db: duckdb.DuckDBPyConnection, phase: str, run_id: str | None, conversation_id: str | None
) -> list[dict[str, Any]]:
    where, params = "", [phase]
    if run_id is not None:
        where += " AND c.run_id = ?"
        params.append(run_id)
    if conversation_id is not None:
        where += " AND m.conversation_id = ?"
        params.append(conversation_id)
    return records.fetch_dicts(db, _LATEST_OK.format(where=where), params)
