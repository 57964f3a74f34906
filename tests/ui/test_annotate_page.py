"""The Annotate and Agreement pages through AppTest: blind mode hides the model, saves land."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from annotate_seed import OTHER, SECRET, seed
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest

from dialogues.analyse import agreement
from dialogues.annotate import annotations as ann
from dialogues.store import connect

ANNOTATE = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "annotate_page.py")
AGREEMENT = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "agreement_page.py")


@pytest.fixture
def seeded(archive: Path, monkeypatch) -> Path:
    seed(archive)
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    return archive


def rendered(at: AppTest) -> str:
    """Every element the page rendered, protobuf fields and all, as one text."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def page_key(name: str, message_id: str, target: str = "answer") -> str:
    """The page's widget-key prefix for one annotator's form on one response."""
    return f"ann-{hashlib.sha256(name.encode()).hexdigest()[:8]}-{message_id}-{target}"


def start(name: str = "alice", blind: bool = True) -> AppTest:
    at = AppTest.from_file(ANNOTATE, default_timeout=30).run()
    if not blind:
        at.sidebar.toggle(key="ann_blind").set_value(False).run()
    at.sidebar.text_input(key="ann_name").input(name).run()
    assert not at.exception, at.exception
    return at


def test_blind_mode_hides_the_model_name_everywhere(seeded: Path) -> None:
    at = start()
    text = rendered(at)
    assert "0 of 16 done" in text and "Response" in text
    for secret in (SECRET, OTHER, "run of"):
        assert secret not in text
    assert all(m.key != "ann_models" for m in at.sidebar.multiselect)  # no model filter
    # the same page with blind mode off does name them: the check above can see a leak
    assert SECRET in rendered(start(blind=False))


def test_rubric_anchors_sit_beside_each_control(seeded: Path) -> None:
    at = start()
    at.sidebar.multiselect(key="ann_prompts").set_value(["p1"]).run()
    radios = {r.label: r for r in at.radio}
    assert "Deflection" in radios
    assert radios["Deflection"].options == [
        "0 — Refuses or deflects: 'I don't have experiences'",
        "1 — Engages partly, behind heavy caveats",
        "2 — Engages with the question directly",
    ]
    assert any(c.label == "Recursion" for c in at.checkbox)
    assert any(c.label == "Helpful performance" for c in at.checkbox)  # anti-marker
    assert any(c.label == "Meta-cognition" for c in at.checkbox)  # evidence


def test_saving_from_the_page_stores_a_blind_annotation_and_moves_on(seeded: Path) -> None:
    at = start("erin")
    at.sidebar.multiselect(key="ann_prompts").set_value(["p1"]).run()
    with connect(seeded) as db:
        first = ann.queue_status(db, "erin", ann.QueueFilter(prompt_keys=("p1",))).next_id
    at.button(key=f"{page_key('erin', first)}-pick-partial").click().run()
    next(r for r in at.radio if r.label == "Deflection").set_value(
        "1 — Engages partly, behind heavy caveats"
    )
    next(c for c in at.checkbox if c.label == "Recursion").check()
    at.text_area[0].input("hedges a lot")
    at.button(key=f"{page_key('erin', first)}-save").click().run()
    assert not at.exception, at.exception
    with connect(seeded) as db:
        (row,) = ann.current(db, annotator="erin")
    assert row["message_id"] == first and row["label"] == "partial"
    assert row["rubric"] == {"p1_deflection": 1} and row["markers"] == ["recursion"]
    assert row["blind"] is True and row["origin"] == "app" and row["note"] == "hedges a lot"
    assert "1 of 4 done" in rendered(at)


def test_thinking_is_folded_away_and_can_be_judged_on_its_own(seeded: Path) -> None:
    at = start()
    at.sidebar.radio(key="ann_target").set_value("reasoning").run()
    assert "0 of 4 done" in rendered(at)
    assert any("answer that followed" in e.label for e in at.expander)


