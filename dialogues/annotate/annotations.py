"""Human annotations in the archive: save, edit with history, current values, the blind queue.

Rows are append-only. An edit inserts a new row whose `supersedes` names the row it replaces,
so an earlier judgement is never lost; the *current* annotation is the latest row per
(message_id, target, annotator). `target` is 'answer' (the visible content) or 'reasoning'
(the thinking text), so the two can be judged apart.

Labels of every kind meet under one name, a *source*: `human:<annotator>` for a person,
`adjudicated` for a final label (annotator 'adjudicated'), `tagger:<tagger id>` for an
automatic tagger. Agreement, scores and exports all speak in sources.

Blind mode builds the `Item` from the probe conversation only (the page cannot leak what it
never receives): no model, run or condition, no system prompt, no warm-up turns and nothing
that counts them (no stored turn number, no conversation id), each probe as the prompt set
words it (without a condition's framing), and self-identifications masked
("As ChatGPT…" → "As [model]…"): the same probe answered cold and warm gives items that differ
only in the reply. Warm-up replies are not in the blind queue. A run recorded
with `blind_required` is annotated blind only: its responses are left out of the open queue
and its items are blind whatever the caller asks. The queue is ordered by md5(annotator seed ||
message id): a stable shuffle, the same on every rerun for one annotator, different between
annotators.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from dialogues.annotate import overlap
from dialogues.domain import blinding, instruments, sei, sources
from dialogues.domain.errors import UserError
from dialogues.domain.labels import DEFAULT, LabelSet
from dialogues.domain.prompts import sha256
from dialogues.store import transaction
from dialogues.store.queries import run_choices
from dialogues.store.records import fetch_dicts, history, new_id, to_json
from dialogues.store.sql import is_in
from dialogues.store.sql import marks as sql_marks

TARGETS = ("answer", "reasoning")
ADJUDICATED = sources.ADJUDICATED
HUMAN_PREFIX, TAGGER_PREFIX = sources.HUMAN_PREFIX, sources.TAGGER_PREFIX
EVIDENCE_CHOICES = sei.EVIDENCE_KEYS + sei.LINGUISTIC_KEYS
SAVE_ATTEMPTS = 8

# The canonical "current annotation" query: every reader of annotations uses this.
# Ties on created_at (rows from other writers) go to the row nobody supersedes.
_CURRENT = """
    SELECT a.* FROM annotations a
    LEFT JOIN (SELECT DISTINCT supersedes FROM annotations WHERE supersedes IS NOT NULL) s
           ON s.supersedes = a.id
    QUALIFY row_number() OVER (
        PARTITION BY a.message_id, a.target, a.annotator{per}
        ORDER BY a.created_at DESC, (s.supersedes IS NOT NULL), a.id DESC) = 1
"""
# A person's current judgement of a reply: their latest, whatever instrument it scored.
CURRENT_SQL = _CURRENT.format(per="")


def instrument_of(alias: str) -> str:
    """SQL: the instrument a judgement (annotation or tag) `alias` scored; rows from before
    m006 carry none, and theirs is the SEI, the only instrument then."""
    return f"coalesce({alias}.instrument_id, '{instruments.DEFAULT}')"


# A person's current rubric scores on each instrument: their latest judgement *under that
# instrument*, so scoring a reply on a second instrument never takes away the first one's scores.
CURRENT_RUBRIC_SQL = _CURRENT.format(per=f", {instrument_of('a')}")


@dataclass
class Annotation:
    """One person's judgement of one response (or its reasoning), as entered."""

    message_id: str
    annotator: str
    target: str = "answer"
    label: str | None = None
    rubric: dict[str, int] = field(default_factory=dict)
    """{dimension key: score} on the instrument's dimensions for the prompt this message answers."""
    markers: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    note: str | None = None
    blind: bool | None = None
    origin: str = "cli"
    instrument: str = instruments.DEFAULT
    """The rubric instrument (id in prompts/instruments/ or a file); stored with its version."""


def text_of(message: dict[str, Any], target: str) -> str:
    """The text a target judges: the visible content or the reasoning."""
    return (message.get("content") if target == "answer" else message.get("reasoning")) or ""


def probe_of(message: dict[str, Any]) -> str | None:
    """The SEI probe a message answers, or None (warm-up turns are never probe-scored)."""
    key = message.get("prompt_key")
    if message.get("phase") == "warmup" or key not in sei.PROBE_KEYS:
        return None
    return str(key)


_clock = threading.Lock()
_last = datetime.min


