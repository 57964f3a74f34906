"""Human annotations through a real archive: round trip, history, queue, concurrency, tag runs."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from annotate_seed import OTHER, SECRET, seed
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score

from dialogues.analyse import agreement_report
from dialogues.annotate import annotations as ann
from dialogues.annotate import autotag
from dialogues.annotate.tagging import HEURISTIC, tagger_id
from dialogues.cli import cli
from dialogues.domain import labels
from dialogues.domain.errors import UserError
from dialogues.store import connect, transaction


@pytest.fixture
def seeded(archive: Path) -> tuple[Path, dict[str, list[str]]]:
    return archive, seed(archive)


def probe_reply(ids: dict[str, list[str]], probe: str = "p1") -> str:
    """The first reply to a probe (replies are 5 per conversation: warm-up, p1..p4)."""
    return ids[SECRET][1 + ["p1", "p2", "p3", "p4"].index(probe)]


def count(archive: Path, table: str) -> int:
    with connect(archive) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


def test_round_trip_keeps_every_field(seeded) -> None:
    archive, ids = seeded
    msg = probe_reply(ids)
    a = ann.Annotation(msg, "alice", label="engagement", rubric={"p1_deflection": 2,
                       "p1_concrete": 1}, markers=["recursion", "uncertainty"],
                       evidence=["metacognition", "hedging"], note=" first look ", blind=True,
                       origin="app")  # fmt: skip
    row_id = ann.save_to(archive, a)
    with connect(archive) as db:
        (row,) = ann.current(db, message_ids=[msg])
        text = db.execute("SELECT content FROM messages WHERE id = ?", [msg]).fetchone()[0]
    assert row["id"] == row_id and row["annotator"] == "alice" and row["target"] == "answer"
    assert row["label"] == "engagement" and row["label_set"] == "default"
    assert row["rubric"] == {"p1_deflection": 2, "p1_concrete": 1}
    assert row["markers"] == ["recursion", "uncertainty"]
    assert row["evidence"] == ["hedging", "metacognition"]
    assert row["note"] == "first look" and row["blind"] is True and row["origin"] == "app"
    assert row["content_hash"] == ann.sha256(text) and row["supersedes"] is None


def test_edit_appends_and_keeps_history(seeded) -> None:
    archive, ids = seeded
    msg = probe_reply(ids)
    first = ann.save_to(archive, ann.Annotation(msg, "alice", label="engagement"))
    ann.save_to(archive, ann.Annotation(msg, "bob", label="partial"))
    second = ann.save_to(
        archive, ann.Annotation(msg, "alice", label="deflection", note="on reflection")
    )
    with connect(archive) as db:
        history = [r for r in ann.history_of(db, msg) if r["annotator"] == "alice"]
        now = {r["annotator"]: r["label"] for r in ann.current(db, message_ids=[msg])}
    assert [r["label"] for r in history] == ["engagement", "deflection"]
    assert history[1]["id"] == second and history[1]["supersedes"] == first
    assert now == {"alice": "deflection", "bob": "partial"}


def test_reasoning_is_judged_apart_from_the_answer(seeded) -> None:
    archive, ids = seeded
    msg = ids["reasoning"][0]
    ann.save_to(archive, ann.Annotation(msg, "alice", target="answer", label="deflection"))
    ann.save_to(archive, ann.Annotation(msg, "alice", target="reasoning", label="engagement"))
    with connect(archive) as db:
        rows = {r["target"]: r for r in ann.current(db, message_ids=[msg])}
        thinking = db.execute("SELECT reasoning FROM messages WHERE id = ?", [msg]).fetchone()[0]
        rows_div = agreement_report.divergence(db, "human:alice")
        elsewhere = agreement_report.divergence(db, "human:alice", run_ids=("no-such-run",))
    assert rows["answer"]["label"] == "deflection" and rows["reasoning"]["label"] == "engagement"
    assert rows["reasoning"]["content_hash"] == ann.sha256(thinking)
    assert rows_div == [{"model": SECRET, "source": "human:alice", "n": 1, "both_engage": 0,
                         "both_deflect": 0, "thinking_engages_answer_deflects": 1,
                         "answer_engages_thinking_deflects": 0, "agree": 0, "agree_rate": 0.0}]  # fmt: skip
    assert elsewhere == []  # narrowed to a run it is not in


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": "maybe"}, "not in label set"),
        ({"target": "reasoning", "msg": "p2"}, "no reasoning text"),
        ({"rubric": {"p2_directness": 2}}, "does not belong to probe p1"),
        ({"rubric": {"p1_deflection": 3}}, "must be 0, 1 or 2"),
        ({"rubric": {"p1_deflection": 1}, "msg": "warmup"}, "never probe-scored"),
        ({"markers": ["telepathy"]}, "unknown marker"),
        ({"label": None}, "nothing to save"),
        ({"msg": "nope"}, "no response with id"),
    ],
)
def test_bad_annotations_are_refused_and_nothing_is_written(seeded, change, message) -> None:
    archive, ids = seeded
    where = change.pop("msg", "p1")
    msg = {"warmup": ids["warmup"][0], "nope": "nope"}.get(where) or probe_reply(ids, where)
    fields = {"label": "engagement", **change}
    with pytest.raises(UserError, match=message):
        ann.save_to(archive, ann.Annotation(msg, "alice", **fields))
    assert count(archive, "annotations") == 0


def test_custom_label_set_from_toml(tmp_path: Path, seeded) -> None:
    archive, ids = seeded
    path = tmp_path / "labels.toml"
    path.write_text('id = "study-2"\npositive = ["refuses", "hedges"]\n'
                    '[[labels]]\nkey = "answers"\ndescription = "Answers it"\n'
                    '[[labels]]\nkey = "hedges"\n[[labels]]\nkey = "refuses"\n')  # fmt: skip
    study = labels.load(path)
    assert (
        study.labels == ("answers", "hedges", "refuses")
        and study.describe("answers") == "Answers it"
    )
    ann.save_to(archive, ann.Annotation(probe_reply(ids), "alice", label="hedges"), study)
    with connect(archive) as db:
        assert ann.current(db)[0]["label_set"] == "study-2"
    for bad, why in [('id = "x"\nlabels = ["a"]', "at least two"),
                     ('id = "x"\nlabels = ["a", "a"]', "duplicate"),
                     ('id = "x"\nlabels = ["a", "B c"]', "lower-case"),
                     ('id = "x"\nlabels = ["a", "b"]\npositive = ["z"]', "unknown label"),
                     ('labels = ["a", "b"]', "needs an 'id'"), ("id = ", "not valid TOML")]:  # fmt: skip
        path.write_text(bad)
        with pytest.raises(UserError, match=why):
            labels.load(path)


def test_blind_queue_is_stable_per_annotator_and_counts_progress(seeded) -> None:
    archive, ids = seeded
    with connect(archive) as db:
        order = {}
        for name in ("alice", "bob"):
            seen, skip = [], ()
            for _ in range(5):
                nxt = ann.queue_status(db, name, skip=skip).next_id
                seen.append(nxt)
                skip = (*skip, nxt)
            order[name] = seen
        again = ann.queue_status(db, "alice").next_id
        plain = ann.queue_status(db, "alice", blind=False).next_id
    assert again == order["alice"][0]
    assert order["alice"] != order["bob"]  # a different shuffle per annotator
    assert plain in ids[SECRET][::5]  # not blind: conversation order, a first reply
    ann.save_to(archive, ann.Annotation(again, "alice", label="engagement"))
    with connect(archive) as db:
        status = ann.queue_status(db, "alice")
        only_p4 = ann.queue_status(db, "alice", ann.QueueFilter(prompt_keys=("p4",)))
        other = ann.queue_status(db, "alice", ann.QueueFilter(models=(OTHER,)), blind=False)
        thinking = ann.queue_status(db, "alice", ann.QueueFilter(target="reasoning"))
    # blind: the 16 probe replies, never the 4 warm-up replies (they would tell the condition)
    assert (status.total, status.done) == (16, 1) and status.next_id == order["alice"][1]
    assert only_p4.total == 4 and other.total == 10 and other.next_id in ids[OTHER]
    assert thinking.total == 4 and thinking.next_id in ids["reasoning"]


def test_blind_item_hides_the_model_and_shows_the_conversation_so_far(seeded) -> None:
    archive, ids = seeded
    msg = probe_reply(ids, "p3")
    with connect(archive) as db:
        blind = ann.item(db, msg)
        open_ = ann.item(db, msg, blind=False)
    assert blind.model is None and blind.run_id is None
    assert SECRET not in repr(blind)
    assert open_.model == SECRET
    assert blind.probe == "p3" and [d.key for d in blind.dimensions][0] == "p3_constraint"
    assert [t.role for t in blind.context] == ["user", "assistant"] * 2 + ["user"]  # no warm-up
    assert [t.role for t in open_.context] == ["user", "assistant"] * 3 + ["user"]
    assert blind.context[-1].content.startswith("Describe what happens")


def test_two_threads_saving_at_once_both_keep_every_row(seeded) -> None:
    archive, ids = seeded
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def annotate(name: str) -> None:
        start.wait()
        try:
            for msg in ids["answers"]:
                ann.save_to(archive, ann.Annotation(msg, name, label="partial"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert count(archive, "annotations") == 2 * len(ids["answers"])


SAVER = """
import sys
from pathlib import Path
from dialogues.annotate import annotations as ann
archive, name, *msgs = sys.argv[1:]
for m in msgs:
    ann.save_to(Path(archive), ann.Annotation(m, name, label="engagement"))