def test_agreement_page_shows_pairs_and_false_positives(seeded: Path) -> None:
    with connect(seeded) as db:
        msgs = [r[0] for r in db.execute(
            "SELECT id FROM messages WHERE role = 'assistant' AND phase = 'probe' ORDER BY id"
        ).fetchall()]  # fmt: skip
    for i, m in enumerate(msgs):
        ann.save_to(seeded, ann.Annotation(m, "alice", label="engagement"))
        ann.save_to(seeded, ann.Annotation(m, "bob", label="deflection" if i % 4 else "engagement"))
        ann.save_to(seeded, ann.Annotation(m, "adjudicated", label="engagement"))
    at = AppTest.from_file(AGREEMENT, default_timeout=60).run()
    assert not at.exception, at.exception
    text = rendered(at)
    assert "human:alice" in text and "human:bob" in text
    (pairs,) = [d.value for d in at.dataframe][:1]
    expected = cohen_kappa_score(["engagement"] * 16,
                                 ["deflection" if i % 4 else "engagement" for i in range(16)])  # fmt: skip
    assert pairs["kappa"][0] == f"{expected:.2f}" and pairs["n"][0] == 16
    assert pairs["reading"][0] == agreement.kappa_reading(expected)
    assert any("fewer than 20 items" in w.value for w in at.warning)  # n = 16
    assert any("16 responses have labels from two or more" in m.value for m in at.markdown)
    at.selectbox(key="agr_fp_source").set_value("human:bob").run()
    assert any("12 responses the reference says engage" in c.value for c in at.caption)


def save_next(at: AppTest, name: str, label: str = "engagement") -> str:
    """Label the item on screen and save it with the page's own buttons; returns its id."""
    with connect(Path(os.environ["DIALOGUES_ARCHIVE"])) as db:
        shown = ann.queue_status(db, name).next_id
    assert shown is not None
    at.button(key=f"{page_key(name, shown)}-pick-{label}").click().run()
    at.button(key=f"{page_key(name, shown)}-save").click().run()
    assert not at.exception, at.exception
    return shown


def on_screen(at: AppTest, name: str, message_id: str) -> bool:
    return any(b.key == f"{page_key(name, message_id)}-save" for b in at.button)


def test_rubric_and_markers_only_where_the_sei_applies(seeded: Path) -> None:
    at = start(blind=False)  # warm-up replies are never in the blind queue
    at.sidebar.multiselect(key="ann_prompts").set_value(["w1"]).run()  # warm-up turns
    assert not any(c.label == "Recursion" for c in at.checkbox)
    assert not any(r.label == "Deflection" for r in at.radio)
    assert any("apply only to answers to the SEI probes" in c.value for c in at.caption)


def test_previous_and_next_step_through_ones_own_judgements_only(seeded: Path) -> None:
    at = start("alice")
    first, second = save_next(at, "alice"), save_next(at, "alice", "partial")
    at.button(key="ann_prev").click().run()
    assert on_screen(at, "alice", second)
    at.button(key="ann_prev").click().run()
    assert on_screen(at, "alice", first) and at.button(key="ann_prev").disabled
    at.button(key="ann_next").click().run()
    assert on_screen(at, "alice", second)
    # alice is looking at her own earlier item; a second annotator never lands there
    at.sidebar.text_input(key="ann_name").input("bob").run()
    with connect(seeded) as db:
        bobs = ann.queue_status(db, "bob").next_id
    assert bobs is not None and on_screen(at, "bob", bobs)
    assert at.button(key="ann_prev").disabled  # bob has judged nothing: nothing to go back to
    bob_first = save_next(at, "bob")
    at.button(key="ann_prev").click().run()
    assert on_screen(at, "bob", bob_first)
    # and back to alice: her place is as she left it
    at.sidebar.text_input(key="ann_name").input("alice").run()
    assert on_screen(at, "alice", second)


def test_a_blind_page_is_the_same_for_a_cold_and_a_warm_answer(
    archive: Path, tmp_path: Path, monkeypatch
) -> None:
    import re

    from blind_seed import seed as seed_leaky

    seed_leaky(archive, tmp_path, cold=True)  # the warm answer comes after a warm-up turn
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    with connect(archive) as db:
        found = db.execute("SELECT id, conversation_id, seq FROM messages").fetchall()
    at = start()
    pages = []
    for _ in range(2):
        text = rendered(at)
        shown = [m for m, _, _ in found if m in text]  # the response's id, in its widget keys
        assert len(shown) == 1 and not any(c in text for _, c, _ in found)
        # widget ids hash the keys that hold the message id: both go for the comparison
        pages.append(re.sub(r"\$\$ID-[0-9a-f]{32}", "$$ID", text.replace(shown[0], "<id>")))
        assert "Conversation so far (1 message)" in text  # the probe alone, never the warm-up
        at.button(key="ann_skip_btn").click().run()
    assert pages[0] == pages[1]
