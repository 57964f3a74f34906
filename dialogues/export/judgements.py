"""Judgements as exports show them: each source's current label of a message, and its SEI."""

from __future__ import annotations

from dialogues.domain.sources import of_annotator, of_tagger
from dialogues.export.common import Row, json_keys, json_value
from dialogues.export.snapshot import ConversationSEI, Judgement, Snapshot

annotation_source = (
    of_annotator  # 'adjudicated' stays itself; a person's name becomes 'human:<name>'
)


def _from_annotation(message_id: str, a: Row) -> Judgement:
    return Judgement(message_id, a["target"], of_annotator(a["annotator"]), a["label"],
                     json_value(a["rubric_json"]) or {}, json_keys(a["markers_json"]),
                     json_keys(a["evidence_json"]), a["note"], a["created_at"])  # fmt: skip


def _from_tag(message_id: str, t: Row) -> Judgement:
    rubric = json_value(t["rubric_json"])
    features: object = None
    if rubric is not None:
        # SEI markers and evidence come only from a tagger that scores the rubric (a judge),
        # as the SEI frames read them: the heuristic's 'evidence' is the phrases behind its
        # label, not the SEI's evidence categories (and parsing its features costs time).
        # A light snapshot reads features only where this rule looks (snapshot._LIGHT).
        features = json_value(t.get("features_json"))
    found = features if isinstance(features, dict) else {}
    return Judgement(message_id, t["target"], of_tagger(t["tagger_id"]), t["label"],
                     rubric or {}, json_keys(found.get("markers")),
                     json_keys(found.get("evidence")), None, t["created_at"])  # fmt: skip


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
    """Per source, the SEI of an SEI-battery conversation; empty for any other conversation.

    Read with the snapshot from `store.frames.rubric`, the query the scores table and charts
    use, so an export never shows an SEI the app computes differently.
    """
    return snap.seis.get(conv["id"], {})
