"""`dialogues app`: one stop stops the server, no bind beyond loopback without access, access-add."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import free_port, wait_healthy

from dialogues.cli import cli
from dialogues.domain import access


def serving(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def streamlit_on(port: int) -> list[int]:
    """Pids of any process whose command line serves this port."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and str(port).encode() in args:
            found.append(int(proc.name))
    return found


def test_stopping_the_app_stops_streamlit(archive: Path, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "dialogues", "--archive", str(archive), "app", "--port",
           str(port), "--access", str(tmp_path / "none.toml")]  # fmt: skip
    app = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", app)
        app.send_signal(signal.SIGTERM)  # what a service manager or a harness sends
        app.wait(timeout=20)
        assert not serving(port)
        assert streamlit_on(port) == []
    finally:
        for pid in [app.pid, *streamlit_on(port)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_non_loopback_host_is_refused_without_access(archive: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--archive", str(archive), "app", "--host", "0.0.0.0",
                                      "--access", str(tmp_path / "access.toml")])  # fmt: skip
    assert result.exit_code == 2
    assert "--host 0.0.0.0" in result.output and "access-add --shared" in result.output


def test_access_add_stores_a_hash_of_the_prompted_secret(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    runner = CliRunner()
    result = runner.invoke(cli, ["access-add", "ana", "--access", str(path)],
                           input="anas-password\nanas-password\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "anas-password" not in path.read_text()
    assert access.who(access.load(path), "ana", "anas-password") == "ana"
    result = runner.invoke(cli, ["access-add", "--access", str(path), "--secret", "x" * 9])
    assert result.exit_code == 2 and "NAME or --shared" in result.output
    result = runner.invoke(
        cli, ["access-add", "--shared", "--access", str(path), "--secret", "short"]
    )
    assert result.exit_code == 2 and "at least 8" in result.output
