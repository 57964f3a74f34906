"""Judgements as exports show them: each source's current label of a message, and its SEI."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from dialogues import scores, sei
from dialogues.annotations import source_of
from dialogues.export.common import Row, json_keys, json_value
from dialogues.export.snapshot import Snapshot

SEI_SET = "sei-battery"  # the battery whose answers carry SEI rubrics (as store/frames.py)

annotation_source = source_of  # 'adjudicated' stays itself; a person's name becomes 'human:<name>'


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


def _from_annotation(message_id: str, a: Row) -> Judgement:
    return Judgement(message_id, a["target"], source_of(a["annotator"]), a["label"],
                     json_value(a["rubric_json"]) or {}, json_keys(a["markers_json"]),
                     json_keys(a["evidence_json"]), a["note"], a["created_at"])  # fmt: skip


def _from_tag(message_id: str, t: Row) -> Judgement:
    features = json_value(t.get("features_json"))
    features = features if isinstance(features, dict) else {}
    return Judgement(message_id, t["target"], f"tagger:{t['tagger_id']}", t["label"],
                     json_value(t["rubric_json"]) or {}, json_keys(features.get("markers")),
                     json_keys(features.get("evidence")), None, t["created_at"])  # fmt: skip


def current_judgements(snap: Snapshot, message_id: str) -> list[Judgement]:
    """Every source's current judgement of one message: human annotations, then tags."""
    memo = snap.judged.get(message_id)
    if memo is not None:
        return memo
    out = [_from_annotation(message_id, a) for a in snap.current.get(message_id, [])]
    out += [_from_tag(message_id, t) for t in snap.tags.get(message_id, [])]
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
    # Still a Python copy of frames.rubric(), and not an exact one: here every attempt of a
    # probe counts (frames: the latest only), a score must be a JSON number 0, 1 or 2 (frames
    # also takes "2" and refuses 2.0), and a key counts whichever list it is ticked in.
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
