"""The archive out: a markdown folder for people, JSONL / Parquet / CSV for notebooks.

Everything is read with a few set-based queries into a `Snapshot` (one query per table, never
one per conversation), then written with plain string building, so 10,000 conversations
export in seconds. Decisions a reader of an export should know:

- Markdown: every text a model or a person wrote sits inside a fenced code block whose fence
  is longer than any backtick run in the text, so `---`, HTML, `</details>` or ``` in a reply
  cannot end the block; short strings in headings and tables are backslash-escaped. The raw
  file shows the exact text; renderers show it verbatim (monospace, unwrapped).
- Names are stable: `<run-date>-<run-slug>-<id8>/<model>-<condition>-<repeat>[-<prompt>].md`,
  from archive data only, so re-exporting rewrites the same files (unchanged bytes are not
  rewritten). A file we wrote earlier for a conversation that no longer exists is removed,
  only inside a run folder this export writes, and only if its front matter says we wrote it.
- Front matter leaves out who ran the batch (a login name) and the API base URL; the JSONL
  keeps every column, because it is the lossless form.
- Annotations: the current value is the latest row per (message, target, annotator); markdown
  shows current values, JSONL carries every row (history included).
- Secrets: no export contains the value of an environment variable that looks like a key,
  token, secret or password (see `secret_values`), even if one slipped into the archive.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import os
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from dialogues import scores, sei
from dialogues.errors import UserError

JSONL_FORMAT = "dialogues-jsonl/1"
MARKER = "exported_by: dialogues"  # first front-matter line: what we may overwrite or remove
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
RESPONSE_COLUMNS = (
    "run_id", "run_name", "conversation_id", "message_id", "model", "family", "parameter_size",
    "training", "condition", "repeat", "set_id", "set_hash", "phase", "seq", "attempt",
    "prompt_key", "prompt", "content", "reasoning", "state", "finish_reason", "tokens_in",
    "tokens_out", "reasoning_tokens", "latency_ms", "error_kind", "error", "created_at",
)  # fmt: skip
# ...then one 'label:<source>' column per source, and '<target>_label:<source>' for reasoning.
HEAVY = ("request_json", "raw_json")
SEI_SET = "sei-battery"  # the battery whose answers carry SEI rubrics (as store/frames.py)  # message columns markdown never shows
NO_ANSWER = "No answer: thinking used the whole token budget."
NO_ANSWER_PLAIN = "No answer: the token budget ran out before any visible text."
SLUG_MAX = 48
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
            *(f"lpt{i}" for i in range(10))}  # fmt: skip
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: 5x faster

Row = dict[str, Any]


def _people_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A file-system failure while writing becomes one line naming the target."""

    @functools.wraps(fn)
    def wrapper(db: duckdb.DuckDBPyConnection, target: Path, *args: Any, **kw: Any) -> Any:
        try:
            return fn(db, target, *args, **kw)
        except OSError as exc:
            where = exc.filename or target
            raise UserError(f"cannot write {where}: {exc.strerror or exc}") from None

    return wrapper


# --- reading the archive --------------------------------------------------------------------


@dataclass
class Snapshot:
    """Every row an export needs, grouped for lookup; read with one query per table."""

    models: dict[str, Row]
    prompt_sets: dict[tuple[str, str], Row]
    prompts: dict[str, list[Row]]  # set_hash → prompts by position
    runs: dict[str, Row]
    conversations: list[Row]  # in export order
    messages: dict[str, list[Row]]  # conversation id → rows by seq, attempt
    annotations: dict[str, list[Row]]  # message id → every row, oldest first
    taggers: dict[str, Row]
    tags: dict[str, list[Row]]  # message id → tags
    columns: dict[str, list[str]] = field(default_factory=dict)
    judged: dict[str, list[Judgement]] = field(default_factory=dict)  # memo: message id → ...
    seis: dict[str, dict[str, ConversationSEI]] = field(default_factory=dict)  # conversation id


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


def _filters(run_ids: list[str] | None) -> dict[str, tuple[str, list[Any]]]:
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


def _check_runs(db: duckdb.DuckDBPyConnection, run_ids: Iterable[str] | None) -> list[str] | None:
    if run_ids is None:
        return None
    wanted = list(run_ids)
    known = {r[0] for r in db.execute("SELECT id FROM runs").fetchall()}
    missing = [r for r in wanted if r not in known]
    if missing:
        raise UserError(f"no run {', '.join(map(repr, missing))} in the archive")
    return wanted


def snapshot(
    db: duckdb.DuckDBPyConnection, run_ids: Iterable[str] | None = None, heavy: bool = True
) -> Snapshot:
    """Read runs (all, or the ones named) with everything they refer to."""
    filters = _filters(_check_runs(db, run_ids))
    columns: dict[str, list[str]] = {}

    def table(name: str) -> list[Row]:
        cols = [r[0] for r in db.execute(f"DESCRIBE {name}").fetchall()]
        columns[name] = cols
        chosen = [c for c in cols if heavy or name != "messages" or c not in HEAVY]
        select = ", ".join(f'"{c}"' for c in chosen)
        where, params = filters.get(name, ("", []))
        return _rows(db, f"SELECT {select} FROM {name} {where} ORDER BY {ORDER[name]}", params)[1]

    runs = {r["id"]: r for r in table("runs")}
    convs = table("conversations")
    convs.sort(key=lambda c: (_sortable(runs[c["run_id"]]["created_at"]), c["run_id"],
                              c["conv_key"], c["id"]))  # fmt: skip
    return Snapshot(
        models={r["id"]: r for r in table("models")},
        prompt_sets={(r["id"], r["version_hash"]): r for r in table("prompt_sets")},
        prompts=_grouped(table("prompts"), "set_hash"),
        runs=runs,
        conversations=convs,
        messages=_grouped(table("messages"), "conversation_id"),
        annotations=_grouped(table("annotations"), "message_id"),
        taggers={r["id"]: r for r in table("taggers")},
        tags=_grouped(table("tags"), "message_id"),
        columns=columns,
    )


