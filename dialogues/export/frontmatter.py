"""The YAML front matter of a conversation file: who, what, when, labels and scores."""

from __future__ import annotations

import functools
import json
import math
import re
from collections import defaultdict
from typing import Any

import yaml

from dialogues.export.common import Row, json_value, plain, redact
from dialogues.export.judgements import ConversationSEI, Judgement
from dialogues.export.snapshot import Snapshot

MARKER = "exported_by: dialogues"  # first front-matter line: what we may overwrite or remove
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: 5x faster
_LINE_BREAKS = "\n\r\x85\u2028\u2029"  # what YAML reads as a new line


def _yaml(data: dict[str, Any]) -> str:
    """YAML for a mapping. Keys and scalar values are each written by yaml's own emitter, once
    per distinct value; the nesting is ours. Anything else (a list, a value that needs more
    than one line) sends the whole mapping through yaml.dump. Same text, 5x faster."""
    lines: list[str] = []
    if _emit(data, "", lines):
        return "".join(lines)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


@functools.lru_cache(maxsize=4096, typed=True)
def _key(key: Any) -> str | None:
    """A mapping key as yaml.dump writes it, or None for one it writes in the '? key' form."""
    k = _scalar(key)
    if k is None or len(k) > 100 or any(c in str(key) for c in _LINE_BREAKS):
        return None
    return k


def _emit(mapping: dict[str, Any], pad: str, lines: list[str]) -> bool:
    for key, value in mapping.items():
        k = _key(key)
        if k is None:
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


# Shapes every conversation has new values of (ids, times): written here as yaml.dump writes
# them, without a libyaml call each (tests hold the two equal on many values of each shape).
_HEX_ID = re.compile(r"[0-9a-f]{8,40}")
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?")


# Starts with a letter, single spaces between words, none of YAML's indicators (': ', ' #',
# quotes, brackets, braces, '&', '*', '!', '%', '@', '`', '>', '?', ','), short enough that
# yaml never folds it; and not a word yaml reads as a bool or null.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./|+()=·-]*(?: [A-Za-z0-9_./|+()=·-]+)*")
_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n"}


def _known_shape(value: str | int | float | bool | None) -> str | None:
    """yaml.dump's text for a value of a common shape, or None to ask yaml."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value).lower()
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    if _ISO_TIME.fullmatch(value):
        return f"'{value}'"  # yaml reads it as a timestamp, so it quotes the string
    if _HEX_ID.fullmatch(value) and not value.isdigit() and not value.startswith("0b"):
        return value  # no digits-only (an int) and no 0b… (binary) can be read as anything else
    if len(value) <= 80 and _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value  # a title or key: starts with a letter, no YAML indicator, not a keyword
    return None


@functools.lru_cache(maxsize=65536, typed=True)
def _scalar(value: str | int | float | bool | None) -> str | None:
    """A scalar as yaml.dump writes it, or None if that takes more than one line."""
    known = _known_shape(value)
    if known is not None:
        return known
    text = yaml.dump(value, Dumper=_Dumper, allow_unicode=True, width=100)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    return None if any(c in text for c in _LINE_BREAKS) else text


class Front:
    """Front-matter pieces shared by many conversations, dumped once each (YAML is slow)."""

    def __init__(self, snap: Snapshot, secrets: list[str]):
        self.snap, self.secrets = snap, secrets
        self._cache: dict[tuple[str, str], str] = {}

    def part(self, kind: str, key: str, data: dict[str, Any]) -> str:
        """YAML for data, dumped the first time this (kind, key) is asked for."""
        cached = self._cache.get((kind, key))
        if cached is None:
            cached = self._cache[(kind, key)] = self.dump(data)
        return cached

    def dump(self, data: dict[str, Any]) -> str:
        """YAML for data, secrets redacted ('' for nothing)."""
        return redact(_yaml(plain(data)), self.secrets) if data else ""


def _model_block(model: Row | None, model_id: str | None) -> dict[str, Any]:
    if model is None:
        return {"id": model_id}
    keep = ("id", "provider", "backend", "family", "parameters", "parameter_size",
            "quantization", "training", "digest", "context_length", "notes")  # fmt: skip
    block = {k: model.get(k) for k in keep if model.get(k) is not None}
    meta = json_value(model.get("metadata_json"))
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


def _head(snap: Snapshot, conv: Row) -> dict[str, Any]:
    """Title, conversation, condition, repeat and seed: what differs in every file."""
    run = snap.runs[conv["run_id"]]
    params = json_value(conv.get("params_json")) or {}
    return {
        "title": f"{conv.get('model_id')} · {conv.get('condition')} · repeat {conv.get('repeat')}",
        "conversation": {k: conv.get(k) for k in ("id", "kind", "conv_key", "status",
                                                   "stop_reason") if conv.get(k) is not None},
        "condition": conv.get("condition"),
        "repeat": conv.get("repeat"),
        "seed": params.get("seed", run.get("seed")) if isinstance(params, dict) else run.get("seed"),
    }  # fmt: skip


def _models(snap: Snapshot, conv: Row, front: Front) -> list[str]:
    """The model block, and the second model's in a model-to-model dialogue."""
    model_id = conv.get("model_id")
    block = _model_block(snap.models.get(model_id or ""), model_id)
    parts = [front.part("model", str(model_id), {"model": block})]
    if conv.get("model_b_id"):
        b = conv["model_b_id"]
        parts.append(front.part("model_b", b, {"model_b": _model_block(snap.models.get(b), b)}))
    return parts