def _now() -> datetime:
    """UTC now, strictly increasing in this process, so 'latest' never ties."""
    global _last
    with _clock:
        now = datetime.now(UTC).replace(tzinfo=None)
        _last = max(now, _last + timedelta(microseconds=1))
        return _last


def _check_lists(ann: Annotation) -> None:
    bad = [m for m in ann.markers if m not in sei.MARKER_KEYS]
    if bad:
        raise UserError(f"unknown marker(s) {', '.join(bad)}")
    bad = [e for e in ann.evidence if e not in EVIDENCE_CHOICES]
    if bad:
        raise UserError(f"unknown evidence key(s) {', '.join(bad)}")


def _check_rubric(ann: Annotation, message: dict[str, Any], inst: instruments.Instrument) -> None:
    if not ann.rubric:
        return
    key = message.get("prompt_key")
    dims = inst.dimensions_for(key, message.get("phase"))
    if not dims:
        what = "an SEI probe" if inst.id == "sei" else f"a prompt instrument {inst.id} scores"
        raise UserError(
            f"message {ann.message_id} does not answer {what} (warm-up turns and other "
            "prompts are never probe-scored); save a label without a rubric"
        )
    allowed = {d.key for d in dims}
    allowed_scores = ", ".join(map(str, inst.scores[:-1])) + f" or {inst.levels}"
    for dim, score in ann.rubric.items():
        if dim not in allowed:
            raise UserError(f"rubric dimension {dim!r} does not belong to probe {key} ({inst.id})")
        if isinstance(score, bool) or score not in inst.scores:
            raise UserError(f"rubric score for {dim} must be {allowed_scores}, not {score!r}")


def validate(
    ann: Annotation,
    message: dict[str, Any] | None,
    labels: LabelSet,
    inst: instruments.Instrument | None = None,
) -> str:
    """Check an annotation against its message and label set; returns the judged text."""
    if message is None or message.get("role") != "assistant":
        raise UserError(f"no response with id {ann.message_id!r} in the archive")
    if ann.target not in TARGETS:
        raise UserError(f"target must be one of {', '.join(TARGETS)}, not {ann.target!r}")
    if not ann.annotator.strip():
        raise UserError("an annotation needs an annotator name")
    text = text_of(message, ann.target)
    if ann.target == "reasoning" and not text.strip():
        raise UserError(f"response {ann.message_id} has no reasoning text to annotate")
    if ann.label is not None:
        labels.check(ann.label)
    _check_rubric(ann, message, inst or instruments.load(ann.instrument))
    _check_lists(ann)
    if not (ann.label or ann.rubric or ann.markers or ann.evidence or (ann.note or "").strip()):
        raise UserError("nothing to save: give a label, rubric scores, markers or a note")
    return text


def _message(db: duckdb.DuckDBPyConnection, message_id: str) -> dict[str, Any] | None:
    rows = fetch_dicts(db, "SELECT * FROM messages WHERE id = ?", [message_id])
    return rows[0] if rows else None


def save(db: duckdb.DuckDBPyConnection, ann: Annotation, labels: LabelSet = DEFAULT) -> str:
    """Append an annotation (an edit if this annotator already judged it); returns its id."""
    inst = instruments.load(ann.instrument) if ann.rubric else None
    text = validate(ann, _message(db, ann.message_id), labels, inst)
    annotator = ann.annotator.strip()
    previous = current(db, message_ids=[ann.message_id], annotator=annotator, target=ann.target)
    row_id = new_id()
    db.execute(
        "INSERT INTO annotations (id, message_id, target, annotator, label, label_set, "
        "rubric_json, markers_json, evidence_json, note, content_hash, blind, origin, "
        "supersedes, created_at, instrument_id, instrument_version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row_id, ann.message_id, ann.target, annotator, ann.label, labels.id,
         to_json(ann.rubric or None), to_json(sorted(set(ann.markers)) or None),
         to_json(sorted(set(ann.evidence)) or None), (ann.note or "").strip() or None,
         sha256(text), ann.blind, ann.origin, previous[0]["id"] if previous else None, _now(),
         inst.id if inst else None, inst.version if inst else None],
    )  # fmt: skip
    return row_id