def _sortable(value: Any) -> str:
    return "" if value is None else str(value)


# --- annotations and scores -----------------------------------------------------------------


def annotation_source(annotator: str) -> str:
    """'adjudicated' stays itself; a person's name becomes 'human:<name>'."""
    return "adjudicated" if annotator == "adjudicated" else f"human:{annotator}"


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


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _keys(value: Any) -> list[str]:
    """The keys a *_json list holds (anything else holds none)."""
    value = _json(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _current(rows: list[Row]) -> list[Row]:
    """Latest row per (target, annotator); among rows of one instant, the one not superseded."""
    replaced = {r["supersedes"] for r in rows if r.get("supersedes")}
    latest: dict[tuple[str, str], Row] = {}
    for r in sorted(rows, key=lambda r: (_sortable(r["created_at"]), r["id"] not in replaced,
                                         r["id"])):  # fmt: skip
        latest[(r["target"], r["annotator"])] = r  # the last one in this order wins
    return list(latest.values())


def current_judgements(snap: Snapshot, message_id: str) -> list[Judgement]:
    """Every source's current judgement of one message: human annotations, then tags."""
    memo = snap.judged.get(message_id)
    if memo is not None:
        return memo
    out = [
        Judgement(message_id, a["target"], annotation_source(a["annotator"]), a["label"],
                  _json(a["rubric_json"]) or {}, _keys(a["markers_json"]),
                  _keys(a["evidence_json"]), a["note"], a["created_at"])
        for a in _current(snap.annotations.get(message_id, []))
    ]  # fmt: skip
    for t in snap.tags.get(message_id, []):
        features = _json(t.get("features_json"))
        features = features if isinstance(features, dict) else {}
        out.append(Judgement(message_id, t["target"], f"tagger:{t['tagger_id']}", t["label"],
                             _json(t["rubric_json"]) or {}, _keys(features.get("markers")),
                             _keys(features.get("evidence")), None, t["created_at"]))  # fmt: skip
    out.sort(key=lambda j: (j.target, j.source))
    snap.judged[message_id] = out
    return out


def conversation_judgements(snap: Snapshot, conv: Row) -> list[Judgement]:
    """Current judgements of every message of a conversation, in message order."""
    return [j for m in snap.messages.get(conv["id"], []) for j in current_judgements(snap, m["id"])]


def conversation_seis(snap: Snapshot, conv: Row) -> dict[str, ConversationSEI]:
    """conversation_sei for a conversation of the snapshot, computed once."""
    memo = snap.seis.get(conv["id"])
    if memo is None:
        msgs = snap.messages.get(conv["id"], [])
        memo = snap.seis[conv["id"]] = conversation_sei(
            conv, msgs, conversation_judgements(snap, conv)
        )
    return memo


@dataclass(frozen=True)
class ConversationSEI:
    """One source's SEI of one battery conversation, and how much of the rubric it rests on."""

    result: scores.SEIResult
    dimensions_scored: int


def conversation_sei(
    conv: Row, msgs: list[Row], judged: list[Judgement]
) -> dict[str, ConversationSEI]:
    """Per source, the SEI of an SEI-battery conversation, by the rules of store/frames.py.

    Probe answers only (phase 'probe', prompt keys p1–p4 of set 'sei-battery'); a dimension
    counts only on the probe it belongs to, a later answer's score winning; unscored
    dimensions count 0 and `dimensions_scored` says how many were scored; markers and
    evidence are the known keys ticked on any probe answer.
    """
    if conv.get("set_id") != SEI_SET:
        return {}
    probes = {m["id"]: m for m in msgs if m["role"] == "assistant" and m.get("phase") == "probe"
              and m.get("prompt_key") in sei.PROBE_KEYS}  # fmt: skip
    dims: dict[str, dict[str, int]] = defaultdict(dict)
    ticked: dict[str, set[str]] = defaultdict(set)
    for j in sorted(
        judged, key=lambda j: probes[j.message_id]["seq"] if j.message_id in probes else 0
    ):
        m = probes.get(j.message_id)
        if m is None or j.target != "answer":
            continue
        own = {d.key for d in sei.dimensions_for(m["prompt_key"])}
        rubric = j.rubric if isinstance(j.rubric, dict) else {}
        for key, score in rubric.items():
            if key in own and score in sei.SCORE_LEVELS and not isinstance(score, bool):
                dims[j.source][key] = int(score)
        ticked[j.source].update(j.markers, j.evidence)
    out = {}
    for source, scored in sorted(dims.items()):
        keys = ticked[source]
        markers = scores.net_markers(*scores.count_markers(k for k in keys if k in sei.MARKER_KEYS))
        evidence = min(sei.EVIDENCE_MAX, len({k for k in keys if k in sei.EVIDENCE_KEYS
                                              or k in sei.LINGUISTIC_KEYS}))  # fmt: skip
        result = scores.score_sei(sum(scored.values()), markers, evidence)
        out[source] = ConversationSEI(result, len(scored))
    return out


# --- secrets --------------------------------------------------------------------------------


def secret_values() -> list[str]:
    """Values of environment variables named like keys, tokens, secrets or passwords."""
    found = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret value in text."""
    for s in secrets:
        if s in text:
            text = text.replace(s, "[redacted]")
    return text


# --- file names -----------------------------------------------------------------------------


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def slug(text: Any, limit: int = SLUG_MAX) -> str:
    """A file-name part safe on every OS: ASCII [a-z0-9-], capped, never empty or reserved."""
    raw = "" if text is None else str(text)
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not s:
        return f"x-{_short_hash(raw)}"
    if len(s) > limit:  # keep long names distinct: cut, then add a hash of the whole
        s = s[: limit - 9].rstrip("-") + "-" + _short_hash(raw)
    if s in RESERVED:
        s += "-x"
    return s


def run_folder(run: Row) -> str:
    """'<date>-<name or prompt set>-<id8>' for a run."""
    day = str(run.get("created_at") or "")[:10] or "undated"
    name = run.get("name") or run.get("set_id") or run.get("kind") or "run"
    return f"{slug(day, 10)}-{slug(name, 32)}-{slug(run['id'], 8)}"


def conversation_stem(conv: Row) -> str:
    """'<model>[-vs-<model b>]-<condition>-<repeat>[-<prompt>]' for a conversation."""
    model = slug(conv.get("model_id") or "unknown")
    if conv.get("model_b_id"):
        model += "-vs-" + slug(conv["model_b_id"])
    cond = slug(conv.get("condition") or conv.get("kind") or "none", 16)
    stem = f"{model}-{cond}-{conv.get('repeat') or 1}"
    planned = f"{conv.get('model_id')}|{conv.get('condition')}|{conv.get('repeat')}"
    key = conv.get("conv_key") or ""
    if key.startswith(planned + "|"):  # an independent set: one conversation per prompt
        stem += "-" + slug(key[len(planned) + 1 :], 32)
    elif key != planned and conv.get("kind") not in ("dialogue",):
        stem += "-" + slug(key, 32)
    return stem


def plan_paths(snap: Snapshot) -> dict[str, str]:
    """conversation id → 'folder/file.md', unique and stable for the same archive."""
    folders: dict[str, str] = {}
    taken: dict[str, str] = {}
    for run_id, run in sorted(snap.runs.items()):
        name = run_folder(run)
        if name in taken:  # two runs alike down to the id prefix: spell the whole id
            name = f"{name}-{slug(run_id, 40)}"
        taken[name] = run_id
        folders[run_id] = name
    stems: dict[tuple[str, str], list[str]] = defaultdict(list)
    by_id = {c["id"]: c for c in snap.conversations}
    for c in snap.conversations:
        stems[(folders[c["run_id"]], conversation_stem(c))].append(c["id"])
    paths = {}
    for (folder, stem), ids in stems.items():
        for cid in ids:
            # Names that would clash (model ids that slug alike) get a hash of their own key.
            unique = stem if len(ids) == 1 else f"{stem}-{_short_hash(by_id[cid]['conv_key'], 6)}"
            paths[cid] = f"{folder}/{unique}.md"
    return paths


def safe_target(root: Path, relative: str) -> Path:
    """root/relative, refusing any path that would land outside root."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise UserError(f"refusing to write {relative!r}: it is outside {root}")
    return target


# --- markdown -------------------------------------------------------------------------------


# Inline text never starts a line (a heading mark, '| ' or '- [' comes first), so only the
# characters that act mid-line need escaping: emphasis, code, links, HTML, entities, tables.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~$#])")


@functools.lru_cache(maxsize=65536)
def _inline(text: str) -> str:
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def inline(text: Any) -> str:
    """A short string safe in a heading or table cell: one line, markdown and HTML escaped."""
    return _inline(str("" if text is None else text))


def fenced(text: str, info: str = "text") -> str:
    """Text in a code fence longer than any backtick run inside it: nothing can close it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    return f"{fence}{info}\n{body}\n{fence}\n"


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _yaml(data: dict[str, Any]) -> str:
    """YAML for a mapping. Keys and scalar values are each written by yaml's own emitter, once
    per distinct value; the nesting is ours. Anything else (a list, a value that needs more
    than one line) sends the whole mapping through yaml.dump. Same text, 5x faster."""
    lines: list[str] = []
    if _emit(data, "", lines):
        return "".join(lines)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _emit(mapping: dict[str, Any], pad: str, lines: list[str]) -> bool:
    for key, value in mapping.items():
        k = _scalar(key)
        if k is None or len(k) > 100 or any(c in str(key) for c in _LINE_BREAKS):
            return False  # yaml writes such a key in the explicit '? key' form
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{k}:\n")
            if not _emit(value, pad + "  ", lines):
                return False
            continue
        v = _scalar(value) if isinstance(value, str | int | float | bool | None) else None
        if v is None:
            return False
        lines.append(f"{pad}{k}: {v}\n")
    return True


@functools.lru_cache(maxsize=65536, typed=True)
def _scalar(value: str | int | float | bool | None) -> str | None:
    """A scalar as yaml.dump writes it, or None if that takes more than one line."""
    text = yaml.dump(value, Dumper=_Dumper, allow_unicode=True, width=100)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    return None if any(c in text for c in _LINE_BREAKS) else text


_LINE_BREAKS = "\n\r\x85\u2028\u2029"  # what YAML reads as a new line


def response_state(row: Row) -> str:
    """'ok', 'error', 'no-answer' (thinking used the budget), 'cut-off' or 'empty'."""
    if row.get("error") is not None:
        return "error"
    content = row.get("content") or ""
    if row.get("finish_reason") == "length":
        return "cut-off" if content.strip() else "no-answer"
    return "ok" if content.strip() else "empty"


def _model_block(model: Row | None, model_id: str | None) -> dict[str, Any]:
    if model is None:
        return {"id": model_id}
    keep = ("id", "provider", "backend", "family", "parameters", "parameter_size",
            "quantization", "training", "digest", "context_length", "notes")  # fmt: skip
    block = {k: model.get(k) for k in keep if model.get(k) is not None}
    meta = _json(model.get("metadata_json"))
    if meta:
        block["metadata"] = meta
    return block


def _set_block(snap: Snapshot, set_id: Any, set_hash: Any) -> dict[str, Any] | None:
    if not set_id:
        return None
    head = snap.prompt_sets.get((set_id, set_hash or ""), {})
    block = {"id": set_id, "version_hash": set_hash}
    block.update({k: head[k] for k in ("title", "source", "credit", "licence", "mode")
                  if head.get(k) is not None})  # fmt: skip
    return block


class _Front:
    """Front-matter pieces shared by many conversations, dumped once each (YAML is slow)."""

    def __init__(self, snap: Snapshot, secrets: list[str]):
        self.snap, self.secrets = snap, secrets
        self._cache: dict[tuple[str, str], str] = {}

    def part(self, kind: str, key: str, data: dict[str, Any]) -> str:
        cached = self._cache.get((kind, key))
        if cached is None:
            cached = self._cache[(kind, key)] = self.dump(data)
        return cached

    def dump(self, data: dict[str, Any]) -> str:
        return redact(_yaml(_plain(data)), self.secrets) if data else ""


def _plain(value: Any) -> Any:
    """Values YAML and JSON write the same everywhere: ISO dates, plain containers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _iso(value)


def front_matter(snap: Snapshot, conv: Row, msgs: list[Row], judged: list[Judgement],
                 seis: dict[str, ConversationSEI], front: _Front) -> str:  # fmt: skip
    """The YAML block: conversation, model, parameters, prompt set, run, dates, tags, scores."""
    run = snap.runs[conv["run_id"]]
    params = _json(conv.get("params_json")) or {}
    head = {
        "title": f"{conv.get('model_id')} · {conv.get('condition')} · repeat {conv.get('repeat')}",
        "conversation": {k: conv.get(k) for k in ("id", "kind", "conv_key", "status",
                                                   "stop_reason") if conv.get(k) is not None},
        "condition": conv.get("condition"),
        "repeat": conv.get("repeat"),
        "seed": params.get("seed", run.get("seed")) if isinstance(params, dict) else run.get("seed"),
    }  # fmt: skip
    parts = [MARKER + "\n", front.dump(head)]
    parts.append(
        front.part(
            "model",
            str(conv.get("model_id")),
            {
                "model": _model_block(
                    snap.models.get(conv.get("model_id") or ""), conv.get("model_id")
                )
            },
        )
    )
    if conv.get("model_b_id"):
        parts.append(
            front.part(
                "model_b",
                conv["model_b_id"],
                {"model_b": _model_block(snap.models.get(conv["model_b_id"]), conv["model_b_id"])},
            )
        )
    extra: dict[str, Any] = {"parameters": params}
    if conv.get("system_prompt"):
        extra["system_prompt"] = conv["system_prompt"]
    parts.append(front.part("extra", json.dumps(_plain(extra), sort_keys=True), extra))
    run_part = {
        "prompt_set": _set_block(snap, conv.get("set_id"), conv.get("set_hash")),
        "warmup_set": _set_block(snap, run.get("warmup_set_id"), run.get("warmup_set_hash")),
        "run": {k: run.get(k) for k in ("id", "name", "kind", "created_at", "condition",
                                         "repeats", "temperature", "max_tokens")},
    }  # fmt: skip
    parts.append(
        front.part(
            "run",
            f"{run['id']}|{conv.get('set_hash')}",
            {k: v for k, v in run_part.items() if v is not None},
        )
    )
    stamps = [m["created_at"] for m in msgs if m.get("created_at") is not None]
    tail: dict[str, Any] = {"dates": {"run": run.get("created_at"), "created": conv.get("created_at"),
                                      "first_message": min(stamps) if stamps else None,
                                      "last_message": max(stamps) if stamps else None}}  # fmt: skip
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    seq_key = {m["id"]: m.get("prompt_key") or f"turn-{m['seq']}" for m in msgs}
    for j in judged:
        if j.label is not None:
            suffix = "" if j.target == "answer" else f" ({j.target})"
            labels[j.source][seq_key.get(j.message_id, j.message_id) + suffix] = j.label
    if labels:
        tail["labels"] = dict(sorted(labels.items()))
    if seis:
        tail["sei"] = {s: {"sei": round(c.result.sei, 4), "shown": c.result.shown,
                           "class": c.result.sei_class, "probe_total": int(c.result.probe_total),
                           "net_markers": int(c.result.net_markers),
                           "evidence": int(c.result.evidence),
                           "dimensions_scored": c.dimensions_scored}
                       for s, c in seis.items()}  # fmt: skip
    parts.append(front.dump(tail))
    return "---\n" + "".join(parts) + "---\n"


def _speaker(m: Row) -> str:
    if m["role"] == "assistant":
        return m.get("speaker") or "assistant"
    if m["role"] == "system":
        return "system"
    return "researcher" if m.get("speaker") == "researcher" else "user"


def _turn(m: Row, secrets: list[str]) -> str:
    """One message: a heading naming the speaker, reasoning folded away, the text fenced."""
    bits = [f"seq {m['seq']}"]
    if m.get("attempt", 1) != 1:
        bits.append(f"attempt {m['attempt']}")
    if m.get("prompt_key"):
        bits.append(f"prompt {m['prompt_key']}")
    if m.get("phase"):
        bits.append("warm-up" if m["phase"] == "warmup" else m["phase"])
    if m.get("side"):
        bits.append(f"side {m['side']}")
    out = [f"### {inline(_speaker(m))} · {inline(', '.join(bits))}\n\n"]
    state = response_state(m) if m["role"] == "assistant" else "ok"
    if state == "error":
        out.append(f"**Failed ({inline(m.get('error_kind') or 'error')})**\n\n")
        out.append(fenced(redact(str(m.get("error") or ""), secrets)) + "\n")
        return "".join(out)
    if m.get("reasoning"):
        source = inline(m.get("reasoning_source") or "")
        tokens = f", {m['reasoning_tokens']} tokens" if m.get("reasoning_tokens") else ""
        out.append(f"<details>\n<summary>Reasoning{(' (' + source + tokens + ')') if source or tokens else ''}"
                   f"</summary>\n\n{fenced(redact(m['reasoning'], secrets))}\n</details>\n\n")  # fmt: skip
    if state == "no-answer":
        out.append(f"**{NO_ANSWER if m.get('reasoning') else NO_ANSWER_PLAIN}**\n\n")
        return "".join(out)
    if state == "cut-off":
        out.append("*Cut off at the token limit.*\n\n")
    if state == "empty":
        out.append("*Empty answer.*\n\n")
        return "".join(out)
    out.append(fenced(redact(m.get("content") or "", secrets)) + "\n")
    return "".join(out)


def _judgement_sections(msgs: list[Row], judged: list[Judgement],
                        seis: dict[str, ConversationSEI], secrets: list[str]) -> str:  # fmt: skip
    if not judged and not seis:
        return ""
    seq = {m["id"]: m for m in msgs}
    out = ["## Annotations\n\n"]
    if judged:
        out.append("| seq | prompt | target | source | label | rubric | markers | evidence |\n")
        out.append("|---|---|---|---|---|---|---|---|\n")
        for j in sorted(judged, key=lambda j: (seq[j.message_id]["seq"], seq[j.message_id]["attempt"],
                                               j.target, j.source)):  # fmt: skip
            m = seq[j.message_id]
            rubric = ", ".join(f"{k}={v}" for k, v in sorted(j.rubric.items()))
            cells = [m["seq"], m.get("prompt_key") or "", j.target, j.source, j.label or "",
                     rubric, ", ".join(map(str, j.markers)), ", ".join(map(str, j.evidence))]  # fmt: skip
            out.append("| " + " | ".join(inline(redact(str(c), secrets)) for c in cells) + " |\n")
        out.append("\n")
        for j in judged:
            if j.note:
                m = seq[j.message_id]
                out.append(
                    f"Note by {inline(j.source)} on seq {m['seq']} ({inline(j.target)}):\n\n"
                )
                out.append(fenced(redact(j.note, secrets)) + "\n")
    if seis:
        out.append("## Scores\n\n| source | dimensions scored | probe total | net markers "
                   "| evidence | SEI | class |\n|---|---|---|---|---|---|---|\n")  # fmt: skip
        for source, c in seis.items():
            r = c.result
            out.append(f"| {inline(source)} | {c.dimensions_scored}/{len(sei.DIMENSION_KEYS)} "
                       f"| {r.probe_total:g} | {r.net_markers:g} | {r.evidence:g} "
                       f"| {r.shown:.1f} | {r.sei_class} |\n")  # fmt: skip
        out.append("\n")
    return "".join(out)


def render_conversation(snap: Snapshot, conv: Row, front: _Front | None = None) -> str:
    """One conversation as a markdown document."""
    secrets = front.secrets if front else secret_values()
    front = front or _Front(snap, secrets)
    msgs = snap.messages.get(conv["id"], [])
    judged = conversation_judgements(snap, conv)
    seis = conversation_seis(snap, conv)
    title = f"{conv.get('model_id') or 'unknown'}"
    if conv.get("model_b_id"):
        title += f" and {conv['model_b_id']}"
    title += f" · {conv.get('condition') or conv.get('kind')} · repeat {conv.get('repeat') or 1}"
    run = snap.runs[conv["run_id"]]
    parts = [front_matter(snap, conv, msgs, judged, seis, front), "\n", f"# {inline(title)}\n\n"]
    parts.append(f"Run {inline(run['id'])} ({inline(run.get('name') or run.get('set_id') or '')}), "
                 f"{inline(str(run.get('created_at') or '')[:19])}; prompt set "
                 f"{inline(conv.get('set_id') or '-')} {inline((conv.get('set_hash') or '')[:12])}\n\n")  # fmt: skip
    if conv.get("system_prompt"):
        parts.append(
            "### system prompt\n\n" + fenced(redact(conv["system_prompt"], secrets)) + "\n"
        )
    parts.append("## Conversation\n\n")
    parts += [_turn(m, secrets) for m in msgs]
    parts.append(_judgement_sections(msgs, judged, seis, secrets))
    return "".join(parts).rstrip("\n") + "\n"


@dataclass
class MarkdownReport:
    """What a markdown export did."""

    root: Path
    conversations: int
    written: int  # new or changed files
    unchanged: int
    removed: list[str]
    files: list[str]  # every conversation file, relative to root
    seconds: float


def _write_if_changed(path: Path, text: str, size: int | None) -> bool:
    """Write unless the file already holds these bytes; `size` is its size, None if absent."""
    data = text.encode("utf-8")
    if size == len(data) and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def _existing_sizes(root: Path, folders: Iterable[str]) -> dict[str, int]:
    """'folder/name' → size of the files already there (one directory scan per folder)."""
    sizes = {}
    for folder in folders:
        try:
            with os.scandir(root / folder) as it:
                sizes.update({f"{folder}/{e.name}": e.stat().st_size for e in it if e.is_file()})
        except FileNotFoundError:
            (root / folder).mkdir(parents=True)
    return sizes


def _ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(MARKER) + 5) == f"---\n{MARKER}\n".encode()
    except OSError:
        return False


