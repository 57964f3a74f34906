"""The archive read for an export: one set-based query per table into a `Snapshot`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dialogues.analyse import frames, scores
from dialogues.annotate.annotations import CURRENT_SQL
from dialogues.domain.errors import UserError
from dialogues.export.common import Row, sortable

TABLES = ("models", "prompt_sets", "prompts", "runs", "conversations", "messages",
          "annotations", "taggers", "tags")  # fmt: skip
ORDER = {
    "models": "id",
    "prompt_sets": "id, version_hash",
    "prompts": "set_hash, position",
    "runs": "created_at, id",
    "conversations": "run_id, conv_key, id",
    "messages": "conversation_id, seq, attempt, id",
    "annotations": "message_id, created_at, id",
    "taggers": "id",
    "tags": "message_id, target, tagger_id, id",
}
HEAVY = ("request_json", "raw_json")  # message columns markdown never shows
# A light read keeps a tag's features only where exports read them: beside a rubric (a judge's
# markers and evidence; the rule is judgements._from_tag's, change both together). The
# heuristic's features are most of the tags' bytes.
_LIGHT = {("tags", "features_json"):
          'CASE WHEN rubric_json IS NULL THEN NULL ELSE features_json END AS "features_json"'}  # fmt: skip
# The app's rule for the current annotation, not a copy of it: markdown and the flat tables
# then show what the Annotate and Compare pages show.
_LATEST = f"({CURRENT_SQL}) AS latest"


@dataclass(frozen=True)
class Judgement:
    """The current value one source gives one message (a human annotation or a tag)."""

    message_id: str
    target: str
    source: str
    label: str | None
    rubric: dict[str, Any]
    markers: list[str]
    evidence: list[str]
    note: str | None
    created_at: Any


@dataclass(frozen=True)
class ConversationSEI:
    """One source's SEI of one battery conversation, and how much of the rubric it rests on."""

    result: scores.SEIResult
    dimensions_scored: int


@dataclass
class Snapshot:
    """Every row an export needs, grouped for lookup; read with one query per table."""

    models: dict[str, Row]
    prompt_sets: dict[tuple[str, str], Row]
    prompts: dict[str, list[Row]]  # set_hash → prompts by position
    runs: dict[str, Row]
    conversations: list[Row]  # in export order
    messages: dict[str, list[Row]]  # conversation id → rows by seq, attempt
    annotations: dict[str, list[Row]]  # message id → every row, oldest first (heavy only)
    taggers: dict[str, Row]
    tags: dict[str, list[Row]]  # message id → tags
    columns: dict[str, list[str]] = field(default_factory=dict)
    judged: dict[str, list[Judgement]] = field(default_factory=dict)  # memo: message id → ...
    seis: dict[str, dict[str, ConversationSEI]] = field(default_factory=dict)  # conversation id
    current: dict[str, list[Row]] = field(default_factory=dict)  # message id → current rows


