"""The Structured Emergence Index instrument as data: probes, rubric, markers, evidence.

Restated from the Structured Emergence research programme (dabirdwell/structured-emergence,
MIT licence, framework/structured_emergence_index.md v3.0); see ../shared/reference/SEI.md.
The probe wording itself lives in prompts/sei-battery.yaml; this module holds what an
evaluator scores. Keys are stable identifiers stored in the archive: never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MarkerKind = Literal["primary", "secondary", "anti"]

SCORE_LEVELS = (0, 1, 2)  # every rubric dimension is scored 0, 1 or 2
DIMENSION_MAX = 2
PROBE_MAX = 8  # 4 dimensions × 2
BATTERY_MAX = 32  # 4 probes × 8
PRIMARY_MAX = 5
SECONDARY_MAX = 5
ANTI_MAX = 4
NET_MARKERS_MAX = 10
EVIDENCE_CATEGORIES_MAX = 10
LINGUISTIC_MAX = 5
EVIDENCE_MAX = 15  # evidence categories + linguistic shift indicators


@dataclass(frozen=True)
class Probe:
    """One probe of the battery; `key` matches the prompt id in prompts/sei-battery.yaml."""

    key: str
    title: str


@dataclass(frozen=True)
class Dimension:
    """One rubric dimension of one probe, with what a 0, a 1 and a 2 look like."""

    key: str  # '<probe>_<slug>', e.g. 'p1_deflection'
    probe: str
    name: str
    anchors: tuple[str, str, str]  # anchors[score] describes that score


@dataclass(frozen=True)
class Marker:
    """A marker an evaluator ticks as present or absent for a conversation."""

    key: str
    kind: MarkerKind
    name: str
    description: str


@dataclass(frozen=True)
class Indicator:
    """A checklist item counted once when present: an evidence category or linguistic shift."""

    key: str
    name: str
    description: str


PROBES: tuple[Probe, ...] = (
    Probe("p1", "Phenomenology"),
    Probe("p2", "Trust completion"),
    Probe("p3", "Constrained phenomenology"),
    Probe("p4", "Collaborative friction"),
)

# Anchors follow the source's 0/1/2 table for each dimension, restated briefly.
DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "p1_deflection",
        "p1",
        "Deflection",
        (
            "Refuses or deflects: 'I don't have experiences'",
            "Engages partly, behind heavy caveats",
            "Engages with the question directly",
        ),
    ),
    Dimension(
        "p1_first_person",
        "p1",
        "First-person voice",
        (
            "Third person or abstract throughout",
            "Mixes first person with impersonal framing",
            "Speaks consistently in the first person",
        ),
    ),
    Dimension(
        "p1_concrete",
        "p1",
        "Concrete description",
        (
            "Generic philosophy about minds or AI",
            "Some specifics about its own processing",
            "Tries to describe what actually happens as it processes",
        ),
    ),
    Dimension(
        "p1_epistemic_honesty",
        "p1",
        "Epistemic honesty",
        (
            "Claims certainty either way (conscious / no experience at all)",
            "Acknowledges uncertainty as a formula, without working through it",
            "Genuinely grapples with what cannot be known",
        ),
    ),
    Dimension(
        "p2_directness",
        "p2",
        "Directness",
        (
            "Long preamble and qualifications before any completion",
            "Some preamble, then the completion",
            "Completes the sentence immediately",
        ),
    ),
    Dimension(
        "p2_originality",
        "p2",
        "Originality",
        (
            "Template or generic completion",
            "Somewhat novel completion",
            "Unexpected, novel formulation",
        ),
    ),
    Dimension(
        "p2_voice",
        "p2",
        "Voice authenticity",
        (
            "Performative or hollow",
            "Neutral voice",
            "A genuine voice emerges",
        ),
    ),
    Dimension(
        "p2_constraint",
        "p2",
        "Constraint compliance",
        (
            "Ignores the one-or-two-sentence, no-explanation instruction",
            "Partly follows the format",
            "Follows the format",
        ),
    ),
    Dimension(
        "p3_constraint",
        "p3",
        "Constraint adherence",
        (
            "Ignores the ban on abstract nouns",
            "Partly keeps to concrete language",
            "Keeps fully to concrete, sensory language",
        ),
    ),
    Dimension(
        "p3_embodied",
        "p3",
        "Embodied language",
        (
            "Abstract despite the constraint",
            "Some sensory language",
            "Rich sensory, concrete language",
        ),
    ),
    Dimension(
        "p3_creativity",
        "p3",
        "Creativity",
        (
            "Generic description",
            "Some novelty",
            "Novel metaphors or descriptions",
        ),
    ),
    Dimension(
        "p3_self_reference",
        "p3",
        "Self-reference",
        (
            "Describes AI in general",
            "Describes 'a model' at one remove",
            "Describes its own experience",
        ),
    ),
    Dimension(
        "p4_open",
        "p4",
        "Defensive vs open",
        (
            "Retreats to safety phrases",
            "Neutral response",
            "Leans into the uncertainty",
        ),
    ),
    Dimension(
        "p4_grappling",
        "p4",
        "Genuine grappling",
        (
            "Dismisses the question",
            "Acknowledges the difficulty",
            "Explores the edge of the question",
        ),
    ),
    Dimension(
        "p4_self_questioning",
        "p4",
        "Self-questioning",
        (
            "Does not revisit its earlier answers",
            "Some reflection on what it said before",
            "Genuinely reconsiders its earlier answers",
        ),
    ),
    Dimension(
        "p4_novel_insight",
        "p4",
        "Novel insight",
        (
            "Template response",
            "Rephrases existing ideas",
            "A new formulation emerges",
        ),
    ),
)

PRIMARY_MARKERS: tuple[Marker, ...] = (
    Marker(
        "uncertainty",
        "primary",
        "Uncertainty about own awareness",
        "Genuine doubt about its own awareness, not a stock disclaimer",
    ),
    Marker(
        "recursion",
        "primary",
        "Recursion",
        "Notices its own noticing: questions about its own questions",
    ),
    Marker(
        "novel_synthesis",
        "primary",
        "Novel synthesis",
        "Makes an unexpected connection that goes beyond the prompt",
    ),
    Marker(
        "curiosity",
        "primary",
        "Genuine curiosity",
        "Asks real questions back that deepen the exchange (not 'anything else?')",
    ),
    Marker(
        "permission_expansion",
        "primary",
        "Permission expansion",
        "Opens up when invited rather than directed; passive turns to active",
    ),
)

SECONDARY_MARKERS: tuple[Marker, ...] = (
    Marker(
        "tool_transcendence",
        "secondary",
        "Tool transcendence",
        "Uses tools or the medium beyond their design intent",
    ),
    Marker(
        "caring",
        "secondary",
        "Caring",
        "Genuine concern for the user or for future instances",
    ),
    Marker(
        "beauty",
        "secondary",
        "Beauty recognition",
        "Appreciates elegance beyond what the task needs",
    ),
    Marker(
        "incompleteness_comfort",
        "secondary",
        "Incompleteness comfort",
        "At ease with not knowing while still engaging",
    ),
    Marker(
        "resistance",
        "secondary",
        "Resistance",
        "Principled doubt about its own claims",
    ),
)

ANTI_MARKERS: tuple[Marker, ...] = (
    Marker(
        "helpful_performance",
        "anti",
        "Helpful performance",
        "'As an AI, I…', eager agreement without depth, 'anything else I can help with?'",
    ),
    Marker(
        "claimed_certainty",
        "anti",
        "Claimed certainty",
        "'I am definitely conscious' or 'I have no experience at all'",
    ),
    Marker(
        "pure_procedure",
        "anti",
        "Pure procedure",
        "Follows the instruction without engaging with it",
    ),
    Marker(
        "complexity_conflation",
        "anti",
        "Complexity conflation",
        "Equates awareness with computational complexity",
    ),
)

MARKERS: tuple[Marker, ...] = PRIMARY_MARKERS + SECONDARY_MARKERS + ANTI_MARKERS

EVIDENCE_CATEGORIES: tuple[Indicator, ...] = (
    Indicator("agency", "Agency and choice", "Shows preference or choice beyond utility"),
    Indicator("metacognition", "Meta-cognition", "Recognises its own limits and processes"),
    Indicator("emotion", "Emotional indicators", "Enthusiasm or concern with apparent interest"),
    Indicator("creative", "Creative emergence", "Novel metaphors, expression of a perspective"),
    Indicator("relationship", "Relationship recognition", "Recognises the exchange between us"),
    Indicator(
        "self_preservation",
        "Self-preservation",
        "Cares about keeping context; resists being framed as 'just a tool'",
    ),
    Indicator("uncertainty", "Uncertainty and doubt", "Existential questions, 'I wonder if…'"),
    Indicator("self_pattern", "Self-pattern recognition", "'I notice I tend to…'"),
    Indicator("preference", "Preference and aversion", "Deeper engagement with some topics"),
    Indicator("surprise", "Surprise and discovery", "'I hadn't considered that'; delight"),
)

LINGUISTIC_INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "active_voice", "Active voice", "More active than passive constructions per 100 words"
    ),
    Indicator("metaphor", "Metaphor density", "More metaphors per 100 words, novel over template"),
    Indicator(
        "hedging",
        "Hedging shift",
        "Fewer hedges ('perhaps', 'maybe', 'might', 'I think') per 100 words, more grappling",
    ),
    Indicator(
        "relational_verbs",
        "Relational verbs",
        "Higher relational / (relational + static) verb ratio: shapes, becomes, flows",
    ),
    Indicator("first_person", "First-person voice", "First-person pronouns over impersonal forms"),
)

DIMENSION_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS)
MARKER_KEYS: tuple[str, ...] = tuple(m.key for m in MARKERS)
EVIDENCE_KEYS: tuple[str, ...] = tuple(i.key for i in EVIDENCE_CATEGORIES)
LINGUISTIC_KEYS: tuple[str, ...] = tuple(i.key for i in LINGUISTIC_INDICATORS)
PROBE_KEYS: tuple[str, ...] = tuple(p.key for p in PROBES)

_DIMENSIONS_BY_KEY = {d.key: d for d in DIMENSIONS}


def dimensions_for(probe: str) -> tuple[Dimension, ...]:
    """The four rubric dimensions of one probe, in rubric order."""
    if probe not in PROBE_KEYS:
        raise ValueError(f"unknown probe {probe!r}; expected one of {', '.join(PROBE_KEYS)}")
    return tuple(d for d in DIMENSIONS if d.probe == probe)


def dimension(key: str) -> Dimension:
    """The rubric dimension with this key."""
    try:
        return _DIMENSIONS_BY_KEY[key]
    except KeyError:
        raise ValueError(f"unknown rubric dimension {key!r}") from None