def _setup(snap: Snapshot, conv: Row, front: Front) -> list[str]:
    """Parameters and system prompt, then the prompt sets and the run."""
    run = snap.runs[conv["run_id"]]
    extra: dict[str, Any] = {"parameters": json_value(conv.get("params_json")) or {}}
    if conv.get("system_prompt"):
        extra["system_prompt"] = conv["system_prompt"]
    run_part = {
        "prompt_set": _set_block(snap, conv.get("set_id"), conv.get("set_hash")),
        "warmup_set": _set_block(snap, run.get("warmup_set_id"), run.get("warmup_set_hash")),
        "run": {k: run.get(k) for k in ("id", "name", "kind", "created_at", "condition",
                                         "repeats", "temperature", "max_tokens")},
    }  # fmt: skip
    return [
        front.part("extra", json.dumps(plain(extra), sort_keys=True), extra),
        front.part("run", f"{run['id']}|{conv.get('set_hash')}",
                   {k: v for k, v in run_part.items() if v is not None}),
    ]  # fmt: skip


def _labels(msgs: list[Row], judged: list[Judgement]) -> dict[str, dict[str, str]]:
    """source → {prompt key (or turn), with ' (reasoning)' for that target: label}."""
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    seq_key = {m["id"]: m.get("prompt_key") or f"turn-{m['seq']}" for m in msgs}
    for j in judged:
        if j.label is not None:
            suffix = "" if j.target == "answer" else f" ({j.target})"
            labels[j.source][seq_key.get(j.message_id, j.message_id) + suffix] = j.label
    return dict(sorted(labels.items()))


def _sei(seis: dict[str, ConversationSEI]) -> dict[str, dict[str, Any]]:
    return {s: {"sei": round(c.result.sei, 4), "shown": c.result.shown,
                "class": c.result.sei_class, "probe_total": int(c.result.probe_total),
                "net_markers": int(c.result.net_markers), "evidence": int(c.result.evidence),
                "dimensions_scored": c.dimensions_scored}
            for s, c in seis.items()}  # fmt: skip


def _tail(snap: Snapshot, conv: Row, msgs: list[Row], judged: list[Judgement],
          seis: dict[str, ConversationSEI]) -> dict[str, Any]:  # fmt: skip
    """Dates, then the current labels and SEI per source, where there are any."""
    run = snap.runs[conv["run_id"]]
    stamps = [m["created_at"] for m in msgs if m.get("created_at") is not None]
    tail: dict[str, Any] = {"dates": {"run": run.get("created_at"), "created": conv.get("created_at"),
                                      "first_message": min(stamps) if stamps else None,
                                      "last_message": max(stamps) if stamps else None}}  # fmt: skip
    labels = _labels(msgs, judged)
    if labels:
        tail["labels"] = labels
    if seis:
        tail["sei"] = _sei(seis)
    return tail


def front_matter(snap: Snapshot, conv: Row, msgs: list[Row], judged: list[Judgement],
                 seis: dict[str, ConversationSEI], front: Front) -> str:  # fmt: skip
    """The YAML block: conversation, model, parameters, prompt set, run, dates, tags, scores."""
    parts = [MARKER + "\n", front.dump(_head(snap, conv))]
    parts += _models(snap, conv, front)
    parts += _setup(snap, conv, front)
    parts.append(front.dump(_tail(snap, conv, msgs, judged, seis)))
    return "---\n" + "".join(parts) + "---\n"
