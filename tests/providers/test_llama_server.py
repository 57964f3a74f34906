"""The hosted path end to end against a real OpenAI-compatible server with a real model.

llama-cpp-python's own server runs SmolLM2 on loopback; the workbench reaches it through
litellm as `openai/…` with an api_base, the way LM Studio, vLLM and llama.cpp servers are used.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SMOL, free_port, served

from dialogues.providers import gguf
from dialogues.run import batch
from dialogues.store import connect, records

pytestmark = pytest.mark.model
WINDOW = 1024  # the server's n_ctx


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """`python -m llama_cpp.server` with SmolLM2 on a free loopback port; its /v1 URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf.builtin_path(SMOL)),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(WINDOW), "--n_threads", "2"]  # fmt: skip
    with served(cmd, f"{url}/models", log):
        yield url


def replies(archive: Path) -> list[dict]:
    with connect(archive) as db:
        return records.fetch_dicts(
            db, "SELECT * FROM messages WHERE role = 'assistant' ORDER BY seq, attempt"
        )


def test_a_batch_through_litellm_to_a_real_server(llama_server, tmp_path, tiny_set):
    models = tmp_path / "models.toml"
    models.write_text(
        f'[models.smol-server]\nbackend = "openai/smollm2"\napi_base = "{llama_server}"\n'
        f"context_length = {WINDOW}\n"
        '[models.smol-server.params]\ntop_p = 0.9\nmax_tokens = 16\nsystem = "Answer briefly."\n',
        encoding="utf-8",
    )
    archive = tmp_path / "a.duckdb"
    opts = batch.BatchOptions(prompt_ref=str(tiny_set), model_refs=("smol-server",),
                              models_file=models, seed=3, temperature=0.0)  # fmt: skip
    summary = asyncio.run(batch.run(archive, opts))
    assert (summary.done, summary.errors) == (2, 0)
    first, second = replies(archive)
    for row in (first, second):
        assert row["content"] and row["tokens_in"] > 0 and 0 < row["tokens_out"] <= 16
        request = json.loads(row["request_json"])
        assert request["params"]["top_p"] == 0.9 and request["params"]["max_tokens"] == 16
        assert request["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert json.loads(row["raw_json"])["usage"]["prompt_tokens"] == row["tokens_in"]
    # A real server's prompt grows by at least the reply sent back: the rule that spots cuts.
    assert second["tokens_in"] > first["tokens_in"] + first["tokens_out"] - 4


def test_a_prompt_past_the_servers_window_is_a_context_error(llama_server, tmp_path):
    long = tmp_path / "long.yaml"
    long.write_text("id: long\ntitle: Long\nprompts:\n  - id: p\n    text: "
                    + "many words here " * 400 + "\n", encoding="utf-8")  # fmt: skip
    archive = tmp_path / "a.duckdb"
    opts = batch.BatchOptions(prompt_ref=str(long), model_refs=("openai/smollm2",),
                              api_base=llama_server, max_tokens=8)  # fmt: skip
    summary = asyncio.run(batch.run(archive, opts))
    assert (summary.done, summary.errors) == (0, 1)
    (row,) = replies(archive)
    assert row["error_kind"] == "context" and f"{WINDOW} tokens" in row["error"]
