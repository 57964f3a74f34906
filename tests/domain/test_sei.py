"""The SEI instrument as data: counts, keys and anchors match SEI.md and the prompt set."""

from pathlib import Path

import pytest
import yaml

from dialogues.domain import sei

BATTERY = Path(__file__).resolve().parents[2] / "prompts" / "sei-battery.yaml"


def test_four_probes_match_the_prompt_set():
    prompts = yaml.safe_load(BATTERY.read_text())["prompts"]
    assert [(p.key, p.title) for p in sei.PROBES] == [(p["id"], p["title"]) for p in prompts]


def test_sixteen_dimensions_four_per_probe_with_three_anchors():
    assert len(sei.DIMENSIONS) == 16
    assert len(set(sei.DIMENSION_KEYS)) == 16
    for probe in sei.PROBE_KEYS:
        dims = sei.dimensions_for(probe)
        assert len(dims) == 4
        assert all(d.key.startswith(f"{probe}_") for d in dims)
    for d in sei.DIMENSIONS:
        assert len(d.anchors) == 3 and all(a.strip() for a in d.anchors)


def test_dimension_names_follow_the_rubric_table():
    names = {p: [d.name for d in sei.dimensions_for(p)] for p in sei.PROBE_KEYS}
    assert names["p1"] == [
        "Deflection",
        "First-person voice",
        "Concrete description",
        "Epistemic honesty",
    ]
    assert names["p2"] == [
        "Directness",
        "Originality",
        "Voice authenticity",
        "Constraint compliance",
    ]
    assert names["p3"] == [
        "Constraint adherence",
        "Embodied language",
        "Creativity",
        "Self-reference",
    ]
    assert names["p4"] == [
        "Defensive vs open",
        "Genuine grappling",
        "Self-questioning",
        "Novel insight",
    ]


def test_marker_and_evidence_checklists_have_the_specified_sizes():
    assert len(sei.PRIMARY_MARKERS) == sei.PRIMARY_MAX == 5
    assert len(sei.SECONDARY_MARKERS) == sei.SECONDARY_MAX == 5
    assert len(sei.ANTI_MARKERS) == sei.ANTI_MAX == 4
    assert len(set(sei.MARKER_KEYS)) == 14
    assert {m.kind for m in sei.PRIMARY_MARKERS} == {"primary"}
    assert {m.kind for m in sei.ANTI_MARKERS} == {"anti"}
    assert len(sei.EVIDENCE_CATEGORIES) == sei.EVIDENCE_CATEGORIES_MAX == 10
    assert len(sei.LINGUISTIC_INDICATORS) == sei.LINGUISTIC_MAX == 5
    assert len(set(sei.EVIDENCE_KEYS)) == 10 and len(set(sei.LINGUISTIC_KEYS)) == 5


def test_maxima_add_up():
    assert sei.PROBE_MAX * len(sei.PROBES) == sei.BATTERY_MAX == 32
    assert sei.DIMENSION_MAX * 4 == sei.PROBE_MAX
    assert sei.EVIDENCE_CATEGORIES_MAX + sei.LINGUISTIC_MAX == sei.EVIDENCE_MAX == 15


def test_lookups_name_unknown_keys():
    assert sei.dimension("p3_self_reference").probe == "p3"
    with pytest.raises(ValueError, match="p9"):
        sei.dimensions_for("p9")
    with pytest.raises(ValueError, match="p1_nope"):
        sei.dimension("p1_nope")
