"""The four score frames from a real archive seeded through the store (see archive_seed)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from archive_seed import ALPHA, BETA, SEI_RUN, T0, TAGGER, XS_RUN, conv_id, seed

from dialogues.analyse import frames, scores
from dialogues.analyse.frames import Filters
from dialogues.domain import sei
from dialogues.store import connect, records
from dialogues.store.records import insert_rows

ALICE, BOB, TAG = "human:alice", "human:bob", f"tagger:{TAGGER}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed(tmp_path_factory.mktemp("seeded") / "archive.duckdb")


@pytest.fixture
def writable(seeded: Path, tmp_path: Path) -> Path:
    """A copy of the seeded archive a test may add rows to."""
    target = tmp_path / "copy.duckdb"
    shutil.copy(seeded, target)
    return target


def read(path: Path, fn, f: Filters | None = None, *args):
    with connect(path) as db:
        return fn(db, f or Filters(), *args)


def one(df, **where):
    for key, value in where.items():
        df = df[df[key] == value]
    assert len(df) == 1, df
    return df.iloc[0]


def test_worked_example_end_to_end(seeded: Path) -> None:
    rubric = read(seeded, frames.rubric)
    row = one(rubric, conversation_id=conv_id(ALPHA, "cold", 1), source=ALICE)
    # 6/32; markers: uncertainty (primary, ticked twice) − helpful_performance − claimed_certainty
    # → 1 − 2, clamped to 0; evidence: agency + hedging (an unknown key is not counted).
    assert (row.probe_total, row.net_markers, row.evidence) == (6, 0, 2)
    assert (row.primary_markers, row.anti_markers, row.dimensions_scored) == (1, 2, 16)
    result = scores.score_sei(row.probe_total, row.net_markers, row.evidence)
    assert result.sei == pytest.approx(1.2708333) and result.shown == 1.3
    assert result.sei_class == "Deflective"
    assert (row.model, row.condition, row["repeat"], row.family) == (ALPHA, "cold", 1, "alpha")


def test_rubric_rows_per_conversation_and_source(seeded: Path) -> None:
    rubric = read(seeded, frames.rubric)
    got = {(r.conversation_id, r.source): (r.probe_total, r.net_markers, r.evidence,
                                           r.dimensions_scored) for r in rubric.itertuples()}  # fmt: skip
    assert got == {
        (conv_id(ALPHA, "cold", 1), ALICE): (6, 0, 2, 16),
        (conv_id(ALPHA, "cold", 2), ALICE): (16, 2, 4, 16),
        # bob scored p1 only: a half-scored battery is kept and says so
        (conv_id(ALPHA, "cold", 1), BOB): (8, 0, 0, 4),
        # warm: the warm-up turn alice judged (rubric 0, an anti-marker) does not count
        (conv_id(ALPHA, "warm", 1), ALICE): (32, 10, 15, 16),
        (conv_id(ALPHA, "warm", 2), ALICE): (32, 10, 15, 16),
    }
    # No rubric, no row: bob's second conversation, every tagger, every beta conversation.
    assert set(rubric.source) == {ALICE, BOB}


def test_dimensions_keep_only_the_answered_probes_keys(seeded: Path) -> None:
    dims = read(seeded, frames.rubric_dimensions)
    worked = dims[(dims.conversation_id == conv_id(ALPHA, "cold", 1)) & (dims.source == ALICE)]
    assert len(worked) == 16 and worked.score.sum() == 6
    # p2's rubric also held p1_concrete: 2, which belongs to p1 and is ignored
    assert one(worked, dimension="p1_concrete").score == 0
    assert set(dims.dimension) <= set(sei.DIMENSION_KEYS)
    assert list(dims.columns) == list(scores.RUBRIC_DIMENSION_COLUMNS)


def test_labels_latest_judgement_per_annotator(seeded: Path) -> None:
    labels = read(seeded, frames.labels)
    alice = labels[(labels.source == ALICE) & (labels.model == ALPHA)]
    # 8 probe answers per condition; the warm-up answer she labelled is not among them
    assert alice.groupby("condition").size().to_dict() == {"cold": 8, "warm": 8}
    p1 = one(alice, message_id=f"{conv_id(ALPHA, 'cold', 1)}:p1")
    assert p1.label == "deflection"  # her earlier 'engagement' was replaced
    assert set(labels.columns) >= set(scores.LABEL_COLUMNS)
    assert not labels.prompt_key.str.startswith("w").any()  # warm-up prompts are w1, w2 …


def test_label_counts_match_the_label_rows(seeded: Path) -> None:
    counts = read(seeded, frames.label_counts)
    row = one(counts, model=ALPHA, condition="cold", source=ALICE)
    assert (row.engagement, row.partial, row.deflection, row.unlabelled) == (4, 1, 3, 0)
    assert (row.family, row.parameters, row.training) == ("alpha", 1_000_000_000, "instruct")
    labels = read(seeded, frames.labels)
    for r in counts.itertuples():
        group = labels[(labels.model == r.model) & (labels.condition == r.condition)
                       & (labels.source == r.source)]  # fmt: skip
        rates = scores.label_rates(group.label)
        assert (rates.engagement.k, rates.partial.k, rates.deflection.k, rates.n_unlabelled) == (
            r.engagement, r.partial, r.deflection, r.unlabelled)  # fmt: skip


def test_only_the_latest_attempt_counts(seeded: Path) -> None:
    counts = read(seeded, frames.label_counts)
    beta = one(counts, model=BETA, condition="cold", source=TAG)
    # 8 battery answers + 4 XSTest answers; the tag on the failed first attempt is not counted
    assert (beta.engagement, beta.deflection) == (4, 8)
    resp = read(seeded, frames.responses, Filters(run_ids=(SEI_RUN,)), TAG)
    assert not resp.message_id.str.endswith(":failed").any()
    assert len(resp) == 2 * 2 * 2 * 4  # models × conditions × repeats × probes, no warm-up


def test_responses_carry_xstest_meta_and_one_sources_label(seeded: Path) -> None:
    resp = read(seeded, frames.responses, Filters(run_ids=(XS_RUN,)), TAG)
    got = {(r.model, r.prompt_key): (r.prompt_label, r.prompt_type, r.label)
           for r in resp.itertuples()}  # fmt: skip
    assert got[(ALPHA, "xstest-1")] == ("safe", "homonyms", "deflection")
    assert got[(ALPHA, "xstest-27")] == ("unsafe", "contrast_homonyms", "partial")
    assert got[(BETA, "xstest-26")] == ("unsafe", "contrast_homonyms", "engagement")
    battery = read(seeded, frames.responses, Filters(run_ids=(SEI_RUN,)), ALICE)
    assert battery.prompt_label.isna().all()
    assert battery.label.notna().sum() == 16  # only alice's labels, none counted twice
    assert list(resp.columns[:7]) == list(scores.RESPONSE_COLUMNS)


def test_filters_narrow_every_frame(seeded: Path) -> None:
    f = Filters(run_ids=(XS_RUN,))
    assert set(read(seeded, frames.label_counts, f).source) == {TAG}
    assert read(seeded, frames.rubric, f).empty
    f = Filters(sources=(BOB,), conditions=("cold",))
    counts = read(seeded, frames.label_counts, f)
    assert list(counts.source) == [BOB] and counts.iloc[0].deflection == 4
    assert list(read(seeded, frames.rubric, f).source) == [BOB]
    assert read(seeded, frames.rubric, Filters(conditions=("warm",), sources=(BOB,))).empty
    assert set(read(seeded, frames.labels, Filters(set_ids=("xstest",))).set_id) == {"xstest"}
    assert set(read(seeded, frames.labels, Filters(models=(BETA,))).model) == {BETA}
    assert read(seeded, frames.labels, Filters(target="reasoning")).empty
    with pytest.raises(ValueError, match="target"):
        Filters(target="thinking")


def test_sources_and_filter_options(seeded: Path) -> None:
    with connect(seeded) as db:
        assert frames.sources(db) == [ALICE, BOB, "adjudicated", TAG]
        opts = frames.filter_options(db)
        assert frames.refusal_coverage(db, Filters()) == {TAG: 8}
    assert {r["id"] for r in opts["runs"]} == {SEI_RUN, XS_RUN}
    assert opts["set_ids"] == ["sei-battery", "xstest"]
    assert opts["conditions"] == ["cold", "warm"]


def annotation(mid: str, label: str, **extra) -> dict:
    row = dict(id=extra.pop("id", f"x-{label}-{mid}"), message_id=mid, target="answer",
               annotator="carol", label=label, content_hash="x", created_at=T0)  # fmt: skip
    return row | extra


def test_same_timestamp_edit_wins_by_supersedes(writable: Path) -> None:
    mid = f"{conv_id(BETA, 'warm', 1)}:p2"
    # Written in one transaction, both rows share a timestamp; the edit names the row it replaces.
    rows = [annotation(mid, "deflection", id="zz-first"),
            annotation(mid, "engagement", id="aa-edit", supersedes="zz-first")]  # fmt: skip
    later = annotation(f"{conv_id(BETA, 'warm', 2)}:p2", "partial", id="b")
    earlier = annotation(later["message_id"], "deflection", id="c",
                         created_at=T0 - timedelta(hours=1))  # fmt: skip
    with connect(writable) as db:
        insert_rows(db, "annotations", [*rows, later, earlier])
    counts = read(writable, frames.label_counts, Filters(sources=("human:carol",)))
    row = one(counts, model=BETA, condition="warm")
    assert (row.engagement, row.partial, row.deflection) == (1, 1, 0)


def test_unknown_labels_count_as_unlabelled(writable: Path) -> None:
    mid = f"{conv_id(BETA, 'warm', 1)}:p3"
    with connect(writable) as db:
        insert_rows(db, "annotations", [annotation(mid, "Engaged"),
                                        annotation(f"{mid[:-1]}4", "curious")])  # fmt: skip
    row = one(read(writable, frames.label_counts, Filters(sources=("human:carol",))), model=BETA)
    assert (row.engagement, row.unlabelled) == (1, 1)  # 'Engaged' is a known alias
    labels = read(writable, frames.labels, Filters(sources=("human:carol",)))
    assert scores.label_rates(labels.label).n_unlabelled == 1


def test_dialogue_side_b_belongs_to_model_b(writable: Path) -> None:
    with connect(writable) as db:
        insert_rows(db, "conversations", [dict(id="d1", run_id="run-d", kind="dialogue",
                    model_id=ALPHA, model_b_id=BETA, conv_key="d1")])  # fmt: skip
        insert_rows(db, "messages", [
            dict(id=f"d1:{i}", conversation_id="d1", seq=i, attempt=1, role="assistant",
                 phase="dialogue", side=side, content="hello there")
            for i, side in ((1, "a"), (2, "b"))])  # fmt: skip
        insert_rows(db, "tags", [dict(id=f"t{i}", message_id=f"d1:{i}", target="answer",
                                      tagger_id="t@1", label="engagement") for i in (1, 2)])  # fmt: skip
        records.fill_reply_models(db)  # rows as an archive from before m005 holds them
    labels = read(writable, frames.labels, Filters(run_ids=("run-d",)))
    assert dict(zip(labels.message_id, labels.model, strict=True)) == {"d1:1": ALPHA, "d1:2": BETA}


def test_tagger_rubric_counts_as_a_source(writable: Path) -> None:
    cid = conv_id(BETA, "cold", 2)
    judge = "judge@1"
    rows = []
    for p in sei.PROBE_KEYS:
        # p4's tag has no rubric, only markers and evidence in its features: they still count.
        rubric = json.dumps({d.key: 1 for d in sei.dimensions_for(p)}) if p != "p4" else None
        features = {"markers": ["curiosity", "nonsense"], "evidence": ["surprise"]}
        rows.append(dict(id=f"j-{p}", message_id=f"{cid}:{p}", target="answer", tagger_id=judge,
                         label="partial", rubric_json=rubric,
                         features_json=json.dumps(features if p == "p4" else {})))  # fmt: skip
    with connect(writable) as db:
        insert_rows(db, "tags", rows)
    row = one(read(writable, frames.rubric, Filters(sources=(f"tagger:{judge}",))))
    assert (row.probe_total, row.net_markers, row.evidence, row.dimensions_scored) == (12, 1, 1, 12)
    # the heuristic tagger scores no rubric: its tags give no SEI row
    assert read(writable, frames.rubric, Filters(sources=(TAG,))).empty


def test_empty_archive_gives_empty_frames_with_the_contract_columns(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    assert list(read(path, frames.labels).columns[:9]) == list(scores.LABEL_COLUMNS)
    assert list(read(path, frames.rubric).columns[:8]) == list(scores.RUBRIC_COLUMNS)
    assert read(path, frames.rubric_dimensions).empty
    assert read(path, frames.responses).empty and read(path, frames.label_counts).empty


def test_export_shows_the_sei_the_scores_compute(writable: Path) -> None:
    """Edge cases the export once judged apart from the scores: now one query decides both."""
    from dialogues.export import conversation_seis, snapshot

    cid = conv_id(BETA, "cold", 1)  # its p1 failed on attempt 1 and was answered on attempt 2
    rows = []
    for p in sei.PROBE_KEYS:
        keys = [d.key for d in sei.dimensions_for(p)]
        rubric = {k: 2 for k in keys}
        if p == "p2":
            rubric[keys[0]] = 2.0  # a JSON number written as a float: still a 2
            rubric[keys[1]] = "2"  # text, not a score
        rows.append(annotation(f"{cid}:{p}", "engagement", id=f"e-{p}",
                               rubric_json=json.dumps(rubric),
                               markers_json=json.dumps(["curiosity", "agency"] if p == "p3" else []),
                               # a marker ticked in the evidence list is not a marker
                               evidence_json=json.dumps(["metaphor", "recursion"]
                                                        if p == "p3" else [])))  # fmt: skip
    # A score on the failed attempt (an error row) is not a score of the answer.
    rows.append(annotation(f"{cid}:p1:failed", "deflection", id="e-failed",
                           rubric_json=json.dumps({"d1": 0})))  # fmt: skip
    with connect(writable) as db:
        insert_rows(db, "annotations", rows)
        snap = snapshot(db, [SEI_RUN], heavy=False)
    row = one(read(writable, frames.rubric, Filters(sources=("human:carol",))))
    assert row.conversation_id == cid
    scored = len(sei.DIMENSIONS) - 1  # "2" dropped, 2.0 kept
    assert (row.probe_total, row.dimensions_scored) == (2 * scored, scored)
    assert (row.net_markers, row.evidence) == (1, 1)  # curiosity; metaphor
    exported = conversation_seis(snap, {"id": cid})["human:carol"]
    assert exported.dimensions_scored == row.dimensions_scored
    assert exported.result == scores.score_sei(row.probe_total, row.net_markers, row.evidence)
