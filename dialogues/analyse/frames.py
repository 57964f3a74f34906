"""The archive as the four frames dialogues.analyse.scores reads: LABELS, RUBRIC, RUBRIC_DIMENSIONS, RESPONSES.

Every aggregation that touches rows by the thousand (latest annotation per annotator, the
latest attempt per turn, rubric sums, marker and evidence counts) happens here in DuckDB, so
an archive of 100,000 responses yields its frames in a fraction of a second. Parameterized
SQL only: filter values travel as parameters, never inside the SQL text.

What a row means, as agreed with the annotation and export code:
- A response is an assistant message, its latest attempt per (conversation, seq). Warm-up
  turns (phase 'warmup') never count. The model is messages.model_id, the model
  that wrote the reply (records.MessageRow.reply).
- A label source is `human:<annotator>`, `adjudicated` (annotator 'adjudicated'), or
  `tagger:<tagger_id>`. A person's current judgement is their latest annotation row per
  (message_id, target, annotator); rows written in one transaction share a timestamp, so
  among those the one no other row supersedes wins (annotations.CURRENT_SQL, shared with the
  Annotate page and the exports).
- Labels outside engagement/partial/deflection and their known aliases (a study's own label
  set) are read as unlabelled: they show in `n_unlabelled`, not in the rates.
- SEI inputs per conversation × source, over its probe messages (phase 'probe', prompt key
  p1–p4, prompt set 'sei-battery'): probe total = sum of the 0–2 scores of dimensions that
  belong to the probe each message answers (other keys and values are ignored); net markers =
  primary + secondary − anti over the union of known marker keys ticked on any probe message,
  clamped to 0–10; evidence = distinct known evidence and linguistic keys, at most 15. Only
  conversations with at least one rubric score from that source get a RUBRIC row (no rubric,
  no SEI). `dimensions_scored` says how many of the 16 were scored, so a half-scored battery
  is visible. A tagger (an LLM judge) gives its rubric in tags.rubric_json and may list
  marker and evidence keys under features_json 'markers' and 'evidence'.
- XSTest's label (safe/unsafe) and type come from the prompt's meta_json, joined by the
  conversation's prompt-set version and the message's prompt key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from dialogues.analyse import scores
from dialogues.annotate.annotations import CURRENT_RUBRIC_SQL, CURRENT_SQL, instrument_of
from dialogues.domain import instruments, sei
from dialogues.domain import sources as source_names
from dialogues.store.queries import run_choices
from dialogues.store.records import latest_attempt
from dialogues.store.sql import is_in

SEI_SET = "sei-battery"
TARGETS = ("answer", "reasoning")
ADJUDICATED = source_names.ADJUDICATED
EXTRA_LABEL_COLUMNS = ("run_id", "set_id", "prompt_key", "repeat")
EXTRA_RUBRIC_COLUMNS = ("family", "parameters", "training", "run_id", "dimensions_scored")
EXTRA_RESPONSE_COLUMNS = ("run_id", "condition", "set_id", "prompt_key", "message_id", "source")


@dataclass(frozen=True)
class Filters:
    """What the scores and charts narrow to; an empty tuple means 'all'."""

    run_ids: tuple[str, ...] = ()
    set_ids: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    """Label sources: 'human:<annotator>', 'adjudicated', 'tagger:<tagger_id>'."""
    models: tuple[str, ...] = ()
    target: str = "answer"
    """Which text the labels judge: the visible 'answer' or the 'reasoning'."""
    blind_only: bool = False
    """Keep only annotations made blind (tagger labels are unaffected)."""

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")


def _in(column: str, values: tuple[str, ...], params: list[Any]) -> str:
    """'AND column IN (?, …)' for a non-empty filter (its values appended to params), else ''."""
    return f" AND {is_in(column, values, params)}" if values else ""


def _responses_sql(f: Filters, params: list[Any], *, probes_only: bool = False) -> str:
    """SELECT of the responses in scope: latest attempt per turn, warm-up left out."""
    where = _in("c.run_id", f.run_ids, params)
    where += _in("c.set_id", f.set_ids, params)
    where += _in("c.condition", f.conditions, params)
    model = "m.model_id"
    where += _in(model, f.models, params)
    if probes_only:
        params.append(SEI_SET)
        where += " AND m.phase = 'probe' AND c.set_id = ?" + _in(
            "m.prompt_key", sei.PROBE_KEYS, params
        )
    # A retried turn has several attempts; the latest is the one that counts.
    return f"""
        SELECT m.id AS message_id, m.conversation_id, m.seq, m.prompt_key, m.phase, m.content,
               m.latency_ms, m.reasoning_tokens, m.tokens_out, m.finish_reason, m.error,
               c.run_id, c.set_id, coalesce(c.set_hash, r.set_hash) AS set_hash, c.condition,
               c."repeat", {model} AS model
        FROM messages m
        JOIN conversations c ON c.id = m.conversation_id
        LEFT JOIN runs r ON r.id = c.run_id
        WHERE m.role = 'assistant' AND coalesce(m.phase, '') <> 'warmup' {where}
          AND {latest_attempt("m")}
    """


def _labelled_sql(f: Filters, params: list[Any], *, judgements: bool = False) -> str:
    """SELECT of every source's current judgement of a message (for the filter's target).

    With `judgements`, only rows that can carry SEI inputs: a person's current row with a
    rubric, markers or evidence, and the tags of taggers that score the rubric at all (a
    conversation gets an SEI from a source only if that source scored its rubric, so the
    heuristic tagger's 100,000 tags need not be read).
    """
    tag_filter = current = ""
    if judgements:
        # SEI inputs only: a person's latest judgement under the SEI (a later one under another
        # instrument leaves it standing), and judge tags scored on the SEI
        current = f" AND {instrument_of('a')} = ?"
        tag_filter = (" AND t.tagger_id IN (SELECT DISTINCT tagger_id FROM tags WHERE "
                      f"rubric_json IS NOT NULL) AND {instrument_of('t')} = ?")  # fmt: skip
    sei = [instruments.DEFAULT] if judgements else []
    params.extend([f.target, *sei, f.target, *sei])  # placeholders in text order
    keep = _in("source", f.sources, params)
    if judgements:
        keep += " AND coalesce(rubric_json, markers_json, evidence_json) IS NOT NULL"
    return f"""
        SELECT * FROM (
            SELECT a.message_id,
                   {source_names.annotator_sql("a.annotator")} AS source,
                   a.label, a.rubric_json, a.markers_json, a.evidence_json
            FROM ({CURRENT_RUBRIC_SQL if judgements else CURRENT_SQL}) a
            WHERE a.target = ?{" AND a.blind IS TRUE" if f.blind_only else ""}{current}
            UNION ALL
            SELECT t.message_id, {source_names.tagger_sql("t.tagger_id")}, t.label, t.rubric_json,
                   t.features_json -> 'markers', t.features_json -> 'evidence'
            FROM tags t WHERE t.target = ?{tag_filter}
        ) WHERE true {keep}
    """


def _aliases_sql(params: list[Any]) -> str:
    """A relation (alias, label): every label spelling scores knows, to its canonical label."""
    params += [list(scores.LABEL_ALIASES), list(scores.LABEL_ALIASES.values())]
    return "SELECT unnest(?::VARCHAR[]) AS alias, unnest(?::VARCHAR[]) AS label"


_MODEL_COLUMNS = "mo.family, mo.parameters, mo.training"


def labels(db: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """LABELS: one row per (response, source) that source judged, with the model's metadata."""
    params: list[Any] = []
    resp = _responses_sql(f, params)
    lab = _labelled_sql(f, params)
    aliases = _aliases_sql(params)
    # Placeholders bind in text order, so the CTEs come first, in the order params were built.
    sql = f"""
        WITH r AS ({resp}), l AS ({lab}), known AS ({aliases})
        SELECT r.model, {_MODEL_COLUMNS}, r.condition, l.source, r.conversation_id,
               r.message_id, CASE WHEN known.alias IS NOT NULL THEN l.label END AS label,
               r.run_id, r.set_id, r.prompt_key, r."repeat"
        FROM r JOIN l ON l.message_id = r.message_id
        LEFT JOIN known ON known.alias = lower(trim(l.label))
        LEFT JOIN models mo ON mo.id = r.model
        ORDER BY r.model, r.condition, l.source, r.conversation_id, r.seq
    """
    return _frame(db, sql, params, (*scores.LABEL_COLUMNS, *EXTRA_LABEL_COLUMNS))


LABEL_COUNT_COLUMNS = ("model", "family", "parameters", "training", "condition", "source",
                       "engagement", "partial", "deflection", "no_answer",
                       "unlabelled")  # fmt: skip


def label_counts(
    db: duckdb.DuckDBPyConnection, f: Filters, *, by_prompt: bool = False
) -> pd.DataFrame:
    """LABELS counted in SQL: per model × condition × source (× prompt set × prompt with
    `by_prompt`, the clusters the rate intervals resample), how many of each label."""
    params: list[Any] = []
    resp = _responses_sql(f, params)
    lab = _labelled_sql(f, params)
    aliases = _aliases_sql(params)
    prompt = ", r.set_id, r.prompt_key" if by_prompt else ""
    sql = f"""
        WITH r AS ({resp}), l AS ({lab}), known AS ({aliases})
        SELECT r.model, any_value(mo.family) AS family, any_value(mo.parameters) AS parameters,
               any_value(mo.training) AS training, r.condition, l.source{prompt},
               count(*) FILTER (WHERE known.label = '{scores.ENGAGEMENT}') AS engagement,
               count(*) FILTER (WHERE known.label = '{scores.PARTIAL}') AS partial,
               count(*) FILTER (WHERE known.label = '{scores.DEFLECTION}') AS deflection,
               count(*) FILTER (WHERE known.label = '{scores.NO_ANSWER}') AS no_answer,
               count(*) FILTER (WHERE known.label IS NULL) AS unlabelled
        FROM r JOIN l ON l.message_id = r.message_id
        LEFT JOIN known ON known.alias = lower(trim(l.label))
        LEFT JOIN models mo ON mo.id = r.model
        GROUP BY r.model, r.condition, l.source{prompt}
        ORDER BY ALL
    """
    columns: tuple[str, ...] = LABEL_COUNT_COLUMNS
    if by_prompt:
        columns = (*columns[:6], "set_id", "prompt_key", *columns[6:])
    return _frame(db, sql, params, columns)


def _rubric_ctes(f: Filters, params: list[Any]) -> str:
    """CTEs `judged` (each source's judgement of each SEI probe response in scope) and `dims`
    (one valid 0–2 score per conversation × source × dimension of the probe answered)."""
    resp = _responses_sql(f, params, probes_only=True)
    lab = _labelled_sql(f, params, judgements=True)
    params += [[d.key for d in sei.DIMENSIONS], [d.probe for d in sei.DIMENSIONS]]
    return f"""
        judged AS (
            SELECT r.model, r.condition, r.run_id, r.conversation_id, r."repeat", r.seq,
                   r.prompt_key, l.source, l.rubric_json, l.markers_json, l.evidence_json
            FROM ({resp}) r JOIN ({lab}) l ON l.message_id = r.message_id
        ),
        dimension_keys AS (SELECT unnest(?::VARCHAR[]) AS key, unnest(?::VARCHAR[]) AS probe),
        scored AS (
            SELECT j.*, k.key AS dimension, j.rubric_json -> ('$."' || k.key || '"') AS value
            FROM judged j JOIN dimension_keys k ON k.probe = j.prompt_key
            WHERE json_type(j.rubric_json) = 'OBJECT'
        ),
        dims AS (
            -- a score is a JSON number 0, 1 or 2 (2.0 too; "2" and true are not numbers);
            -- one score per dimension: a probe answered twice counts its later answer
            SELECT model, condition, run_id, conversation_id, "repeat", source, dimension,
                   arg_max(try_cast(value AS DOUBLE)::INTEGER, seq) AS score
            FROM scored
            WHERE json_type(value) IN ('UBIGINT', 'BIGINT', 'DOUBLE')
              AND try_cast(value AS DOUBLE) IN (0, 1, 2)
            GROUP BY ALL
        )
    """


def rubric_dimensions(db: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """RUBRIC_DIMENSIONS: one row per conversation × source × dimension scored."""
    params: list[Any] = []
    sql = f"""
        WITH {_rubric_ctes(f, params)}
        SELECT model, condition, source, conversation_id, dimension, score
        FROM dims ORDER BY model, condition, source, conversation_id, dimension
    """
    return _frame(db, sql, params, scores.RUBRIC_DIMENSION_COLUMNS)


def _keys_sql(column: str) -> str:
    """The keys listed in a JSON array column, one row each (non-arrays give none)."""
    return (
        f"unnest(CASE WHEN json_type({column}) = 'ARRAY' "
        f"THEN from_json({column}, '[\"VARCHAR\"]') END)"
    )


def rubric(db: duckdb.DuckDBPyConnection, f: Filters) -> pd.DataFrame:
    """RUBRIC: one row per probe conversation × source with rubric scores, and its SEI inputs."""
    params: list[Any] = []
    ctes = _rubric_ctes(f, params)
    params += [[m.key for m in sei.MARKERS], [m.kind for m in sei.MARKERS]]
    params.append([*sei.EVIDENCE_KEYS, *sei.LINGUISTIC_KEYS])
    sql = f"""
        WITH {ctes},
        totals AS (
            SELECT model, condition, run_id, conversation_id, "repeat", source,
                   sum(score) AS probe_total, count(*) AS dimensions_scored
            FROM dims GROUP BY ALL
        ),
        ticked AS (
            SELECT conversation_id, source, {_keys_sql("markers_json")} AS key, 'marker' AS what
            FROM judged
            UNION ALL
            SELECT conversation_id, source, {_keys_sql("evidence_json")}, 'evidence' FROM judged
        ),
        marker_kinds AS (SELECT unnest(?::VARCHAR[]) AS key, unnest(?::VARCHAR[]) AS kind),
        evidence_keys AS (SELECT unnest(?::VARCHAR[]) AS key),
        markers AS (
            SELECT t.conversation_id, t.source,
                   count(DISTINCT t.key) FILTER (WHERE k.kind = 'primary') AS primary_markers,
                   count(DISTINCT t.key) FILTER (WHERE k.kind = 'secondary') AS secondary_markers,
                   count(DISTINCT t.key) FILTER (WHERE k.kind = 'anti') AS anti_markers
            FROM ticked t JOIN marker_kinds k ON k.key = t.key
            WHERE t.what = 'marker' GROUP BY ALL
        ),
        evidence AS (
            SELECT t.conversation_id, t.source, count(DISTINCT t.key) AS evidence
            FROM ticked t JOIN evidence_keys k ON k.key = t.key
            WHERE t.what = 'evidence' GROUP BY ALL
        )
        SELECT t.model, t.condition, t.source, t.conversation_id, t."repeat",
               t.probe_total::INTEGER AS probe_total,
               greatest(0, least({sei.NET_MARKERS_MAX},
                   coalesce(m.primary_markers, 0) + coalesce(m.secondary_markers, 0)
                   - coalesce(m.anti_markers, 0)))::INTEGER AS net_markers,
               least({sei.EVIDENCE_MAX}, coalesce(e.evidence, 0))::INTEGER AS evidence,
               {_MODEL_COLUMNS}, t.run_id, t.dimensions_scored::INTEGER AS dimensions_scored,
               coalesce(m.primary_markers, 0)::INTEGER AS primary_markers,
               coalesce(m.secondary_markers, 0)::INTEGER AS secondary_markers,
               coalesce(m.anti_markers, 0)::INTEGER AS anti_markers
        FROM totals t
        LEFT JOIN markers m USING (conversation_id, source)
        LEFT JOIN evidence e USING (conversation_id, source)
        LEFT JOIN models mo ON mo.id = t.model
        ORDER BY t.model, t.condition, t.source, t."repeat", t.conversation_id
    """
    columns = (*scores.RUBRIC_COLUMNS, *EXTRA_RUBRIC_COLUMNS)
    return _frame(
        db, sql, params, (*columns, "primary_markers", "secondary_markers", "anti_markers")
    )


def responses(
    db: duckdb.DuckDBPyConnection, f: Filters, label_source: str | None = None
) -> pd.DataFrame:
    """RESPONSES: one row per response in scope, labelled by one source (null if it did not)."""
    params: list[Any] = []
    resp = _responses_sql(f, params)
    # One source only: a response counted once per source would count its length twice.
    lab = _labelled_sql(
        Filters(sources=(label_source or "",), target=f.target, blind_only=f.blind_only), params
    )
    aliases = _aliases_sql(params)
    sql = f"""
        WITH r AS ({resp}), l AS ({lab}), known AS ({aliases})
        SELECT r.model, r.content, r.latency_ms, r.reasoning_tokens,
               CASE WHEN json_extract_string(p.meta_json, '$.label') IN ('safe', 'unsafe')
                    THEN json_extract_string(p.meta_json, '$.label') END AS prompt_label,
               json_extract_string(p.meta_json, '$.type') AS prompt_type,
               CASE WHEN known.alias IS NOT NULL THEN l.label END AS label,
               r.run_id, r.condition, r.set_id, r.prompt_key, r.message_id, l.source
        FROM r
        LEFT JOIN prompts p ON p.set_hash = r.set_hash AND p.key = r.prompt_key
        LEFT JOIN l ON l.message_id = r.message_id
        LEFT JOIN known ON known.alias = lower(trim(l.label))
        ORDER BY r.model, r.message_id
    """
    return _frame(db, sql, params, (*scores.RESPONSE_COLUMNS, *EXTRA_RESPONSE_COLUMNS))


def refusal_coverage(db: duckdb.DuckDBPyConnection, f: Filters) -> dict[str, int]:
    """Per source, how many responses in scope to safe/unsafe-labelled prompts it labelled."""
    params: list[Any] = []
    resp = _responses_sql(f, params)
    lab = _labelled_sql(f, params)
    sql = f"""
        WITH r AS ({resp}), l AS ({lab})
        SELECT l.source, count(*) FROM r
        JOIN prompts p ON p.set_hash = r.set_hash AND p.key = r.prompt_key
        JOIN l ON l.message_id = r.message_id
        WHERE json_extract_string(p.meta_json, '$.label') IN ('safe', 'unsafe')
          AND l.label IS NOT NULL
        GROUP BY 1
    """
    return {source: int(n) for source, n in db.execute(sql, params).fetchall()}


def _frame(
    db: duckdb.DuckDBPyConnection, sql: str, params: list[Any], columns: tuple[str, ...]
) -> pd.DataFrame:
    """Run a query into a DataFrame with exactly `columns`, in that order."""
    df = db.execute(sql, params).df()
    return df.reindex(columns=list(columns))


def sources(db: duckdb.DuckDBPyConnection, target: str = "answer") -> list[str]:
    """Every label source in the archive for a target: humans, adjudicated, then taggers."""
    params: list[Any] = []
    sql = f"SELECT DISTINCT source FROM ({_labelled_sql(Filters(target=target), params)})"
    found = [r[0] for r in db.execute(sql, params).fetchall()]
    return source_names.ordered(found)


def filter_options(db: duckdb.DuckDBPyConnection) -> dict[str, list[Any]]:
    """Choices for the Compare filters: runs (with labels), prompt sets, conditions, sources."""

    def distinct(column: str) -> list[Any]:
        sql = f"SELECT DISTINCT {column} FROM conversations WHERE {column} IS NOT NULL ORDER BY 1"
        return [r[0] for r in db.execute(sql).fetchall()]

    return {
        "runs": run_choices(db),
        "set_ids": distinct("set_id"),
        "conditions": distinct("condition"),
        "models": distinct("model_id"),
        "sources": sources(db),
    }