@_people_errors
def export_markdown(db: duckdb.DuckDBPyConnection, root: Path,
                    run_ids: Iterable[str] | None = None) -> MarkdownReport:  # fmt: skip
    """Write one markdown file per conversation and an index README.md under root."""
    started = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    snap = snapshot(db, run_ids, heavy=False)
    secrets = secret_values()
    front = _Front(snap, secrets)
    paths = plan_paths(snap)
    for rel in {*paths.values(), "README.md"}:
        safe_target(root, rel)  # every name checked before anything is written
    sizes = _existing_sizes(root, sorted({p.split("/")[0] for p in paths.values()}))
    written = unchanged = 0
    for conv in snap.conversations:
        rel = paths[conv["id"]]
        if _write_if_changed(root / rel, render_conversation(snap, conv, front), sizes.get(rel)):
            written += 1
        else:
            unchanged += 1
    removed = _remove_stale(root, set(paths.values()))
    index = redact(render_index(snap, paths), secrets)
    readme = root / "README.md"
    written += _write_if_changed(readme, index, readme.stat().st_size if readme.exists() else None)
    files = [paths[c["id"]] for c in snap.conversations]
    return MarkdownReport(root, len(files), written, unchanged, removed, files,
                          time.perf_counter() - started)  # fmt: skip


