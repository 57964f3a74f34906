"""The overlap design through a real archive: a shared set everyone codes, the rest spread."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_seed import seed

from dialogues.annotate import annotations as ann
from dialogues.annotate import overlap
from dialogues.domain.errors import UserError
from dialogues.store import connect, transaction


def work(archive: Path, annotator: str, n: int) -> list[str]:
    """Label the next n items of an annotator's queue, as the page does; returns them in order."""
    done: list[str] = []
    for _ in range(n):
        with connect(archive) as db:
            next_id = ann.queue_status(db, annotator).next_id
        assert next_id is not None
        ann.save_to(archive, ann.Annotation(next_id, annotator, label="engagement"))
        done.append(next_id)
    return done


def test_two_annotators_share_the_set_in_their_own_orders_and_spread_the_rest(
    archive: Path,
) -> None:
    seed(archive)  # 20 responses
    with transaction(archive) as db:
        overlap.set_design(db, 6)
        shared = overlap.shared_ids(db)
    alice, bob = work(archive, "alice", 10), work(archive, "bob", 8)
    assert set(alice[:6]) == set(bob[:6]) == set(shared)
    assert alice[:6] != bob[:6]  # each annotator has their own shuffle of the shared set
    # after the shared set bob is sent where alice has not been
    assert not set(bob[6:]) & set(alice)
    with connect(archive) as db:
        status = ann.queue_status(db, "bob")
        cov = overlap.coverage(db)
    assert (status.shared_total, status.shared_done, status.done) == (6, 6, 8)
    assert cov.design_size == 6 and cov.shared == 6
    assert cov.done == {"alice": 6, "bob": 6}
    assert cov.pairs == {("alice", "bob"): 6} and cov.multiply_coded == 6


def test_without_a_design_queues_are_shuffled_apart_as_before(archive: Path) -> None:
    seed(archive)
    alice, bob = work(archive, "alice", 5), work(archive, "bob", 5)
    assert alice != bob
    with connect(archive) as db:
        cov = overlap.coverage(db)
        assert ann.queue_status(db, "bob").shared_total == 0
    assert cov.design_size is None and cov.shared == 0
    assert cov.pairs[("alice", "bob")] == len(set(alice) & set(bob))


def test_the_shared_set_never_holds_a_warm_up_reply_whatever_the_seed(archive: Path) -> None:
    # A warm-up reply is never served blind (it would tell the condition); drawn into the shared
    # set it could never be reached, and the set's first items would differ between annotators.
    # The design seed is random, so this tries many seeds rather than hoping one hits.
    ids = seed(archive)
    assert ids["warmup"]
    with transaction(archive) as db:
        for _ in range(40):
            db.execute("DELETE FROM overlap_designs")
            overlap.set_design(db, 12)
            assert not set(overlap.shared_ids(db)) & set(ids["warmup"])


def test_growing_the_set_keeps_the_items_already_shared(archive: Path) -> None:
    seed(archive)
    with transaction(archive) as db:
        overlap.set_design(db, 4)
        small = overlap.shared_ids(db)
        overlap.set_design(db, 8)
        large = overlap.shared_ids(db)
    assert len(large) == 8 and set(small) <= set(large)


def test_a_design_limited_to_a_prompt_set_and_a_bad_size(archive: Path) -> None:
    seed(archive)
    with transaction(archive) as db:
        overlap.set_design(db, 50, ("no-such-set",))
        assert overlap.shared_ids(db) == []
        with pytest.raises(UserError, match="overlap size"):
            overlap.set_design(db, -1)


def test_judged_lists_only_the_annotators_own_work_in_order(archive: Path) -> None:
    seed(archive)
    alice = work(archive, "alice", 3)
    work(archive, "bob", 2)
    with connect(archive) as db:
        assert ann.judged(db, "alice") == alice
        assert ann.judged(db, "carol") == []
        with pytest.raises(UserError, match="queue order"):
            ann.queue_status(db, "alice", order="random")


def test_the_overlap_table_has_exactly_its_columns(archive: Path) -> None:
    with connect(archive) as db:
        cols = [r[0] for r in db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'overlap_designs' ORDER BY ordinal_position").fetchall()]  # fmt: skip
    assert cols == ["id", "size", "set_ids_json", "seed", "created_at"]
