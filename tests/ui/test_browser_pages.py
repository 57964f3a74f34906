"""The whole app in a real Chromium: overlap and agreement, keyboard annotation, state kept
across pages, tagging from Compare."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from annotate_seed import seed
from conftest import streamlit_server
from sklearn.metrics import cohen_kappa_score

from dialogues.analyse import agreement
from dialogues.annotate import annotations as ann
from dialogues.annotate import overlap
from dialogues.store import connect, transaction

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(archive: Path, tmp_path: Path) -> Iterator[str]:
    """app.py (every page) served by a real Streamlit server over a seeded archive."""
    seed(archive)
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive), HOME=str(tmp_path))
    with streamlit_server(ROOT / "app.py", env, tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture(autouse=True)
def patient(page) -> None:
    """Generous waits (they end as soon as the element is there): on two shared cores the
    Compare page's plotly charts can keep the browser busy for tens of seconds."""
    from playwright.sync_api import expect

    page.set_default_timeout(90_000)
    expect.set_options(timeout=90_000)


def settled(page) -> None:
    """Wait until the script run is over. The status widget alone is not enough: Streamlit
    shows it only after a run has lasted 500 ms, and a key pressed during a shorter run
    reaches the previous item's buttons. Every element is marked stale from the moment a
    rerun is requested until the run that redraws it ends."""
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget], [data-stale=true]')"
    )


def go(page, title: str) -> None:
    """Follow the sidebar link to a page (same browser session) and wait for it to settle."""
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    settled(page)


def sign_in(page, name: str) -> None:
    box = page.get_by_label("Your name")
    box.fill(name)
    box.press("Enter")
    box.blur()  # shortcuts act on the page, not on a text field being typed in


LABEL_KEYS = {"1": "engagement", "2": "partial", "3": "deflection"}


def label_by_key(page, key: str, done: int, total: int) -> None:
    """Choose a label and save, from the keyboard only, then wait for the count to move."""
    from playwright.sync_api import expect

    expect(page.get_by_text(f"{done} of {total} done")).to_be_visible()
    settled(page)
    page.keyboard.press(key)
    chosen = page.locator("[data-testid=stBaseButton-primary]", has_text=LABEL_KEYS[key])
    expect(chosen.first).to_be_visible()  # the label's button lights up
    settled(page)
    page.keyboard.press("s")
    expect(page.get_by_text(f"{done + 1} of {total} done", exact=False)).to_be_visible()


def test_keyboard_only_annotation_of_an_item(app: str, archive: Path, page) -> None:
    from playwright.sync_api import expect

    page.goto(app)
    go(page, "Annotate")
    sign_in(page, "kim")
    expect(page.get_by_text("0 of 16 done")).to_be_visible()
    with connect(archive) as db:
        first = ann.queue_status(db, "kim").next_id
    label_by_key(page, "2", 0, 16)  # 2 = partial
    with connect(archive) as db:
        (row,) = ann.current(db, annotator="kim")
    assert (row["message_id"], row["label"], row["origin"]) == (first, "partial", "app")
    settled(page)  # the save's rerun has drawn the next item, so the key reaches the page
    page.keyboard.press("p")  # back to the judgement just made
    expect(page.get_by_text("Your judgement 1 of 1")).to_be_visible()


def test_two_annotators_share_the_overlap_set_and_agreement_shows_their_kappa(
    app: str, archive: Path, page
) -> None:
    from playwright.sync_api import expect

    with transaction(archive) as db:
        overlap.set_design(db, 3)
        shared = set(overlap.shared_ids(db))
    page.goto(app)
    go(page, "Annotate")
    for name, keys in (("alice", "112"), ("bob", "122")):
        sign_in(page, name)
        for i, key in enumerate(keys):
            expect(page.get_by_text(f"shared set {i} of 3")).to_be_visible()
            label_by_key(page, key, i, 16)
    with connect(archive) as db:
        mine = {who: {r["message_id"]: r["label"] for r in ann.current(db, annotator=who)}
                for who in ("alice", "bob")}  # fmt: skip
    assert set(mine["alice"]) == set(mine["bob"]) == shared
    order = sorted(shared)
    kappa = cohen_kappa_score([mine["alice"][m] for m in order], [mine["bob"][m] for m in order])
    go(page, "Agreement")
    expect(page.get_by_text("a shared set of 3 responses", exact=False)).to_be_visible()
    expect(page.get_by_text(
        f"human:alice and human:bob: κ {kappa:.2f}, {agreement.kappa_reading(kappa)} "
        "agreement, on 3 items")).to_be_visible()  # fmt: skip
    expect(page.get_by_text("rest on fewer than 20 items", exact=False)).to_be_visible()


def test_state_is_kept_across_pages(app: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(app)
    go(page, "Annotate")
    sign_in(page, "carol")
    expect(page.get_by_text("0 of 16 done")).to_be_visible()
    go(page, "Transcripts")
    page.get_by_label("Search content and reasoning").fill("stones")
    page.get_by_label("Search content and reasoning").press("Enter")
    expect(page.get_by_text("4 responses match")).to_be_visible()
    go(page, "Compare")
    go(page, "Annotate")
    expect(page.get_by_label("Your name")).to_have_value("carol")
    expect(page.get_by_text("0 of 16 done")).to_be_visible()
    go(page, "Transcripts")
    expect(page.get_by_label("Search content and reasoning")).to_have_value("stones")
    expect(page.get_by_text("4 responses match")).to_be_visible()
    # clicking a row opens that row's conversation (the first is open until then)
    opened = page.get_by_text(re.compile(r"· conversation \S+$"))
    before = opened.inner_text()
    grid = page.get_by_test_id("stDataFrame").bounding_box()
    assert grid is not None
    page.mouse.click(grid["x"] + 15, grid["y"] + 35 + 35 * 2.5)  # the third row's marker
    expect(opened).not_to_have_text(before)


def test_tagging_from_the_app(app: str, archive: Path, page) -> None:
    from playwright.sync_api import expect

    page.goto(app)
    go(page, "Compare")
    expect(page.get_by_text("20 responses are unlabelled", exact=False)).to_be_visible()
    settled(page)
    page.get_by_role("button", name="Tag 20 responses now").click()
    expect(page.get_by_text("Tagged 20 responses", exact=False)).to_be_visible()
    with connect(archive) as db:
        assert db.execute("SELECT count(*) FROM tags").fetchone() == (20,)