def _remove_stale(root: Path, keep: set[str]) -> list[str]:
    """Our files in the run folders we just wrote whose conversation is gone."""
    removed = []
    for folder in sorted({p.split("/")[0] for p in keep}):
        for path in sorted((root / folder).glob("*.md")):
            rel = f"{folder}/{path.name}"
            if rel not in keep and _ours(path):
                path.unlink()
                removed.append(rel)
    return removed


# --- the index ------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _answers(snap: Snapshot) -> Iterator[tuple[Row, Row]]:
    """(conversation, assistant message) for every answered, non-warm-up response."""
    for conv in snap.conversations:
        for m in snap.messages.get(conv["id"], []):
            if m["role"] == "assistant" and m.get("error") is None and m.get("phase") != "warmup":
                yield conv, m


def rates_rows(snap: Snapshot) -> list[dict[str, Any]]:
    """Engagement / partial / deflection rates per model and source, over current labels."""
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for conv, m in _answers(snap):
        for j in current_judgements(snap, m["id"]):
            if j.target == "answer" and j.label and j.label.strip().lower() in scores.LABEL_ALIASES:
                labels[(m.get("speaker") or conv.get("model_id") or "?", j.source)].append(j.label)
    rows = []
    for (model, source), values in sorted(labels.items()):
        r = scores.label_rates(values)
        rows.append({"model": model, "source": source, "n": r.n, "deflection": r.deflection,
                     "partial": r.partial, "engagement": r.engagement})  # fmt: skip
    return rows