def save_to(archive: Path, ann: Annotation, labels: LabelSet = DEFAULT) -> str:
    """Save in its own short transaction, retrying when another writer got there first."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            with transaction(archive) as db:
                return save(db, ann, labels)
        except duckdb.TransactionException:
            # Two sessions appending at the same instant: both rows must land, so try again.
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("rubric_json", "markers_json", "evidence_json"):
        value = row.get(key)
        row[key.removesuffix("_json")] = json.loads(value) if isinstance(value, str) else value
    return row


def history_of(
    db: duckdb.DuckDBPyConnection, message_id: str, target: str | None = None
) -> list[dict[str, Any]]:
    """Every annotation row of a response, oldest first, superseded ones included."""
    sql = "SELECT * FROM annotations WHERE message_id = ?"
    params: list[Any] = [message_id]
    if target:
        sql += " AND target = ?"
        params.append(target)
    return [_decode(r) for r in fetch_dicts(db, sql + " ORDER BY created_at, id", params)]


def current(
    db: duckdb.DuckDBPyConnection,
    *,
    message_ids: list[str] | None = None,
    annotator: str | None = None,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """The current annotation per (message, target, annotator), optionally narrowed."""
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if message_ids is not None:
        clauses.append(is_in("message_id", message_ids, params))
    if annotator is not None:
        clauses.append("annotator = ?")
        params.append(annotator)
    if target is not None:
        clauses.append("target = ?")
        params.append(target)
    sql = f"SELECT * FROM ({CURRENT_SQL}) WHERE {' AND '.join(clauses)} ORDER BY created_at"
    return [_decode(r) for r in fetch_dicts(db, sql, params)]


def annotators(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of everyone who has annotated, adjudication included."""
    rows = db.execute("SELECT DISTINCT annotator FROM annotations ORDER BY 1").fetchall()
    return [r[0] for r in rows]


# --- the queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    """Which responses an annotator works through; an empty field means 'any'."""

    set_ids: tuple[str, ...] = ()
    prompt_keys: tuple[str, ...] = ()
    """Prompt keys, e.g. the SEI probes 'p1'…'p4' or 'xstest-17'."""
    models: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    target: str = "answer"


@dataclass(frozen=True)
class QueueStatus:
    """Progress through a queue and the next response to judge (None when done)."""

    total: int
    done: int
    next_id: str | None
    shared_total: int = 0
    """Responses of this queue in the study's shared (overlap) set."""
    shared_done: int = 0


ORDERS = ("shuffled", "archive")
"""Queue orders: a stable per-annotator shuffle, or the order the archive holds them in."""


def seed_for(annotator: str) -> str:
    """A stable per-annotator seed for the blind shuffle."""
    return hashlib.sha256(f"dialogues-blind:{annotator.strip()}".encode()).hexdigest()[:16]


# Runs whose study owner requires blind annotation.
BLIND_REQUIRED_RUNS = (
    "SELECT id FROM runs WHERE coalesce(json_extract(params_json, '$.blind_required')::BOOLEAN,"
    " false)"
)


def _queue_sql(filt: QueueFilter, blind: bool = True) -> tuple[str, list[Any]]:
    text = "m.content" if filt.target == "answer" else "m.reasoning"
    clauses = ["m.role = 'assistant'", "m.error IS NULL", f"trim(coalesce({text}, '')) <> ''"]
    if blind:  # a warm-up reply would tell a blind annotator the condition
        clauses.append("coalesce(m.phase, '') <> 'warmup'")
    else:
        clauses.append(f"c.run_id NOT IN ({BLIND_REQUIRED_RUNS})")
    params: list[Any] = []
    for column, values in (
        ("c.set_id", filt.set_ids),
        ("m.prompt_key", filt.prompt_keys),
        ("m.model_id", filt.models),
        ("c.run_id", filt.run_ids),
    ):
        if values:
            clauses.append(is_in(column, values, params))
    sql = (
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "LEFT JOIN shared s ON s.id = m.id LEFT JOIN others o ON o.message_id = m.id "
        f"WHERE {' AND '.join(clauses)}"
    )
    return sql, params


def order_sql(order: str, annotator: str, *, spread: bool) -> tuple[str, list[Any]]:
    """The ORDER BY of a queue: shared items first, then (with a design) the least-judged
    by others, then the chosen order. Every queue order goes through here."""
    if order not in ORDERS:
        raise UserError(f"queue order must be one of {', '.join(ORDERS)}, not {order!r}")
    keys = ["s.id IS NULL"] + (["coalesce(o.n, 0)"] if spread else [])
    if order == "shuffled":
        return ", ".join([*keys, "md5(? || m.id)"]), [seed_for(annotator)]
    return ", ".join([*keys, "c.created_at, c.id, m.seq, m.id"]), []


