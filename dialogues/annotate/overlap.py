"""A study's overlap design: a shared set of items every annotator codes, the rest spread out.

Agreement needs items coded by more than one person. The researcher chooses a size; that many
responses (picked by a stable hash of a design seed, so the set never drifts between sessions)
come first in every annotator's queue, each annotator seeing them in their own shuffled order.
After the shared set, a queue prefers responses fewer other people have judged, so the
remaining work spreads out instead of piling onto the same items.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import duckdb

from dialogues.domain.errors import UserError
from dialogues.store.records import fetch_dicts, new_id, to_json
from dialogues.store.sql import is_in

ADJUDICATED = "adjudicated"  # a reference, not a rater: never counted as another annotator


@dataclass(frozen=True)
class Design:
    """The overlap design in force: shared set size, where its items come from, its seed."""

    size: int
    set_ids: tuple[str, ...]
    """Prompt sets the shared items are drawn from; empty means every set."""
    seed: str
    created_at: datetime | None = None


def set_design(db: duckdb.DuckDBPyConnection, size: int, set_ids: tuple[str, ...] = ()) -> Design:
    """Record a new design (the latest one holds); the seed stays if only the size changes."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise UserError(f"overlap size must be a whole number of items, 0 or more, not {size!r}")
    old = design(db)
    seed = old.seed if old and old.set_ids == tuple(set_ids) else secrets.token_hex(8)
    # Strictly after the design it replaces, even within one transaction, so 'latest' is sure.
    now = datetime.now(UTC).replace(tzinfo=None)
    when = max(now, old.created_at + timedelta(microseconds=1)) if old and old.created_at else now
    db.execute(
        "INSERT INTO overlap_designs (id, size, set_ids_json, seed, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [new_id(), size, to_json(list(set_ids) or None), seed, when],
    )
    found = design(db)
    assert found is not None
    return found


def design(db: duckdb.DuckDBPyConnection) -> Design | None:
    """The design in force, or None when the researcher has set none."""
    rows = fetch_dicts(
        db, "SELECT * FROM overlap_designs ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    if not rows:
        return None
    row = rows[0]
    raw = row["set_ids_json"]
    set_ids = tuple(json.loads(raw) if isinstance(raw, str) else raw or ())
    return Design(int(row["size"]), set_ids, row["seed"], row["created_at"])


def shared_sql(found: Design | None, target: str) -> tuple[str, list[Any]]:
    """SQL selecting the ids of the shared set (one column `id`), and its parameters."""
    if found is None or found.size == 0:
        return "SELECT NULL::TEXT AS id WHERE FALSE", []
    text = "m.content" if target == "answer" else "m.reasoning"
    where = [
        "m.role = 'assistant'",
        "m.error IS NULL",
        f"trim(coalesce({text}, '')) <> ''",
        # a warm-up reply is never in a blind queue (it would tell the condition), so a shared
        # item drawn from the warm-up turns could never be reached by anyone
        "coalesce(m.phase, '') <> 'warmup'",
    ]
    params: list[Any] = []
    if found.set_ids:
        where.append(is_in("c.set_id", found.set_ids, params))
    sql = (
        "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE {' AND '.join(where)} ORDER BY md5(? || m.id) LIMIT ?"
    )
    return sql, [*params, found.seed, found.size]


def shared_ids(db: duckdb.DuckDBPyConnection, target: str = "answer") -> list[str]:
    """The ids of the shared set for a target, in the design's own (seed) order."""
    sql, params = shared_sql(design(db), target)
    return [r[0] for r in db.execute(sql, params).fetchall()]


@dataclass(frozen=True)
class Coverage:
    """How much overlap exists: the shared set, who finished how much of it, pairs in common."""

    design_size: int | None
    """The size the researcher chose, None when no design is set."""
    shared: int
    """Items actually in the shared set (fewer than chosen when the archive holds fewer)."""
    done: dict[str, int]
    """Annotator → shared items they have labelled."""
    multiply_coded: int
    """Responses labelled by two or more annotators (shared set or not)."""
    pairs: dict[tuple[str, str], int]
    """(annotator, annotator) → responses both have labelled."""


def coverage(db: duckdb.DuckDBPyConnection, target: str = "answer") -> Coverage:
    """The overlap that exists now among people's current labels of a target."""
    found = design(db)
    ids = set(shared_ids(db, target))
    rows = db.execute(
        "SELECT DISTINCT message_id, annotator FROM annotations "
        "WHERE target = ? AND label IS NOT NULL AND annotator <> ?",
        [target, ADJUDICATED],
    ).fetchall()
    by_message: dict[str, set[str]] = {}
    for message_id, annotator in rows:
        by_message.setdefault(message_id, set()).add(annotator)
    people = sorted({a for _, a in rows})
    done = {p: sum(1 for m in ids if p in by_message.get(m, ())) for p in people}
    pairs = {
        (a, b): sum(1 for who in by_message.values() if a in who and b in who)
        for a, b in combinations(people, 2)
    }
    multiply = sum(1 for who in by_message.values() if len(who) >= 2)
    return Coverage(found.size if found else None, len(ids), done, multiply, pairs)
