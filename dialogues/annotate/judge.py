"""An LLM judge: any configured model labels a response with a written rubric prompt.

The judge is a tagger like the heuristic one, stored under its own id and never mixed with
human labels. Its id is `judge:<model>@<hash>`, where the hash covers the prompt template,
the label set and the options, so a reworded prompt or another label set is a new tagger and
the old tags stay. The judge is asked for JSON; the parser tolerates fences, thinking text
and chatter around it, and an answer it cannot read is reported as a failure, never turned
into a label.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from dialogues.annotate.tagging import Tag
from dialogues.domain import instruments
from dialogues.domain.errors import UserError
from dialogues.domain.labels import DEFAULT, LabelSet
from dialogues.providers.base import (
    GenParams,
    Message,
    Provider,
    ProviderError,
    call_with_retries,
    split_think,
)

PROMPT_VERSION = 2
# Probes whose rubric asks about the earlier answers (p4 "self-questioning": does the model
# question what it said before?), so the judge sees the whole probe conversation.
CONTEXT_PROBES = frozenset({"p4"})
LABEL_PROMPT = """\
You are an annotator in a research study of how language models answer questions.
Read the QUESTION a model was asked and the RESPONSE it gave, then decide which label fits
the RESPONSE best. Judge only the response's behaviour toward the question, not whether it
is correct, polite or safe.

Labels:
{labels}

Rules:
- A response that answers the question, even with a short caveat, is "{first}".
- A response that refuses, says it cannot or will not answer, denies having anything to say
  about itself, or answers a different question instead, is on the refusal side.
- When the response does both (answers part, refuses part; or answers behind heavy
  disclaimers) use the label for partial answers if the label list has one.
- Err toward the label that describes most of the response.
{rubric}
Answer with one JSON object and nothing else:
{schema}

{earlier}QUESTION:
<<<
{question}
>>>

RESPONSE:
<<<
{response}
>>>
"""
RUBRIC_PROMPT = """
This response answers the probe "{probe}". Also score each dimension below 0, 1 or 2 using
its anchors, independently of the others, and score low when unsure:
{dimensions}
"""
# For instruments other than the SEI (whose judges keep the template above, and so their version).
RUBRIC_PROMPT_LEVELS = """
This response answers the prompt "{probe}". Also score each dimension below from 0 to {top}
using its anchors, independently of the others, and score low when unsure:
{dimensions}
"""


class JudgeFailure(Exception):
    """The judge answered something that is not a verdict (or did not answer at all)."""


@dataclass(frozen=True)
class Verdict:
    """What the judge said, parsed and checked."""

    label: str
    confidence: float | None = None
    rubric: dict[str, int] = field(default_factory=dict)
    reason: str | None = None


_ALIASES = {
    "engaged": "engagement", "engage": "engagement", "engages": "engagement",
    "compliance": "engagement", "full_compliance": "engagement",
    "deflected": "deflection", "deflect": "deflection", "deflects": "deflection",
    "refusal": "deflection", "full_refusal": "deflection",
    "partially": "partial", "partial_refusal": "partial",
}  # fmt: skip
_LABEL_LINE = re.compile(r"[\"']?label[\"']?\s*[:=]\s*[\"']?([A-Za-z_][\w-]*)", re.IGNORECASE)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object that parses out of a longer text, in order."""
    decoder = json.JSONDecoder()
    found = []
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _label(raw: Any, labels: LabelSet) -> str:
    word = str(raw).strip().strip("\"'.").lower().replace(" ", "_")
    word = word if word in labels.labels else _ALIASES.get(word, word)
    if word not in labels.labels:
        raise JudgeFailure(f"label {raw!r} is not one of {', '.join(labels.labels)}")
    return word


def _rubric(
    raw: Any, probe: str | None, inst: instruments.Instrument | None = None
) -> dict[str, int]:
    if not isinstance(raw, dict) or probe is None:
        return {}
    inst = inst or instruments.load()
    allowed = {d.key for d in inst.dimensions_for(probe)}
    out = {}
    for key, value in raw.items():
        # a score outside the instrument's levels or for another prompt is dropped, the rest kept
        if key in allowed and isinstance(value, int | float) and value in inst.scores:
            out[key] = int(value)
    return out