def _rows(
    db: duckdb.DuckDBPyConnection, sql: str, params: list[Any]
) -> tuple[list[str], list[Row]]:
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return names, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _grouped(rows: list[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def run_filters(run_ids: list[str] | None) -> dict[str, tuple[str, list[Any]]]:
    """WHERE clauses (and parameters) narrowing each table to some runs; reference tables whole."""
    if run_ids is None:
        return {}
    runs = "(SELECT unnest(?::VARCHAR[]))"
    conv = f"(SELECT id FROM conversations WHERE run_id IN {runs})"
    msg = f"(SELECT id FROM messages WHERE conversation_id IN {conv})"
    return {
        "runs": (f"WHERE id IN {runs}", [run_ids]),
        "conversations": (f"WHERE run_id IN {runs}", [run_ids]),
        "messages": (f"WHERE conversation_id IN {conv}", [run_ids]),
        "annotations": (f"WHERE message_id IN {msg}", [run_ids]),
        "tags": (f"WHERE message_id IN {msg}", [run_ids]),
    }


def check_runs(db: duckdb.DuckDBPyConnection, run_ids: Iterable[str] | None) -> list[str] | None:
    """The runs named, as a list, or a UserError naming those the archive lacks."""
    if run_ids is None:
        return None
    wanted = list(run_ids)
    known = {r[0] for r in db.execute("SELECT id FROM runs").fetchall()}
    missing = [r for r in wanted if r not in known]
    if missing:
        raise UserError(f"no run {', '.join(map(repr, missing))} in the archive")
    return wanted


@dataclass
class _Reader:
    """Reads tables in export order, narrowed to the runs asked for."""

    db: duckdb.DuckDBPyConnection
    filters: dict[str, tuple[str, list[Any]]]
    heavy: bool
    columns: dict[str, list[str]] = field(default_factory=dict)

    def table(self, name: str, source: str | None = None) -> list[Row]:
        """Rows of a table, or of `source` (a query over it) in its place."""
        cols = [r[0] for r in self.db.execute(f"DESCRIBE {name}").fetchall()]
        self.columns[name] = cols
        chosen = [c for c in cols if self.heavy or name != "messages" or c not in HEAVY]
        select = ", ".join(_LIGHT.get((name, c), f'"{c}"') if not self.heavy else f'"{c}"'
                           for c in chosen)  # fmt: skip
        where, params = self.filters.get(name, ("", []))
        sql = f"SELECT {select} FROM {source or name} {where} ORDER BY {ORDER[name]}"
        return _rows(self.db, sql, params)[1]

    def annotations(self, current: bool) -> tuple[list[Row], list[Row]]:
        """Every annotation row (heavy only) and, if asked, the current ones."""
        if not self.heavy:
            return [], self.table("annotations", _LATEST) if current else []
        rows = self.table("annotations")
        return rows, self._current_of(rows) if current else []

    def _current_of(self, rows: list[Row]) -> list[Row]:
        """The current rows among every annotation row, by the same query."""
        where, params = self.filters.get("annotations", ("", []))
        found = self.db.execute(f"SELECT id FROM {_LATEST} {where}", params).fetchall()
        ids = {r[0] for r in found}
        return [r for r in rows if r["id"] in ids]


def snapshot(
    db: duckdb.DuckDBPyConnection,
    run_ids: Iterable[str] | None = None,
    heavy: bool = True,
    judgements: bool = True,
) -> Snapshot:
    """Read runs (all, or the ones named) with everything they refer to.

    `heavy` is the lossless read JSONL needs: messages' request and raw JSON, and every
    annotation row. `judgements` reads the current annotations, which all but JSONL show.
    """
    wanted = check_runs(db, run_ids)
    read = _Reader(db, run_filters(wanted), heavy)
    runs = {r["id"]: r for r in read.table("runs")}
    convs = read.table("conversations")
    convs.sort(key=lambda c: (sortable(runs[c["run_id"]]["created_at"]), c["run_id"],
                              c["conv_key"], c["id"]))  # fmt: skip
    history, current = read.annotations(judgements)
    snap = Snapshot(
        models={r["id"]: r for r in read.table("models")},
        prompt_sets={(r["id"], r["version_hash"]): r for r in read.table("prompt_sets")},
        prompts=_grouped(read.table("prompts"), "set_hash"),
        runs=runs,
        conversations=convs,
        messages=_grouped(read.table("messages"), "conversation_id"),
        annotations=_grouped(history, "message_id"),
        taggers={r["id"]: r for r in read.table("taggers")},
        tags=_grouped(read.table("tags"), "message_id"),
        columns=read.columns,
        current=_grouped(current, "message_id"),
    )
    if judgements:
        snap.seis = _seis(db, wanted)
    return snap


def _seis(
    db: duckdb.DuckDBPyConnection, run_ids: list[str] | None
) -> dict[str, dict[str, ConversationSEI]]:
    """conversation id → source → SEI, by the scores' own query (store.frames.rubric)."""
    if run_ids == []:
        return {}
    frame = frames.rubric(db, frames.Filters(run_ids=tuple(run_ids or ())))
    out: dict[str, dict[str, ConversationSEI]] = defaultdict(dict)
    for r in frame.sort_values(["conversation_id", "source"]).itertuples(index=False):
        result = scores.score_sei(int(r.probe_total), int(r.net_markers), int(r.evidence))
        out[r.conversation_id][r.source] = ConversationSEI(result, int(r.dimensions_scored))
    return dict(out)
