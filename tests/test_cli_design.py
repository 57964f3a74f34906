"""`dialogues run` with conditions as data: bad condition input is one line, exit 2, nothing run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SMOL

from dialogues.cli import cli
from dialogues.store import connect


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("id: bad\nframing_bfore: hi\n", "unknown key 'framing_bfore'"),
        ("id: bad\nwarmup: missing-set\n", "warmup: no prompt set called 'missing-set'"),
        ("id: bad\nparams:\n  reasoning_effort: none\n", "params.reasoning_effort: model"),
    ],
)
def test_bad_condition_is_one_line_exit_2_and_nothing_stored(
    tmp_path: Path, tiny_set: Path, text: str, needle: str
) -> None:
    archive = tmp_path / "a.duckdb"
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = CliRunner().invoke(cli, ["--archive", str(archive), "run", "--prompts",
                                      str(tiny_set), "--model", SMOL, "--condition", "cold",
                                      "--condition", str(bad)])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}") and needle in lines[0]
    if archive.exists():
        with connect(archive) as db:
            assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_an_unknown_condition_name_lists_the_shipped_ones(tmp_path: Path, tiny_set: Path) -> None:
    result = CliRunner().invoke(cli, ["--archive", str(tmp_path / "a.duckdb"), "run",
                                      "--prompts", str(tiny_set), "--model", SMOL,
                                      "--condition", "lukewarm"])  # fmt: skip
    assert result.exit_code == 2
    assert "no condition called 'lukewarm'" in result.output and "permission" in result.output
