"""Idle cost of the workbench: CPU seconds the app uses while one page sits open in Chromium.

Starts the app on a fresh archive, opens the Run page in Debian's chromium, waits until it has
drawn, then reads the server's CPU time before and after holding the page open. `dialogues app`
(file watcher and run-on-save off) is measured beside plain `streamlit run app.py` with
Streamlit's defaults (the watcher on), run from the project folder as people used to.

    .venv/bin/python bench/idle_app.py [--seconds 30] [--only-app]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def command(kind: str, archive: Path, port: int) -> list[str]:
    if kind == "dialogues app":
        return [sys.executable, "-m", "dialogues", "--archive", str(archive), "app",
                "--port", str(port)]  # fmt: skip
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
            "--server.headless", "true", "--server.fileWatcherType", "auto",
            "--browser.gatherUsageStats", "false"]  # fmt: skip


def measure(kind: str, seconds: float, home: Path) -> float:
    """CPU seconds the server used while a drawn page stayed open for `seconds`."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    archive = home / f"{port}.duckdb"
    env = dict(os.environ, HOME=str(home), DIALOGUES_ARCHIVE=str(archive))
    server = subprocess.Popen(command(kind, archive, port), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("button", name="Start").wait_for(timeout=120_000)
            time.sleep(2.0)  # let the first run's tail settle
            before = cpu_seconds(server.pid)
            time.sleep(seconds)
            used = cpu_seconds(server.pid) - before
            browser.close()
        return used
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only-app", action="store_true", help="Skip the Streamlit-defaults row.")
    args = parser.parse_args()
    kinds = ["dialogues app"] if args.only_app else ["dialogues app", "streamlit defaults"]
    print("| server | idle page open | CPU s | share of one core |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            used = measure(kind, args.seconds, Path(tmp))
            print(f"| {kind} | {args.seconds:.0f} s | {used:.2f} | {used / args.seconds:.1%} |")


if __name__ == "__main__":
    main()