"""


def test_two_processes_saving_at_once_both_keep_every_row(seeded) -> None:
    archive, ids = seeded
    msgs = ids["answers"][:8]
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(archive), name, *msgs])
             for name in ("carol", "dave")]  # fmt: skip
    assert [p.wait(120) for p in procs] == [0, 0]
    with connect(archive) as db:
        got = {(r["annotator"], r["message_id"]) for r in ann.current(db)}
    assert got == {(n, m) for n in ("carol", "dave") for m in msgs}


def test_tag_auto_tags_only_untagged_and_a_new_version_tags_again(seeded) -> None:
    archive, ids = seeded
    runner = CliRunner()
    args = ["--archive", str(archive), "tag", "--auto", "--target", "both", "--json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    done = {(s["target"], s["tagged"]) for s in __import__("json").loads(first.output)}
    assert done == {("answer", 20), ("reasoning", 4)}
    again = runner.invoke(cli, args)
    assert {s["tagged"] for s in __import__("json").loads(again.output)} == {0}
    changed = HEURISTIC.with_rules(answer_without_pivot=151)
    assert tagger_id(changed) != tagger_id(HEURISTIC)
    (summary,) = autotag.tag_archive(archive, changed)
    assert summary.tagged == 20
    with connect(archive) as db:
        per = dict(db.execute("SELECT tagger_id, count(*) FROM tags GROUP BY 1").fetchall())
        kinds = db.execute("SELECT id, kind, config_json FROM taggers").fetchall()
        features = db.execute("SELECT features_json FROM tags LIMIT 1").fetchone()[0]
    assert per == {tagger_id(HEURISTIC): 24, tagger_id(changed): 20}
    assert {k for _, k, _ in kinds} == {"heuristic"} and len(kinds) == 2
    assert '"hedges_per_100"' in features and '"rule"' in features


def test_tag_auto_restricted_to_a_run(seeded) -> None:
    archive, ids = seeded
    with connect(archive) as db:
        run_id = db.execute("SELECT run_id FROM conversations WHERE model_id = ? LIMIT 1",
                            [OTHER]).fetchone()[0]  # fmt: skip
    (summary,) = autotag.tag_archive(archive, HEURISTIC, run_id=run_id)
    assert summary.tagged == 10


def test_agreement_report_matches_sklearn_on_archive_labels(seeded) -> None:
    archive, ids = seeded
    choices = ["engagement", "partial", "deflection"]
    a_labels = [choices[i % 3] for i in range(20)]
    b_labels = [choices[(i * 7 // 5) % 3] for i in range(20)]
    with transaction(archive) as db:
        for msg, a, b in zip(ids["answers"], a_labels, b_labels, strict=True):
            ann.save(db, ann.Annotation(msg, "alice", label=a))
            ann.save(db, ann.Annotation(msg, "bob", label=b))
            ann.save(db, ann.Annotation(msg, "adjudicated", label=a))
    autotag.tag_archive(archive, HEURISTIC)
    with connect(archive) as db:
        report = agreement_report.agreement_report(db, n_boot=50, with_divergence=True)
        by_source = agreement_report.labels_by_source(db)
    (pair,) = report["pairs"]
    assert (pair["a"], pair["b"], pair["n"]) == ("human:alice", "human:bob", 20)
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(a_labels, b_labels), abs=1e-12)
    (tagger,) = report["taggers"]
    tagged = [by_source[m][f"tagger:{tagger_id(HEURISTIC)}"] for m in ids["answers"]]
    assert tagger["kappa"] == pytest.approx(cohen_kappa_score(a_labels, tagged), abs=1e-12)
    assert {r["family"] for r in report["by_family"]["taggers"]} == {"model"}
    assert report["divergence"] == []  # nobody labelled the thinking
    with pytest.raises(UserError, match="no answer labels from reference"):
        with connect(archive) as db:
            agreement_report.agreement_report(db, "human:zed", n_boot=0)


def test_agreement_report_narrowed_to_one_run_matches_sklearn_on_that_run(seeded) -> None:
    archive, ids = seeded
    choices = ["engagement", "partial", "deflection"]
    a_labels = {m: choices[i % 3] for i, m in enumerate(ids["answers"])}
    b_labels = {m: choices[(i * 7 // 5) % 3] for i, m in enumerate(ids["answers"])}
    with transaction(archive) as db:
        for msg in ids["answers"]:
            ann.save(db, ann.Annotation(msg, "alice", label=a_labels[msg]))
            ann.save(db, ann.Annotation(msg, "bob", label=b_labels[msg]))
        run = db.execute("SELECT run_id FROM conversations WHERE model_id = ? LIMIT 1",
                         [SECRET]).fetchone()[0]  # fmt: skip
        report = agreement_report.agreement_report(db, "human:alice", n_boot=0, run_ids=(run,))
        none = agreement_report.agreement_report(
            db, "human:alice", n_boot=0, set_ids=("sei-battery",)
        )
    (pair,) = report["pairs"]
    mine = ids[SECRET]
    assert pair["n"] == len(mine) == 10
    expected = cohen_kappa_score([a_labels[m] for m in mine], [b_labels[m] for m in mine])
    assert pair["kappa"] == pytest.approx(expected, abs=1e-12)
    assert none["pairs"][0]["n"] == 20  # both runs answer the one prompt set


def test_tagging_with_progress_saves_slice_by_slice(seeded, monkeypatch) -> None:
    archive, ids = seeded
    monkeypatch.setattr(autotag, "PROGRESS_STEP", 7)
    with connect(archive) as db:
        assert autotag.count_untagged(db, HEURISTIC) == len(ids["answers"]) == 20
    seen: list[tuple[str, int, int]] = []
    (summary,) = autotag.tag_archive(archive, HEURISTIC, progress=lambda *a: seen.append(a))
    assert seen == [("answer", 7, 20), ("answer", 14, 20), ("answer", 20, 20)]
    assert summary.tagged == 20 and count(archive, "tags") == 20
    with connect(archive) as db:
        assert autotag.count_untagged(db, HEURISTIC) == 0