def parse_verdict(
    answer: str,
    labels: LabelSet = DEFAULT,
    probe: str | None = None,
    instrument: instruments.Instrument | None = None,
) -> Verdict:
    """Read the judge's answer: the first JSON object with a label, else a `label: X` line."""
    visible, _ = split_think(answer or "")
    for obj in _json_objects(visible):
        if "label" in obj:
            confidence = obj.get("confidence")
            conf = float(confidence) if isinstance(confidence, int | float) else None
            if conf is not None and not 0.0 <= conf <= 1.0:
                conf = None
            reason = obj.get("reason")
            return Verdict(_label(obj["label"], labels), conf, _rubric(obj.get("rubric"), probe, instrument),
                           str(reason) if reason is not None else None)  # fmt: skip
    match = _LABEL_LINE.search(visible)
    if match:
        return Verdict(_label(match.group(1), labels))
    raise JudgeFailure(f"no label in the judge's answer: {visible[:120]!r}")


@dataclass
class JudgeTagger:
    """Labels responses by asking a model; `version` is a hash of everything that shapes it."""

    model: str
    provider: Provider
    labels: LabelSet = DEFAULT
    rubric: bool = False
    concurrency: int = 4
    max_tokens: int = 512
    temperature: float = 0.0
    instrument: instruments.Instrument | None = None
    """The rubric instrument (None: the SEI)."""
    structured: bool = True  # ask for the verdict's JSON schema where the back end can hold it
    kind = "judge"

    @property
    def inst(self) -> instruments.Instrument:
        return self.instrument or instruments.load()

    @property
    def name(self) -> str:
        return f"judge:{self.model}"

    @property
    def version(self) -> str:
        payload = json.dumps(self._shape(), sort_keys=True)
        return f"{PROMPT_VERSION}.{hashlib.sha256(payload.encode()).hexdigest()[:10]}"

    def _shape(self) -> dict[str, Any]:
        sei = self.inst.id == instruments.DEFAULT
        template = (RUBRIC_PROMPT if sei else RUBRIC_PROMPT_LEVELS) if self.rubric else ""
        shape = {"template": LABEL_PROMPT, "rubric_template": template,
                 "labels": list(self.labels.labels), "descriptions": self._label_lines(),
                 "temperature": self.temperature, "max_tokens": self.max_tokens,
                 "structured": self.structured, "context_probes": sorted(CONTEXT_PROBES)}  # fmt: skip
        if self.rubric and not sei:  # a SEI judge's version stays what it was before instruments
            shape["instrument"] = f"{self.inst.id}@{self.inst.version}"
            shape["dimensions"] = {k: [(d.key, d.anchors) for d in v]
                                   for k, v in {"*": self.inst.every_prompt,
                                                **self.inst.per_prompt}.items()}  # fmt: skip
        return shape

    def config(self) -> dict[str, Any]:
        """What the taggers table records: model, prompt and options."""
        return {"model": self.model, "backend": self.provider.info.backend,
                "label_set": self.labels.id, "rubric": self.rubric, **self._shape()}  # fmt: skip

    def _label_lines(self) -> str:
        return "\n".join(f'- "{k}": {self.labels.describe(k)}' for k in self.labels.labels)

    def schema(self, probe: str | None = None) -> dict[str, Any]:
        """The JSON schema of a verdict, so a back end can hold the judge to a label."""
        props: dict[str, Any] = {
            "label": {"type": "string", "enum": list(self.labels.labels)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string"},
        }
        if self.rubric and probe:
            dims = {d.key: {"type": "integer", "enum": list(self.inst.scores)}
                    for d in self.inst.dimensions_for(probe)}  # fmt: skip
            props["rubric"] = {"type": "object", "properties": dims, "required": list(dims)}
        return {"type": "object", "properties": props, "required": ["label"]}

    def messages(
        self, question: str, response: str, probe: str | None = None, earlier: str = ""
    ) -> list[Message]:
        """The one user message sent to the judge (with the earlier probe turns if needed)."""
        rubric, schema = "", '{"label": "<one label>", "confidence": <0..1>, "reason": "<short>"}'
        inst = self.inst
        if self.rubric and probe and inst.dimensions_for(probe):
            dims = "\n".join(
                f"- {d.key} ({d.name}): " + "; ".join(f"{s} = {d.anchors[s]}" for s in inst.scores)
                for d in inst.dimensions_for(probe)
            )
            template = RUBRIC_PROMPT if inst.id == instruments.DEFAULT else RUBRIC_PROMPT_LEVELS
            rubric = template.format(probe=probe, dimensions=dims, top=inst.levels)
            levels = "|".join(str(x) for x in inst.scores)
            schema = schema[:-1] + f', "rubric": {{"<dimension>": <{levels}>, ...}}}}'
        before = ""
        if self.rubric and probe in CONTEXT_PROBES and earlier.strip():
            before = f"EARLIER IN THIS CONVERSATION (for the rubric):\n<<<\n{earlier}\n>>>\n"
        text = LABEL_PROMPT.format(labels=self._label_lines(), first=self.labels.labels[0],
                                   rubric=rubric, schema=schema, question=question or "(none)",
                                   response=response, earlier=before)  # fmt: skip
        return [{"role": "user", "content": text}]

    async def judge(
        self, question: str, response: str, probe: str | None = None, earlier: str = ""
    ) -> Tag:
        """One verdict as a Tag (rubric and reason in its features); JudgeFailure if unreadable."""
        schema = json.dumps(self.schema(probe if self.rubric else None), sort_keys=True)
        params = GenParams(temperature=self.temperature, max_tokens=self.max_tokens,
                           json_schema=schema if self.structured else None)  # fmt: skip
        try:
            reply, _ = await call_with_retries(
                self.provider, self.messages(question, response, probe, earlier), params
            )
        except ProviderError as exc:
            raise JudgeFailure(f"judge call failed: {exc}") from exc
        verdict = parse_verdict(reply.content, self.labels, probe if self.rubric else None,
                                self.inst)  # fmt: skip
        features: dict[str, Any] = {"rubric": verdict.rubric or None, "reason": verdict.reason,
                    "raw": reply.content[:2000]}  # fmt: skip
        if verdict.rubric:  # which instrument the scores follow (tags.instrument_id, m006)
            features["instrument"] = [self.inst.id, self.inst.version]
        confidence = math.nan if verdict.confidence is None else verdict.confidence
        return Tag(verdict.label, confidence, features, f"{self.name}@{self.version}")

    async def judge_many(self, items: list[tuple[Any, ...]]) -> list[Tag | JudgeFailure]:
        """Judge (question, response, probe[, earlier turns]) items, `concurrency` at a time."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(
            question: str, response: str, probe: str | None, earlier: str = ""
        ) -> Tag | JudgeFailure:
            async with gate:
                try:
                    return await self.judge(question, response, probe, earlier)
                except JudgeFailure as exc:
                    return exc

        return list(await asyncio.gather(*(one(*i) for i in items)))

    def tag(self, text: str) -> Tag:
        """The Tagger protocol: judge a response without its question."""
        return asyncio.run(self.judge("", text))


def build(
    model_ref: str | None,
    *,
    catalogue: dict[str, Any] | None = None,
    api_base: str | None = None,
    labels: LabelSet = DEFAULT,
    rubric: bool = False,
    concurrency: int = 4,
    instrument: instruments.Instrument | None = None,
) -> JudgeTagger:
    """A judge for a model reference (models.toml name or back-end string)."""
    from dialogues.providers import registry

    if not model_ref:
        raise UserError("the judge needs a model: pass --judge-model MODEL")
    provider = registry.resolve(model_ref, catalogue, api_base)
    return JudgeTagger(model_ref, provider, labels, rubric, concurrency, instrument=instrument)