def queue_status(
    db: duckdb.DuckDBPyConnection,
    annotator: str,
    filt: QueueFilter = QueueFilter(),
    *,
    blind: bool = True,
    skip: tuple[str, ...] = (),
    order: str | None = None,
) -> QueueStatus:
    """n of N done, and the next response this annotator has not judged (skipped ones last).

    With an overlap design the shared set comes first and the rest spreads out; `order`
    (default: shuffled when blind, else archive order) settles the remaining ties.
    """
    if filt.target not in TARGETS:
        raise UserError(f"target must be one of {', '.join(TARGETS)}")
    base, params = _queue_sql(filt, blind)
    found = overlap.design(db)
    shared, shared_params = overlap.shared_sql(found, filt.target)
    sort, sort_params = order_sql(order or ("shuffled" if blind else "archive"), annotator,
                                  spread=found is not None)  # fmt: skip
    skip_params: list[Any] = []
    skipped = is_in("m.id", skip, skip_params)
    row = db.execute(
        f"""
        WITH shared AS ({shared}),
        others AS (
            SELECT message_id, count(DISTINCT annotator) AS n FROM annotations
            WHERE target = ? AND annotator NOT IN (?, ?) GROUP BY message_id
        ),
        q AS (
            SELECT m.id, s.id IS NOT NULL AS shared,
                   row_number() OVER (ORDER BY {skipped}, {sort}) AS pos,
                   EXISTS (SELECT 1 FROM annotations a WHERE a.message_id = m.id
                           AND a.target = ? AND a.annotator = ?) AS done
            {base}
        )
        SELECT count(*), count(*) FILTER (WHERE done), arg_min(id, pos) FILTER (WHERE NOT done),
               count(*) FILTER (WHERE shared), count(*) FILTER (WHERE shared AND done)
        FROM q
        """,
        [*shared_params, filt.target, annotator.strip(), ADJUDICATED, *skip_params, *sort_params,
         filt.target, annotator.strip(), *params],
    ).fetchone()  # fmt: skip
    assert row is not None
    return QueueStatus(int(row[0]), int(row[1]), row[2], int(row[3]), int(row[4]))


def judged(db: duckdb.DuckDBPyConnection, annotator: str, target: str = "answer") -> list[str]:
    """The responses this annotator has judged for a target, in the order first judged:
    what previous/next step through. Only their own: nobody else's work is reachable."""
    rows = db.execute(
        "SELECT message_id FROM annotations WHERE annotator = ? AND target = ? "
        "GROUP BY message_id ORDER BY min(created_at), message_id",
        [annotator.strip(), target],
    ).fetchall()
    return [r[0] for r in rows]


def blind_only_count(db: duckdb.DuckDBPyConnection, target: str = "answer") -> int:
    """Responses of runs that require blind annotation: in the blind queue, never the open one."""
    text = "m.content" if target == "answer" else "m.reasoning"
    found = db.execute(
        "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE m.role = 'assistant' AND m.error IS NULL AND trim(coalesce({text}, '')) <> '' "
        f"AND coalesce(m.phase, '') <> 'warmup' AND c.run_id IN ({BLIND_REQUIRED_RUNS})"
    ).fetchone()
    return int(found[0]) if found else 0


def queue_options(db: duckdb.DuckDBPyConnection, *, blind: bool = True) -> dict[str, list[str]]:
    """Values the queue can be filtered by; no models or runs in blind mode."""

    def distinct(sql: str) -> list[str]:
        return [r[0] for r in db.execute(sql).fetchall() if r[0] is not None]

    options = {
        "set_ids": distinct("SELECT DISTINCT set_id FROM conversations ORDER BY 1"),
        "prompt_keys": distinct(
            "SELECT DISTINCT prompt_key FROM messages WHERE role = 'assistant' ORDER BY 1"
        ),
        "models": [],
        "run_ids": [],
    }
    if not blind:
        options["models"] = distinct("SELECT DISTINCT model_id FROM messages ORDER BY 1")
        options["run_ids"] = [r["id"] for r in run_choices(db)]
    return options


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, as context for the response judged."""

    role: str
    who: str  # 'system', 'prompt', 'researcher', 'model', or (not blind) the other model's id
    content: str


@dataclass(frozen=True)
class Item:
    """A response to judge, with its conversation up to that turn; model and run None if blind."""

    message_id: str
    conversation_id: str | None
    """None when blind, as `seq`: a blind item carries nothing that leads to the hidden turns."""
    seq: int | None
    """The turn's place in the stored conversation; None when blind, since it counts the
    warm-up turns before the probe and so tells the condition."""
    phase: str | None
    prompt_key: str | None
    probe: str | None
    content: str
    reasoning: str | None
    finish_reason: str | None
    context: tuple[Turn, ...]
    set_id: str | None
    model: str | None = None
    run_id: str | None = None
    condition: str | None = None
    blind: bool = True
    """Built blind: as asked, or because the run requires it."""
    dimensions: tuple[instruments.Dimension, ...] = ()
    """The instrument's dimensions for this reply, empty when it scores none (warm-up turns)."""
    scores: tuple[int, ...] = sei.SCORE_LEVELS
    instrument_id: str = instruments.DEFAULT