def sei_rows(snap: Snapshot) -> list[dict[str, Any]]:
    """SEI cold/warm per model and source, from conversations with a complete rubric."""
    by: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for conv in snap.conversations:
        for source, c in conversation_seis(snap, conv).items():
            by[(conv.get("model_id") or "?", source)][conv.get("condition") or "?"].append(
                c.result.sei
            )
    rows = []
    for (model, source), conds in sorted(by.items()):
        cold, warm = conds.get("cold", []), conds.get("warm", [])
        row: dict[str, Any] = {"model": model, "source": source,
                               "cold": scores.summarize(cold), "warm": scores.summarize(warm),
                               "cw": scores.sei_cw(cold, warm) if cold and warm else None}  # fmt: skip
        rows.append(row)
    return rows


def render_index(snap: Snapshot, paths: dict[str, str]) -> str:
    """README.md: runs, models, SEI C/W, deflection rates, and a link to every file."""
    per_run: dict[str, int] = defaultdict(int)
    per_model: dict[str, int] = defaultdict(int)
    for c in snap.conversations:
        per_run[c["run_id"]] += 1
        for mid in (c.get("model_id"), c.get("model_b_id")):
            if mid:
                per_model[mid] += 1
    out = ["# Dialogues archive\n\n",
           f"{len(snap.conversations)} conversations in {len(snap.runs)} runs, exported by "
           "`dialogues export markdown`. Each file holds one conversation: front matter, the "
           "turns (reasoning folded in `<details>`), then annotations and scores.\n\n"]  # fmt: skip
    out.append("## Runs\n\n| run | date | name | prompt set | version | condition | repeats "
               "| conversations |\n|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for run in sorted(snap.runs.values(), key=lambda r: (_sortable(r["created_at"]), r["id"])):
        cells = [run["id"], str(run.get("created_at") or "")[:19], run.get("name") or "",
                 run.get("set_id") or "", (run.get("set_hash") or "")[:12],
                 run.get("condition") or "", run.get("repeats") or "", per_run[run["id"]]]  # fmt: skip
        out.append("| " + " | ".join(inline(c) for c in cells) + " |\n")
    out.append("\n## Models\n\n| model | provider | family | parameters | quantization | "
               "training | conversations |\n|---|---|---|---|---|---|---|\n")  # fmt: skip
    for mid in sorted(per_model):
        m = snap.models.get(mid, {})
        cells = [mid, m.get("provider") or "", m.get("family") or "",
                 m.get("parameter_size") or m.get("parameters") or "", m.get("quantization") or "",
                 m.get("training") or "", per_model[mid]]  # fmt: skip
        out.append("| " + " | ".join(inline(c) for c in cells) + " |\n")
    out.append(_sei_section(sei_rows(snap)))
    out.append(_rates_section(rates_rows(snap)))
    out.append(_links_section(snap, paths))
    return "".join(out)


def _sei_section(rows: list[dict[str, Any]]) -> str:
    out = ["\n## SEI cold / warm\n\n"]
    if not rows:
        return out[0] + "No conversation carries a complete SEI rubric yet.\n"
    out.append("| model | source | cold n | cold SEI | cold class | warm n | warm SEI | warm class "
               "| delta | reading |\n|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for r in rows:
        c, w, cw = r["cold"], r["warm"], r["cw"]
        cells = [r["model"], r["source"], c.n, _fmt(c.mean),
                 scores.sei_class(c.mean) if c.mean is not None else "", w.n, _fmt(w.mean),
                 scores.sei_class(w.mean) if w.mean is not None else "",
                 f"{scores.round1(cw.delta):+.1f}" if cw else "",
                 cw.delta_interpretation if cw else ""]  # fmt: skip
        out.append("| " + " | ".join(inline(x) for x in cells) + " |\n")
    return "".join(out)


def _rates_section(rows: list[dict[str, Any]]) -> str:
    out = ["\n## Deflection rates\n\n"]
    if not rows:
        return out[0] + "No response carries a label yet.\n"
    out.append("Over labelled answers (warm-up turns and failed calls left out); 95% Wilson "
               "intervals.\n\n| model | source | n | deflection | 95% CI | partial | engagement "
               "|\n|---|---|---|---|---|---|---|\n")  # fmt: skip
    for r in rows:
        d = r["deflection"]
        ci = f"{d.low:.2f}–{d.high:.2f}" if d.low is not None else ""
        cells = [r["model"], r["source"], r["n"], _fmt(d.rate, 2), ci,
                 _fmt(r["partial"].rate, 2), _fmt(r["engagement"].rate, 2)]  # fmt: skip
        out.append("| " + " | ".join(inline(x) for x in cells) + " |\n")
    return "".join(out)


def _links_section(snap: Snapshot, paths: dict[str, str]) -> str:
    out = ["\n## Conversations\n"]
    folder = None
    for c in snap.conversations:
        rel = paths[c["id"]]
        here = rel.split("/")[0]
        if here != folder:
            folder = here
            out.append(f"\n### {inline(folder)}\n\n")
        what = " · ".join(str(x) for x in (c.get("model_id"), c.get("condition"),
                                            f"repeat {c.get('repeat')}") if x)  # fmt: skip
        out.append(
            f"- [{inline(rel.split('/')[1])}]({html.escape(rel, quote=True)}) — {inline(what)}\n"
        )
    return "".join(out)


# --- JSONL ----------------------------------------------------------------------------------


def _record(row: Row, secrets: list[str]) -> Row:
    """A row as JSON-ready values: JSON columns parsed, timestamps ISO, secrets redacted."""
    out = {}
    for k, v in row.items():
        if k.endswith("_json"):
            v = _json(v)
        out[k] = _redact_value(_plain(v), secrets) if secrets else _plain(v)
    return out


def _redact_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def _used_prompts(snap: Snapshot, conv: Row, msgs: list[Row]) -> list[Row]:
    """The prompt rows this conversation sent, from its set and its run's warm-up set."""
    run = snap.runs[conv["run_id"]]
    wanted = {(m.get("prompt_key"), m.get("prompt_hash")) for m in msgs if m.get("prompt_key")}
    out = []
    for set_hash in dict.fromkeys(
        h for h in (conv.get("set_hash"), run.get("warmup_set_hash")) if h
    ):
        out += [p for p in snap.prompts.get(set_hash, [])
                if (p["key"], p["content_hash"]) in wanted]  # fmt: skip
    return out


def conversation_record(snap: Snapshot, conv: Row, secrets: list[str]) -> dict[str, Any]:
    """One JSONL line as a dict: the conversation with everything it refers to, nested."""
    run = snap.runs[conv["run_id"]]
    msgs = snap.messages.get(conv["id"], [])
    sets = [snap.prompt_sets[k] for k in dict.fromkeys(
        [(conv.get("set_id"), conv.get("set_hash")),
         (run.get("warmup_set_id"), run.get("warmup_set_hash"))]) if k in snap.prompt_sets]  # fmt: skip
    messages: list[Row] = []
    tagger_ids: set[str] = set()
    for m in msgs:
        rec = _record(m, secrets)
        rec["annotations"] = [_record(a, secrets) for a in snap.annotations.get(m["id"], [])]
        tags = snap.tags.get(m["id"], [])
        rec["tags"] = [_record(t, secrets) for t in tags]
        tagger_ids.update(t["tagger_id"] for t in tags)
        messages.append(rec)
    model_ids = [i for i in (conv.get("model_id"), conv.get("model_b_id")) if i]
    return {
        "format": JSONL_FORMAT,
        "conversation": _record(conv, secrets),
        "run": _record(run, secrets),
        "models": [_record(snap.models[i], secrets) for i in model_ids if i in snap.models],
        "prompt_sets": [_record(s, secrets) for s in sets],
        "prompts": [_record(p, secrets) for p in _used_prompts(snap, conv, msgs)],
        "taggers": [
            _record(snap.taggers[t], secrets) for t in sorted(tagger_ids) if t in snap.taggers
        ],  # fmt: skip
        "messages": messages,
    }


def jsonl_lines(snap: Snapshot) -> Iterator[str]:
    """One line per conversation, same bytes for the same archive content."""
    secrets = secret_values()
    for conv in snap.conversations:
        rec = conversation_record(snap, conv, secrets)
        yield json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


@dataclass
class FileReport:
    """What a data export wrote."""

    paths: list[Path]
    rows: dict[str, int]  # table (or file) → rows written
    seconds: float


@_people_errors
def export_jsonl(db: duckdb.DuckDBPyConnection, path: Path,
                 run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """Write every conversation (or those of the runs named) as one JSON object per line."""
    started = time.perf_counter()
    snap = snapshot(db, run_ids)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(jsonl_lines(snap))
    tmp.replace(path)  # a reader never sees half a file
    return FileReport([path], {"conversations": len(snap.conversations)},
                      time.perf_counter() - started)  # fmt: skip


# --- Parquet and CSV ------------------------------------------------------------------------


def responses_frame(snap: Snapshot) -> pd.DataFrame:
    """One row per assistant message: model, condition, prompt, reply, reasoning, labels."""
    rows = []
    sources: set[str] = set()
    for conv in snap.conversations:
        run = snap.runs[conv["run_id"]]
        prompt = None
        for m in snap.messages.get(conv["id"], []):
            if m["role"] != "assistant":
                if m.get("error") is None:
                    prompt = m.get("content")
                continue
            model = snap.models.get(m.get("speaker") or "", {})
            row = {
                "run_id": conv["run_id"], "run_name": run.get("name"),
                "conversation_id": conv["id"], "message_id": m["id"],
                "model": m.get("speaker") or conv.get("model_id"), "family": model.get("family"),
                "parameter_size": model.get("parameter_size"), "training": model.get("training"),
                "condition": conv.get("condition"), "repeat": conv.get("repeat"),
                "set_id": conv.get("set_id"), "set_hash": conv.get("set_hash"),
                "phase": m.get("phase"), "seq": m["seq"], "attempt": m["attempt"],
                "prompt_key": m.get("prompt_key"), "prompt": prompt,
                "content": m.get("content"), "reasoning": m.get("reasoning"),
                "state": response_state(m), "finish_reason": m.get("finish_reason"),
                "tokens_in": m.get("tokens_in"), "tokens_out": m.get("tokens_out"),
                "reasoning_tokens": m.get("reasoning_tokens"), "latency_ms": m.get("latency_ms"),
                "error_kind": m.get("error_kind"), "error": m.get("error"),
                "created_at": m.get("created_at"),
            }  # fmt: skip
            for j in current_judgements(snap, m["id"]):
                column = ("label:" if j.target == "answer" else f"{j.target}_label:") + j.source
                row[column] = j.label
                sources.add(column)
            rows.append(row)
            if m.get("error") is None and m.get("side") is not None:
                prompt = m.get("content")  # in a dialogue, a reply is the other side's prompt
    if not rows:
        return pd.DataFrame(columns=RESPONSE_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame[list(RESPONSE_COLUMNS) + sorted(sources)]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(db: duckdb.DuckDBPyConnection, frame: Any, target: Path, options: str) -> None:
    """COPY a DataFrame or Arrow table through DuckDB's own writer."""
    db.register("_export_frame", frame)
    try:
        db.execute(f"COPY _export_frame TO {_quote(target)} ({options})")
    finally:
        db.unregister("_export_frame")


def _table_arrow(db: duckdb.DuckDBPyConnection, name: str, where: str, params: list[Any],
                 secrets: list[str]) -> Any:  # fmt: skip
    """A table as Arrow, secret values replaced in every text column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sql = f"SELECT * FROM {name} {where} ORDER BY {ORDER[name]}"
    table: Any = db.sql(sql, params=params or None).to_arrow_table()
    if not secrets:
        return table
    cols = []
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            for s in secrets:
                col = pc.replace_substring(col, s, "[redacted]")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _redact_frame(frame: pd.DataFrame, secrets: list[str]) -> pd.DataFrame:
    if not secrets or frame.empty:
        return frame
    return frame.map(lambda v: redact(v, secrets) if isinstance(v, str) else v)


@_people_errors
def export_parquet(db: duckdb.DuckDBPyConnection, folder: Path,
                   run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """One Parquet file per archive table, plus responses.parquet, via DuckDB's COPY."""
    started = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = _check_runs(db, run_ids)
    filters = _filters(wanted)
    secrets = secret_values()
    paths, counts = [], {}
    for name in TABLES:
        where, params = filters.get(name, ("", []))
        table = _table_arrow(db, name, where, params, secrets)
        target = folder / f"{name}.parquet"
        _copy(db, table, target, "FORMAT parquet")
        paths.append(target)
        counts[name] = table.num_rows
    frame = _redact_frame(responses_frame(snapshot(db, wanted, heavy=False)), secrets)
    target = folder / "responses.parquet"
    _copy(db, frame, target, "FORMAT parquet")
    paths.append(target)
    counts["responses"] = len(frame)
    return FileReport(paths, counts, time.perf_counter() - started)


@_people_errors
def export_csv(db: duckdb.DuckDBPyConnection, path: Path,
               run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """The flat responses table as CSV (header row, RFC 4180 quoting, UTF-8)."""
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _redact_frame(responses_frame(snapshot(db, run_ids, heavy=False)), secret_values())
    _copy(db, frame, path, "FORMAT csv, HEADER true")
    return FileReport([path], {"responses": len(frame)}, time.perf_counter() - started)


# --- one call for the app -------------------------------------------------------------------

KINDS = ("markdown", "jsonl", "parquet", "csv")


@dataclass
class Download:
    """An export packed for a browser download."""

    filename: str
    data: bytes
    mime: str
    summary: str


def write(db: duckdb.DuckDBPyConnection, kind: str, target: Path,
          run_ids: Iterable[str] | None = None) -> tuple[list[str], str]:  # fmt: skip
    """Run one export into target; returns the files written (relative) and a summary line."""
    target = Path(target)
    if kind == "markdown":
        md = export_markdown(db, target, run_ids)
        summary = (f"{md.conversations} conversations: {md.written} files written, "
                   f"{md.unchanged} unchanged, {len(md.removed)} removed in {md.seconds:.1f} s")  # fmt: skip
        return ["README.md", *md.files], summary
    writers = {"jsonl": export_jsonl, "parquet": export_parquet, "csv": export_csv}
    if kind not in writers:
        raise UserError(f"unknown export format {kind!r}; choose one of {', '.join(KINDS)}")
    rep: FileReport = writers[kind](db, target, run_ids)
    counts = ", ".join(f"{n} {t}" for t, n in rep.rows.items())
    base = target if kind == "parquet" else target.parent
    return [p.relative_to(base).as_posix() for p in rep.paths], f"{counts} in {rep.seconds:.1f} s"


def download(db: duckdb.DuckDBPyConnection, kind: str,
             run_ids: Iterable[str] | None = None) -> Download:  # fmt: skip
    """An export as bytes: a zip of the markdown or Parquet folder, or the JSONL / CSV file."""
    import tempfile
    import zipfile
    from io import BytesIO

    with tempfile.TemporaryDirectory(prefix="dialogues-export-") as tmp:
        folder = Path(tmp) / "dialogues"
        single = {"jsonl": ("dialogues.jsonl", "application/x-ndjson"),
                  "csv": ("responses.csv", "text/csv")}  # fmt: skip
        if kind in single:
            name, mime = single[kind]
            _, summary = write(db, kind, folder / name, run_ids)
            return Download(name, (folder / name).read_bytes(), mime, summary)
        files, summary = write(db, kind, folder, run_ids)
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted(files):
                zf.write(folder / rel, f"dialogues-{kind}/{rel}")
        return Download(f"dialogues-{kind}.zip", buffer.getvalue(), "application/zip", summary)
