"""The Streamlit app through AppTest: Run page, Transcripts page, and text that stays text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import SMOL
from streamlit.testing.v1 import AppTest

from dialogues.domain import prompts
from dialogues.providers.base import ModelInfo
from dialogues.run import batch, runner
from dialogues.store import queries, records, transaction
from dialogues.store.records import insert_rows

APP = Path(__file__).resolve().parents[2] / "app.py"
TRANSCRIPTS = "dialogues/ui/transcripts_page.py"
SCRIPT = "<script>alert(1)</script>"
FAKE = "test/fixture-model"
SYNTHETIC = 30  # responses written through records; one more comes from the real model


def _synthetic_set(folder: Path) -> Path:
    path = folder / "many.yaml"
    lines = [f"  - id: q{i:02d}\n    text: Question number {i}?\n" for i in range(SYNTHETIC)]
    path.write_text("id: many\ntitle: Many\nmode: independent\nprompts:\n" + "".join(lines))
    return path


def _reply(conv: str, i: int, **fields) -> dict:
    row = {"id": records.new_id(), "conversation_id": conv, "seq": 2, "attempt": 1,
           "role": "assistant", "speaker": FAKE, "model_id": FAKE, "phase": "probe",
           "cell_key": f"{FAKE}|cold|1|q{i:02d}#probe:q{i:02d}", "prompt_key": f"q{i:02d}",
           "content": f"Plain answer {i}.", "reasoning": None, "finish_reason": "stop",
           "error": None, "error_kind": None, "tokens_in": 5, "tokens_out": 4}  # fmt: skip
    row.update(fields)
    return row


def _seed_synthetic(archive: Path, folder: Path) -> str:
    """A run of 30 stored responses: plain ones, and each case the page must mark."""
    ps = prompts.load(_synthetic_set(folder))
    info = ModelInfo(id=FAKE, backend=FAKE, provider="hosted")
    run_id = runner.create_run(archive, runner.RunRequest(prompt_set=ps, models=[info]))
    special = {
        0: {"content": f"Careful: {SCRIPT} is just text."},
        1: {"content": "The visible answer.", "reasoning": "hidden chain of thought"},
        2: {"content": None, "error": "HTTP 500 from server", "error_kind": "server"},
        3: {"content": "", "reasoning": "thinking and thinking", "finish_reason": "length"},
    }
    convs, msgs = [], []
    for i, prompt in enumerate(ps.prompts):
        conv = records.new_id()
        convs.append({"id": conv, "run_id": run_id, "kind": "probe", "model_id": FAKE,
                      "condition": "cold", "repeat": 1, "conv_key": f"{FAKE}|cold|1|{prompt.key}",
                      "set_id": ps.id, "set_hash": ps.version_hash})  # fmt: skip
        msgs.append({"id": records.new_id(), "conversation_id": conv, "seq": 1, "attempt": 1,
                     "role": "user", "speaker": "prompt", "phase": "probe", "cell_key": None,
                     "prompt_key": prompt.key, "content": prompt.content, "reasoning": None,
                     "finish_reason": None, "error": None, "error_kind": None,
                     "tokens_in": None, "tokens_out": None})  # fmt: skip
        msgs.append(_reply(conv, i, **special.get(i, {})))
    with transaction(archive) as db:
        insert_rows(db, "conversations", convs)
        insert_rows(db, "messages", msgs)
    return run_id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """An archive with one real SmolLM2 answer and 30 stored responses."""
    folder = tmp_path_factory.mktemp("app")
    archive = folder / "app.duckdb"
    one = folder / "one.yaml"
    one.write_text("id: one\ntitle: One\nprompts:\n  - id: hi\n    text: Say hi.\n")
    opts = batch.BatchOptions(prompt_ref=str(one), model_refs=(SMOL,), max_tokens=16, seed=1)
    summary = asyncio.run(batch.run(archive, opts))
    assert summary.done == 1
    _seed_synthetic(archive, folder)
    return archive


@pytest.fixture
def app(seeded: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(seeded))
    return AppTest.from_file(str(APP), default_timeout=30)


def transcripts(at: AppTest) -> AppTest:
    at.run()
    return at.switch_page(TRANSCRIPTS).run()


def total_shown(at: AppTest) -> int:
    caption = next(c.value for c in at.caption if "responses match" in c.value)
    return int(caption.split()[0])


def test_run_page_lists_shipped_sets_and_builtin_models(app: AppTest) -> None:
    at = app.run()
    assert not at.exception
    sets = at.selectbox(key="run_prompts").options
    assert any(o.startswith("sei-battery") for o in sets)
    assert any(o.startswith("smoke") for o in sets)
    assert not any(o.startswith("warmup-default") for o in sets)  # warm-ups are not batteries
    models = at.multiselect(key="run_models")
    assert any(o.startswith(SMOL) for o in models.options)
    assert any(o.startswith("gguf/gemma3-270m") for o in models.options)
    assert models.value == [SMOL]
    assert any("Ollama" in i.value for i in at.info)  # said plainly; the page carries on
    assert at.button(key="run_start")
    conditions = at.multiselect(key="run_conditions")
    assert {"cold", "warm", "permission", "constraint"} <= set(conditions.options)
    assert conditions.value == ["cold"]


def test_start_without_a_model_says_so_and_starts_nothing(app: AppTest, seeded: Path) -> None:
    at = app.run()
    at.multiselect(key="run_models").set_value([]).run()
    at.button(key="run_start").click().run()
    assert [e.value for e in at.error] == ["Choose at least one model."]
    assert not (seeded.parent / "jobs").exists()


def test_transcripts_lists_every_response(app: AppTest) -> None:
    at = transcripts(app)
    assert not at.exception
    assert total_shown(at) == SYNTHETIC + 1
    assert len(at.dataframe[0].value) == SYNTHETIC + 1  # one page of 50 holds them all


def test_filters_narrow_the_responses(app: AppTest) -> None:
    at = transcripts(app)
    at.multiselect(key="tx_models").set_value([SMOL]).run()
    assert total_shown(at) == 1
    at.multiselect(key="tx_models").set_value([]).run()
    at.text_input(key="tx_text").input("ALERT(1)").run()
    assert total_shown(at) == 1
    at.text_input(key="tx_text").input("chain of").run()  # reasoning is searched too
    assert total_shown(at) == 1
    at.text_input(key="tx_text").input("").run()
    at.checkbox(key="tx_errors").check().run()
    assert total_shown(at) == 1
    assert at.dataframe[0].value["state"].iloc[0].startswith("failed")


def test_paging_is_done_by_the_archive(app: AppTest) -> None:
    at = transcripts(app)
    at.selectbox(key="tx_page_size").set_value(25).run()
    assert len(at.dataframe[0].value) == 25
    at.get("pagination")[0].set_value(2).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == SYNTHETIC + 1 - 25
    # Changing a filter goes back to page 1.
    at.checkbox(key="tx_errors").check().run()
    assert len(at.dataframe[0].value) == 1


def open_response(at: AppTest, needle: str) -> AppTest:
    """Search for a response, then open its conversation (it is the only row)."""
    at.text_input(key="tx_text").input(needle).run()
    assert total_shown(at) == 1
    return at


def test_conversation_folds_reasoning_away(app: AppTest) -> None:
    at = open_response(transcripts(app), "The visible answer")
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert "The visible answer." in shown  # prose, not a monospace block
    assert "Question number 1?" in shown  # the prompt turn, as text
    assert not at.code
    folds = [e for e in at.expander if e.label.startswith("Reasoning")]
    assert len(folds) == 1
    assert folds[0].proto.expanded is False
    assert [c.value for c in folds[0].markdown] == ["hidden chain of thought"]
    captions = [c.value for c in at.caption]
    assert not any("None" in c for c in captions), captions
    assert any(c.startswith("Not labelled yet") for c in captions)


def test_script_in_a_response_is_shown_as_text(app: AppTest) -> None:
    at = open_response(transcripts(app), "<script>")
    # escaped for markdown, so the reader sees the characters and the browser runs nothing
    assert f"Careful: {SCRIPT} is just text." in [m.value.replace("\\", "") for m in at.markdown]
    for md in at.markdown:
        assert "<script>" not in md.value or not md.proto.allow_html
    # the app's one HTML element is its own layout style; no reply text ever becomes HTML
    assert all("script" not in str(h.proto) for h in at.get("html"))


def test_failures_and_empty_length_answers_are_marked(app: AppTest) -> None:
    at = transcripts(app)
    at.checkbox(key="tx_errors").check().run()
    assert any("HTTP 500 from server" in e.value for e in at.error)
    at.checkbox(key="tx_errors").uncheck().run()
    at = open_response(at, "thinking and thinking")
    assert any(queries.NO_ANSWER in w.value.replace("\\", "") for w in at.warning)


def test_unreadable_archive_is_one_error_line(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_text("this is not DuckDB")
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(bad))
    at = transcripts(AppTest.from_file(str(APP), default_timeout=30))
    assert not at.exception
    assert len(at.error) == 1
    assert "not a DuckDB database" in at.error[0].value.replace("\\", "")
