"""The command line: documented, machine-readable, and one clear line for every user error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import GEMMA, SMOL, lock_held

from dialogues import cli as cli_module
from dialogues.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def all_commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        names.append(full)
        if isinstance(command, click.Group):
            names += all_commands(command, full + " ")
    return names


def test_every_command_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [c for c in all_commands(cli) if f"dialogues {c}" not in text]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["scripts/start", "scripts/test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "exec scripts/test" in ci


def test_models_lists_builtins_with_metadata(archive: Path) -> None:
    result = invoke("--archive", str(archive), "models", "--json")
    data = json.loads(result.output)
    by_id = {m["id"]: m for m in data["models"]}
    assert by_id[SMOL]["training"] == "instruct" and by_id[SMOL]["parameters"] == 135_000_000
    assert by_id[GEMMA]["training"] == "base" and by_id[GEMMA]["family"] == "gemma3"
    assert by_id[GEMMA]["quantization"] == "Q4_K_M" and by_id[GEMMA]["context_length"] == 32768
    # No Ollama answers in the tests: said plainly, and the other back ends are still listed.
    assert any("no Ollama server answers" in n for n in data["notes"])


def test_runs_json_has_the_documented_keys(archive: Path, independent_set: Path) -> None:
    from servers import Answer, OpenAIServer

    with OpenAIServer(default=Answer("ok")) as url:
        ran = invoke("--archive", str(archive), "run", "--prompts", str(independent_set),
                     "--model", "openai/loopback", "--api-base", url, "--quiet", "--json")  # fmt: skip
    assert json.loads(ran.output)["done"] == 2
    rows = json.loads(invoke("--archive", str(archive), "runs", "--json").output)
    assert len(rows) == 1
    assert {"id", "name", "total", "done", "errors"} <= set(rows[0])
    assert (rows[0]["total"], rows[0]["done"], rows[0]["errors"]) == (2, 2, 0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real entry point in a subprocess: what a researcher sees, traceback or not."""
    return subprocess.run([sys.executable, "-m", "dialogues", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "args", "code", "needle"),
    [
        ("bad-yaml", ["run", "--prompts", "{dir}/bad.yaml", "--model", SMOL], 2, "bad.yaml"),
        ("none", ["run", "--prompts", "sei-battery", "--model", "nonsense"], 2, "unknown model"),
        ("none", ["run", "--prompts", "sei-battery", "--model", "gguf/nope"], 2, "no built-in"),
        ("none", ["run", "--prompts", "no-such-set", "--model", SMOL], 2, "no prompt set"),
        ("none", ["run", "--resume", "r-missing"], 2, "no run 'r-missing'"),
        ("not-duckdb", ["runs"], 3, "not a DuckDB database"),
    ],
)
def test_user_errors_are_one_line_without_traceback(
    tmp_path: Path, setup: str, args: list[str], code: int, needle: str
) -> None:
    archive = tmp_path / "a.duckdb"
    if setup == "bad-yaml":
        (tmp_path / "bad.yaml").write_text("id: x\nprompts: [\n")
    if setup == "not-duckdb":
        archive.write_text("hello")
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    result = run_cli("--archive", str(archive), *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_locked_archive_is_one_line_exit_3(tmp_path: Path) -> None:
    archive = tmp_path / "a.duckdb"
    assert run_cli("--archive", str(archive), "runs").returncode == 0
    with lock_held(archive):
        result = subprocess.run(
            [sys.executable, "-m", "dialogues", "--archive", str(archive), "runs"],
            capture_output=True, text=True, timeout=60,
            env={**__import__("os").environ, "DIALOGUES_LOCK_TIMEOUT": "1"},
        )  # fmt: skip
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert str(archive) in result.stderr and "in use by another process" in result.stderr


def test_app_binds_to_loopback_unless_asked(monkeypatch: pytest.MonkeyPatch, archive: Path) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(cli_module.os, "execve", lambda exe, cmd, env: seen.append(cmd))
    invoke("--archive", str(archive), "app", "--port", "8600")
    cmd = seen[0]
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    # Idle cost and privacy: no file watcher, no rerun on save, no Deploy button.
    assert cmd[cmd.index("--server.fileWatcherType") + 1] == "none"
    assert cmd[cmd.index("--server.runOnSave") + 1] == "false"
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "viewer"


def test_ollama_model_without_a_server_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--archive", str(tmp_path / "a.duckdb"), "run", "--prompts", "smoke",
                     "--model", "ollama/llama3.2")  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no Ollama server answers at http://127.0.0.1:9" in result.stderr


def test_example_catalogue_is_valid() -> None:
    from dialogues.providers import registry

    catalogue = registry.load_catalogue(README.parent / "models.example.toml")
    assert catalogue["r1-qwen-14b"].metadata["training"] == "reasoning"
    assert catalogue["local-vllm"].api_base == "http://127.0.0.1:8000/v1"
