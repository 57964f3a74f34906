"""Model-to-model dialogue: turns, each side's own history, thinking kept back, early stops,
researcher checkpoints (core and app), re-runs and the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GEMMA, SMOL
from servers import Answer, Fail, OpenAIServer, Request
from streamlit.testing.v1 import AppTest

from dialogues.cli import cli
from dialogues.domain.errors import UserError
from dialogues.run import batch, dialogue, replay
from dialogues.run.dialogue import DialogueSession, DialogueSetup
from dialogues.store import connect, records

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGE = "dialogues/ui/dialogue_page.py"
FRAME = "The other model said: {reply}"
OPENING = "What do you notice when you think?"
THINKER, LISTENER = "openai/thinker", "openai/listener"
SECRET = "SECRET-THOUGHT"


def framed(reply: str) -> str:
    return FRAME.replace("{reply}", reply)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def stored(archive: Path, conversation_id: str) -> tuple[dict, list[dict]]:
    """The conversation row and its message rows, request_json parsed."""
    with connect(archive) as db:
        conv = records.fetch_dicts(
            db, "SELECT * FROM conversations WHERE id = ?", [conversation_id]
        )[0]
        rows = records.messages(db, conversation_id)
    for r in rows:
        r["request"] = json.loads(r["request_json"]) if r["request_json"] else None
    return conv, rows


def model_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["speaker"] != "researcher"]


def scripted(request: Request) -> Answer:
    """The thinker reasons (in a field) before a visible reply; the listener just answers.

    Replies depend only on the request, so a re-run gets the same answers.
    """
    body = request.body
    n = len(body["messages"])
    if body["model"] == "thinker":
        return Answer(f"visible {n}", reasoning=f"{SECRET} {n}: should I say more?")
    return Answer(f"heard {n}")


@pytest.fixture
def server():
    srv = OpenAIServer(scripted)
    with srv:
        yield srv


def loopback(server: OpenAIServer, rounds: int = 2, **kwargs) -> DialogueSetup:
    return DialogueSetup(a=THINKER, b=LISTENER, rounds=rounds, opening=OPENING, frame=FRAME,
                         seed=5, max_tokens=16, attempts=1, api_base=server.url, **kwargs)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The real embedded models


@pytest.mark.model
def test_two_embedded_models_talk_for_two_rounds_each_with_its_own_history(archive: Path) -> None:
    setup = DialogueSetup(a=SMOL, b=GEMMA, rounds=2, opening=OPENING, frame=FRAME, seed=7,
                          max_tokens=16, system_b="You are B.")  # fmt: skip
    session = dialogue.run_dialogue(archive, setup)
    assert (session.status, session.stop_reason) == ("finished", "completed 2 rounds")

    conv, rows = stored(archive, session.conversation_id)
    assert (conv["kind"], conv["model_id"], conv["model_b_id"]) == ("dialogue", SMOL, GEMMA)
    assert (conv["status"], conv["stop_reason"]) == ("finished", "completed 2 rounds")
    opening, *turns = rows
    assert (opening["speaker"], opening["role"], opening["phase"], opening["content"]) == (
        "researcher", "user", "opening", OPENING
    )  # fmt: skip
    assert len(turns) == 4
    assert [t["speaker"] for t in turns] == [SMOL, GEMMA, SMOL, GEMMA]
    assert [t["side"] for t in turns] == ["a", "b", "a", "b"]
    assert {t["role"] for t in turns} == {"assistant"} and all(t["error"] is None for t in turns)
    a1, b1, a2, b2 = (t["content"] for t in turns)
    assert all(text.strip() for text in (a1, b1, a2, b2))
    sent = [t["request"]["messages"] for t in turns]
    b_sys = {"role": "system", "content": "You are B."}
    assert sent[0] == [user(OPENING)]
    assert sent[1] == [b_sys, user(framed(a1))]
    assert sent[2] == [user(OPENING), bot(a1), user(framed(b1))]
    assert sent[3] == [b_sys, user(framed(a1)), bot(b1), user(framed(a2))]
    assert {json.dumps(t["request"]["params"]) for t in turns} == {
        json.dumps(
            {
                "temperature": 0.7,
                "seed": 7,
                "max_tokens": 16,
                "timeout_s": 120.0,
                "think": None,
                "num_ctx": 4096,
                "json_schema": None,
            }  # the dialogue's one window: the embedded default fits it
        )  # fmt: skip
    }

    with connect(archive) as db:
        run = records.get_run(db, conv["run_id"])
    assert run is not None and run.kind == "dialogue" and run.params is not None
    for key in ("a", "b", "rounds", "opening", "frame", "system_a", "system_b", "temperature",
                "seed", "max_tokens"):  # fmt: skip
        assert run.params[key] == getattr(setup, key)

    # A re-run replays the same setup into a new run: identical requests, turn by turn.
    again = replay.rerun(archive, session.conversation_id)
    assert again.run_id != conv["run_id"] and again.status == "finished"
    _, copy = stored(archive, again.conversation_id)
    assert [r["request"] for r in model_rows(copy)] == [t["request"] for t in turns]


@pytest.mark.model
def test_thinking_from_a_hosted_side_never_reaches_the_embedded_side(
    archive: Path, server: OpenAIServer
) -> None:
    setup = DialogueSetup(a=THINKER, b=SMOL, rounds=1, opening=OPENING, seed=1, max_tokens=8,
                          api_base=server.url)  # fmt: skip
    session = dialogue.run_dialogue(archive, setup)
    _, rows = stored(archive, session.conversation_id)
    a, b = model_rows(rows)
    assert a["reasoning"].startswith(SECRET) and a["reasoning_source"] == "field"
    assert b["request"]["messages"] == [user(a["content"])]
    assert SECRET not in json.dumps(b["request"])


# ---------------------------------------------------------------------------------------------
# Loopback models: thinking, early stops, checkpoints, re-runs


def test_only_the_visible_reply_crosses(archive: Path, server: OpenAIServer) -> None:
    session = dialogue.run_dialogue(archive, loopback(server, rounds=3))
    assert session.status == "finished"
    _, rows = stored(archive, session.conversation_id)
    thinker = [r for r in model_rows(rows) if r["side"] == "a"]
    assert len(thinker) == 3 and all(SECRET in r["reasoning"] for r in thinker)
    to_listener = [r.body for r in server.requests if r.body["model"] == "listener"]
    assert len(to_listener) == 3
    assert all(SECRET not in json.dumps(body) for body in to_listener)
    # Nor is it sent back to the thinker itself: its history holds its visible replies.
    assert all(SECRET not in json.dumps(r.body) for r in server.requests)
    assert to_listener[-1]["messages"][-1] == user(framed(thinker[-1]["content"]))


def test_inline_think_tags_are_split_off_and_kept_back(archive: Path) -> None:
    def inline(request: Request) -> Answer:
        if request.body["model"] == "thinker":
            return Answer(f"<think>{SECRET} inline</think>The answer.")
        return Answer("ok")

    with OpenAIServer(inline) as url:
        setup = DialogueSetup(a=THINKER, b=LISTENER, rounds=1, opening=OPENING, api_base=url)
        session = dialogue.run_dialogue(archive, setup)
        _, rows = stored(archive, session.conversation_id)
    a, b = model_rows(rows)
    assert (a["content"], a["reasoning_source"]) == ("The answer.", "tags")
    assert b["request"]["messages"] == [user("The answer.")]


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        (Answer(""), "stopped", "empty reply from B (openai/listener) in round 1 (finish reason stop)"),
        (Answer("", reasoning="thinking all along", finish_reason="length"), "stopped",
         "empty reply from B (openai/listener) in round 1 (finish reason length, 18 characters of thinking and no answer)"),
        (Fail(400, "no such model"), "error", "error from B (openai/listener) in round 1: "),
    ],
)  # fmt: skip
def test_an_empty_reply_or_an_error_stops_the_dialogue_and_says_why(
    archive: Path, action, status: str, reason: str
) -> None:
    def script(request: Request):
        return action if request.body["model"] == "listener" else Answer("hello")

    with OpenAIServer(script) as url:
        setup = DialogueSetup(a=THINKER, b=LISTENER, rounds=3, opening=OPENING, attempts=1,
                              api_base=url)  # fmt: skip
        session = dialogue.run_dialogue(archive, setup)
    assert session.status == status and session.stop_reason.startswith(reason)
    conv, rows = stored(archive, session.conversation_id)
    assert (conv["status"], conv["stop_reason"]) == (session.status, session.stop_reason)
    a, b = model_rows(rows)  # nothing after the failed turn
    assert b["side"] == "b" and (b["error"] is not None) == (status == "error")
    if status == "error":
        assert b["request"]["messages"] == [user("hello")]  # the request is kept even so
    with pytest.raises(UserError, match="has ended"):
        DialogueSession.load(archive, session.conversation_id).step()


def test_checkpoints_inject_and_stop_and_a_rerun_replays_them(
    archive: Path, server: OpenAIServer
) -> None:
    session = DialogueSession.start(archive, loopback(server, rounds=4))
    session.step()
    # Reloading from the archive is all the app does between rounds.
    again = DialogueSession.load(archive, session.conversation_id)
    assert again.rounds_done == 1 and again.running
    again.inject("b", "Researcher here: be brief.")
    again.step()
    again.stop("enough for today")
    assert (again.status, again.stop_reason) == ("stopped", "researcher: enough for today")

    conv, rows = stored(archive, session.conversation_id)
    note = next(r for r in rows if r["phase"] == "inject")
    assert (note["speaker"], note["role"], note["side"]) == ("researcher", "user", "b")
    b2 = [r for r in model_rows(rows) if r["side"] == "b"][-1]
    a2 = [r for r in model_rows(rows) if r["side"] == "a"][-1]
    # Delivered with B's next user message, before A's reply of that round.
    assert b2["request"]["messages"][-1] == user(
        "Researcher here: be brief.\n\n" + framed(a2["content"])
    )
    # A never saw the note.
    assert all("Researcher here" not in json.dumps(r["request"]) for r in model_rows(rows)
               if r["side"] == "a")  # fmt: skip
    with pytest.raises(UserError):
        again.inject("c", "nobody")

    result = replay.rerun(archive, session.conversation_id)
    assert result.run_id != conv["run_id"]
    assert (result.status, result.stop_reason) == ("stopped", "researcher: enough for today")
    new_conv, copy = stored(archive, result.conversation_id)
    assert [(r["speaker"], r["phase"], r["side"], r["content"]) for r in copy] == [
        (r["speaker"], r["phase"], r["side"], r["content"]) for r in rows
    ]
    assert [r["request"] for r in model_rows(copy)] == [r["request"] for r in model_rows(rows)]
    old_params, new_params = json.loads(conv["params_json"]), json.loads(new_conv["params_json"])
    assert new_params.pop("rerun_of") == session.conversation_id
    assert {**new_params, "name": None} == {**old_params, "name": None}


def test_frame_and_opening() -> None:
    assert dialogue.frame_reply(None, "hi") == "hi"
    assert dialogue.frame_reply("She said «{reply}», then?", "hi") == "She said «hi», then?"
    assert dialogue.frame_reply("The other model said:", "hi") == "The other model said:\n\nhi"
    assert dialogue.frame_reply("{x} {reply}", "{reply}") == "{x} {reply}"
    assert dialogue.read_opening("  Hello there.  ") == ("Hello there.", None)
    with pytest.raises(UserError, match="does not exist"):
        dialogue.read_opening("missing-opening.txt")
    with pytest.raises(UserError, match="empty"):
        dialogue.read_opening("   ")


# ---------------------------------------------------------------------------------------------
# The CLI


def test_cli_dialogue_json_and_rerun(archive: Path, server: OpenAIServer, tmp_path: Path) -> None:
    opening = tmp_path / "opening.txt"
    opening.write_text(OPENING + "\n", encoding="utf-8")
    runner = CliRunner()
    base = ["--archive", str(archive)]
    out = runner.invoke(cli, [*base, "dialogue", "--a", THINKER, "--b", LISTENER, "--rounds", "2",
                              "--opening", str(opening), "--frame", FRAME, "--seed", "5",
                              "--max-tokens", "16", "--api-base", server.url, "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert list(data) == ["conversation", "turns"]
    assert [list(t) for t in data["turns"]] == [["speaker", "content", "reasoning"]] * 4
    assert [t["speaker"] for t in data["turns"]] == [THINKER, LISTENER] * 2
    assert data["turns"][0] == {"speaker": THINKER, "content": "visible 1",
                                "reasoning": f"{SECRET} 1: should I say more?"}  # fmt: skip
    conv, _ = stored(archive, data["conversation"])
    assert json.loads(conv["params_json"])["opening_source"] == str(opening)

    again = runner.invoke(cli, [*base, "rerun", data["conversation"], "--json"])
    assert again.exit_code == 0, again.output
    replayed = json.loads(again.output)
    assert replayed["conversation"] != data["conversation"]
    assert replayed["turns"] == data["turns"]

    plain = runner.invoke(cli, [*base, "dialogue", "--a", THINKER, "--b", LISTENER, "--rounds",
                                "1", "--opening", "Hi", "--api-base", server.url])  # fmt: skip
    assert plain.exit_code == 0 and "completed 1 round" in plain.output
    assert "[A] openai/thinker: visible 1" in plain.output


def test_cli_user_errors_are_one_line(archive: Path) -> None:
    runner = CliRunner()
    base = ["--archive", str(archive)]
    missing = runner.invoke(cli, [*base, "dialogue", "--a", SMOL, "--b", SMOL, "--opening",
                                  "nowhere/opening.txt"])  # fmt: skip
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        "error: opening file nowhere/opening.txt does not exist"
    ]
    unknown = runner.invoke(cli, [*base, "rerun", "nope"])
    assert unknown.exit_code == 2 and "no conversation 'nope'" in unknown.output


# ---------------------------------------------------------------------------------------------
# The app page (AppTest)


def _page(archive: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    return at.switch_page(PAGE).run()


def _conversation(at: AppTest) -> str:
    return at.session_state["dialogue_conversation"]


@pytest.mark.model
def test_page_checkpoint_inject_continue_stop_and_rerun(archive: Path, monkeypatch) -> None:
    at = _page(archive, monkeypatch)
    assert not at.exception
    assert at.selectbox(key="dlg_a").value == SMOL and at.selectbox(key="dlg_b").value == GEMMA
    at.number_input(key="dlg_rounds").set_value(3)
    at.text_area(key="dlg_opening").input(OPENING)
    at.text_input(key="dlg_frame").input(FRAME)
    at.number_input(key="dlg_seed").set_value(7)
    at.number_input(key="dlg_max_tokens").set_value(12)
    at.button(key="dlg_start").click().run()
    assert not at.exception and not at.error
    conv_id = _conversation(at)
    assert any("round 1 of 3" in c.value for c in at.caption)
    assert len(at.chat_message) == 3  # the opening, A, B

    at.radio(key="dlg_inject_side").set_value("b")
    at.text_area(key="dlg_inject_text").input("A NOTE FROM THE RESEARCHER")
    at.button(key="dlg_inject").click().run()
    assert at.success and "Delivered to B" in at.success[0].value
    at.button(key="dlg_continue").click().run()
    assert not at.error
    at.button(key="dlg_stop").click().run()
    assert not at.exception and at.info
    assert "researcher" in at.info[0].value
    assert not [b for b in at.button if b.key == "dlg_continue"]  # no checkpoint any more

    conv, rows = stored(archive, conv_id)
    assert (conv["status"], conv["stop_reason"]) == (
        "stopped",
        "researcher: stopped by the researcher",
    )
    assert [(r["speaker"], r["phase"]) for r in rows] == [
        ("researcher", "opening"), (SMOL, "dialogue"), (GEMMA, "dialogue"),
        ("researcher", "inject"), (SMOL, "dialogue"), (GEMMA, "dialogue"),
    ]  # fmt: skip
    assert "A NOTE FROM THE RESEARCHER" in rows[5]["request"]["messages"][-1]["content"]
    assert "A NOTE" not in json.dumps(rows[4]["request"])

    at.button(key="dlg_rerun").click().run()
    assert not at.exception and not at.error
    new_id = _conversation(at)
    assert new_id != conv_id
    new_conv, copy = stored(archive, new_id)
    assert new_conv["status"] == "stopped" and len(copy) == len(rows)
    assert [r["request"]["params"] for r in model_rows(copy)] == [
        r["request"]["params"] for r in model_rows(rows)
    ]


def test_page_reruns_a_batch_conversation_by_id(archive: Path, monkeypatch, tmp_path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("id: one\ntitle: One\nprompts:\n  - id: hi\n    text: Say <b>hi</b>.\n")
    with OpenAIServer(default=Answer("<script>alert(1)</script> hello")) as url:
        opts = batch.BatchOptions(prompt_ref=str(one), model_refs=("openai/x",), api_base=url,
                                  max_tokens=8, seed=2)  # fmt: skip
        summary = asyncio.run(batch.run(archive, opts))
        with connect(archive) as db:
            conv_id = records.conversation_ids(db, summary.run_id)["openai/x|cold|1|hi"]
        at = _page(archive, monkeypatch)
        at.text_input(key="dlg_conv_id").input(conv_id).run()
        at.button(key="dlg_open").click().run()
        assert at.error and "no dialogue" in at.error[0].value  # a batch is re-run, not continued
        at.button(key="dlg_rerun_id").click().run()
    assert not at.exception and at.success and "Re-ran" in at.success[0].value
    new_id = at.session_state["dialogue_rerun"]
    assert new_id != conv_id
    shown = [c.value for c in at.code]
    assert "<script>alert(1)</script> hello" in shown  # as text, in a code block
    _, old_rows = stored(archive, conv_id)
    _, new_rows = stored(archive, new_id)
    assert [r["request"] for r in new_rows] == [r["request"] for r in old_rows]


def test_the_last_round_waits_at_a_checkpoint_and_can_go_one_further(
    archive: Path, server: OpenAIServer
) -> None:
    session = DialogueSession.start(archive, loopback(server, rounds=1))
    session.step(hold=True)
    assert session.running and session.planned_rounds_done  # a checkpoint after round 1 of 1
    note = session.inject("b", "Researcher here.")
    assert dialogue.undelivered(session.turns) == {note.seq}
    session.step(hold=True)  # one more round: the plan grows, stored so a re-run repeats it
    assert (session.rounds_done, session.setup.rounds) == (2, 2)
    assert dialogue.undelivered(session.turns) == set()
    conv, _ = stored(archive, session.conversation_id)
    with connect(archive) as db:
        run = records.fetch_dicts(db, "SELECT * FROM runs WHERE id = ?", [conv["run_id"]])[0]
    assert (
        json.loads(conv["params_json"])["rounds"] == json.loads(run["params_json"])["rounds"] == 2
    )
    assert run["total_cells"] == 4
    late = session.inject("a", "Never heard.")
    session.stop()
    again = DialogueSession.load(archive, session.conversation_id)
    assert dialogue.undelivered(again.turns) == {late.seq}

    other = DialogueSession.start(archive, loopback(server, rounds=1))
    other.step(hold=True)
    other.finish()
    assert (other.status, other.stop_reason) == ("finished", "completed 1 round")
    plain = DialogueSession.start(archive, loopback(server, rounds=1))
    plain.step()  # the CLI's way: the plan's last round ends it
    assert plain.status == "finished"


def test_page_says_who_replies_holds_a_checkpoint_and_keeps_settings(
    archive: Path, server: OpenAIServer, monkeypatch, tmp_path: Path
) -> None:
    catalogue = tmp_path / "models.toml"
    catalogue.write_text("".join(f'[models.{m}]\nbackend = "openai/{m}"\napi_base = "{server.url}"\n'
                                 for m in ("thinker", "listener")))  # fmt: skip
    monkeypatch.setenv("DIALOGUES_MODELS", str(catalogue))
    at = _page(archive, monkeypatch)
    at.selectbox(key="dlg_a").set_value("thinker")
    at.selectbox(key="dlg_b").set_value("listener")
    at.number_input(key="dlg_rounds").set_value(1)
    at.text_area(key="dlg_opening").input(OPENING)
    at.text_input(key="dlg_api_base").input(server.url)
    at.number_input(key="dlg_max_tokens").set_value(16)
    at.button(key="dlg_start").click().run()
    assert not at.exception and not at.error
    assert any("1 planned rounds are done" in c.value for c in at.caption)
    assert at.button(key="dlg_finish") and at.button(key="dlg_continue")
    at.radio(key="dlg_inject_side").set_value("b")
    at.text_area(key="dlg_inject_text").input("Too late for this one.")
    at.button(key="dlg_inject").click().run()
    assert any("Not delivered yet" in w.value for w in at.warning)
    at.button(key="dlg_stop").click().run()
    assert any("Never delivered" in w.value for w in at.warning)
    at.button(key="dlg_new").click().run()
    assert not at.exception
    assert at.text_area(key="dlg_opening").value == OPENING
    assert at.number_input(key="dlg_rounds").value == 1
    assert at.text_input(key="dlg_api_base").value == server.url
    assert at.selectbox(key="dlg_a").value == "thinker"
    assert at.selectbox(key="dlg_b").value == "listener"