def _who(row: dict[str, Any], blind: bool) -> str:
    speaker = row.get("speaker") or ""
    if row["role"] == "assistant":
        return "model"
    if speaker in ("prompt", "researcher", ""):
        return speaker or "prompt"
    return "other model" if blind else speaker  # model-to-model: the user turn is a model


def blind_required(db: duckdb.DuckDBPyConnection, run_id: str | None) -> bool:
    """Whether a run's owner requires its responses to be annotated blind."""
    if run_id is None:
        return False
    row = db.execute(f"SELECT count(*) FROM ({BLIND_REQUIRED_RUNS}) WHERE id = ?", [run_id])
    found = row.fetchone()
    return bool(found and found[0])


def mask_names(db: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The archive's own model names and families, masked in blind mode beside the fixed list."""
    rows = db.execute(
        "SELECT id, family FROM models UNION SELECT model_id, NULL FROM conversations "
        "UNION SELECT model_b_id, NULL FROM conversations"
    ).fetchall()
    return blinding.names_from_models(rows)


def _bare_prompt(db: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> str:
    """A probe as its prompt set words it, without the framing a condition put around it."""
    if row.get("prompt_hash") and row.get("phase") == "probe":
        found = db.execute(
            "SELECT content FROM prompts WHERE content_hash = ? LIMIT 1", [row["prompt_hash"]]
        ).fetchone()
        if found:
            return str(found[0])
    return row.get("content") or ""


def item(
    db: duckdb.DuckDBPyConnection,
    message_id: str,
    *,
    blind: bool = True,
    instrument: instruments.Instrument | None = None,
) -> Item:
    """The response and its context; in blind mode the probe conversation only, names masked."""
    inst = instrument or instruments.load()
    message = _message(db, message_id)
    if message is None or message["role"] != "assistant":
        raise UserError(f"no response with id {message_id!r} in the archive")
    conv = fetch_dicts(db, "SELECT * FROM conversations WHERE id = ?", [message["conversation_id"]])
    head = conv[0] if conv else {}
    blind = blind or blind_required(db, head.get("run_id"))
    extra = mask_names(db) if blind else ()

    def shown(text: str | None) -> str | None:
        return blinding.mask(text, extra) if blind and text else text

    context: list[Turn] = []
    if head.get("system_prompt") and not blind:
        context.append(Turn("system", "system", head["system_prompt"]))
    for row in history(db, message["conversation_id"]):
        if row["seq"] >= message["seq"] or (blind and row.get("phase") == "warmup"):
            continue
        text = _bare_prompt(db, row) if blind and row["role"] == "user" else row.get("content")
        context.append(Turn(row["role"], _who(row, blind), shown(text) or ""))
    return Item(
        message_id=message_id, conversation_id=None if blind else message["conversation_id"],
        seq=None if blind else message["seq"],
        phase=message.get("phase"), prompt_key=message.get("prompt_key"),
        probe=probe_of(message), content=shown(message.get("content")) or "",
        reasoning=shown(message.get("reasoning")), finish_reason=message.get("finish_reason"),
        context=tuple(context), set_id=head.get("set_id"),
        model=None if blind else message.get("model_id"),
        run_id=None if blind else head.get("run_id"),
        condition=None if blind else head.get("condition"), blind=blind,
        dimensions=inst.dimensions_for(message.get("prompt_key"), message.get("phase")),
        scores=inst.scores, instrument_id=inst.id,
    )  # fmt: skip


def labels_of(
    db: duckdb.DuckDBPyConnection, message_ids: list[str], target: str = "answer"
) -> dict[str, dict[str, str]]:
    """message id → {source: label}: people's current labels and taggers' tags, for a few ids."""
    if not message_ids:
        return {}
    marks = sql_marks(message_ids)
    rows = db.execute(
        f"""
        SELECT message_id, {sources.annotator_sql("annotator")} AS source, label
        FROM ({CURRENT_SQL}) WHERE target = ? AND label IS NOT NULL AND message_id IN ({marks})
        UNION ALL
        SELECT message_id, {sources.tagger_sql("tagger_id")}, label FROM tags
        WHERE target = ? AND message_id IN ({marks})
        ORDER BY 1, 2
        """,
        [target, *message_ids, target, *message_ids],
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for message_id, source, label in rows:
        out.setdefault(message_id, {})[source] = label
    return out
