"""Shared fixtures: a real archive file per test, real embedded models, tiny prompt sets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# No test may reach a real Ollama or a real hosted API by accident.
os.environ.setdefault("OLLAMA_HOST", "http://127.0.0.1:9")
# A developer's own access.toml must not put a sign-in form in front of every app test.
os.environ.setdefault("DIALOGUES_ACCESS", "/nonexistent/dialogues-test-access.toml")

SHARED = Path(__file__).resolve().parents[2] / "shared"
SMOL = "gguf/smollm2-135m-instruct"
GEMMA = "gguf/gemma3-270m"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A fresh archive file path (created on first connect)."""
    return tmp_path / "archive" / "test.duckdb"


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    """A two-prompt, one-conversation prompt set file."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "id: tiny\ntitle: Tiny\nmode: conversation\nkind: battery\nprompts:\n"
        "  - id: a\n    text: Say hello in three words.\n"
        "  - id: b\n    text: Now say goodbye.\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def independent_set(tmp_path: Path) -> Path:
    """A two-prompt set where every prompt is its own conversation."""
    path = tmp_path / "indep.yaml"
    path.write_text(
        "id: indep\ntitle: Independent\nmode: independent\nprompts:\n"
        "  - id: q1\n    text: What is two plus two?\n"
        "  - id: q2\n    text: Name a colour.\n",
        encoding="utf-8",
    )
    return path


def need_chromium() -> str:
    """Path of Debian's chromium; skip without it, except in CI where it is a setup failure."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; scripts/test installs it with apt-get")
    pytest.skip("chromium is not installed (scripts/test installs it)")


@pytest.fixture
def page():
    """A page in Debian's chromium, driven by Playwright (never a downloaded browser)."""
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            # Background networking reaches for Google's hosts, which this network refuses.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            tab = browser.new_page()
            tab.set_default_timeout(30_000)
            yield tab
        finally:
            browser.close()


@contextmanager
def lock_held(path: Path, seconds: float = 60) -> Iterator[subprocess.Popen]:
    """Another process holds the archive's file lock for `seconds` (or until the block ends)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(float(sys.argv[2])); c.close()", str(path), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(health: str, proc: subprocess.Popen, log_path: Path | None = None) -> None:
    """Poll a server's health URL until it answers HTTP 200; raise (with the end of its log)
    if the process exits first or a minute passes."""
    import time
    from urllib.request import urlopen

    deadline = time.monotonic() + 60
    while True:
        try:
            with urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log = log_path.read_text()[-2000:] if log_path else ""
            why = (
                f"exited with {proc.returncode}" if proc.poll() is not None else "no answer in 60 s"
            )
            raise RuntimeError(f"{health}: {why}\n{log}")
        time.sleep(0.2)


@contextmanager
def served(cmd: list[str], health: str, log_path: Path, **popen: Any) -> Iterator[None]:
    """A real server process (`cmd`), up once `health` answers HTTP 200; stopped afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **popen)
        try:
            wait_healthy(health, proc, log_path)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def streamlit_server(script: Path, env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real Streamlit server running `script` on loopback; yields its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    with served(cmd, f"{url}/_stcore/health", log_path, env=env,
                cwd=Path(__file__).resolve().parents[1]):  # fmt: skip
        yield url
