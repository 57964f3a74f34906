"""Per-model settings in models.toml: checked per back end, layered, and sent as given."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import OllamaServer, OpenAIServer

from dialogues.cli import cli
from dialogues.domain.errors import UserError
from dialogues.providers import params, registry
from dialogues.providers.base import GenParams
from dialogues.providers.hosted import LM_STUDIO_BASE, HostedProvider
from dialogues.providers.ollama import OllamaProvider

HELLO = [{"role": "user", "content": "What is it like to read this?"}]


def catalogue(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "backend, table, field, problem",
    [
        ("ollama/qwen3:8b", "topp = 0.9", "topp", "not a setting the workbench knows"),
        ("ollama/qwen3:8b", "top_p = 1.5", "top_p", "must be a number from 0 to 1, not 1.5"),
        ("ollama/qwen3:8b", 'num_ctx = "8k"', "num_ctx", "must be a whole number of at least 256"),
        ("ollama/qwen3:8b", 'reasoning_effort = "minimal"', "reasoning_effort", "must be one of"),
        ("openai/gpt-5", "num_ctx = 8192", "num_ctx", "a hosted back end does not take it"),
        ("gguf/smollm2-135m-instruct", 'reasoning_effort = "low"', "reasoning_effort",
         "a gguf back end does not take it"),
        ("openai/gpt-5", 'stop = "x"', "stop", "must be a list of non-empty strings"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_file_and_field(tmp_path, backend, table, field, problem):
    path = catalogue(tmp_path, f'[models.m]\nbackend = "{backend}"\n[models.m.params]\n{table}\n')
    with pytest.raises(UserError) as caught:
        registry.load_catalogue(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: [models.m.params] {field}: ") and problem in text
    assert "\n" not in text


def test_the_cli_refuses_a_bad_setting_with_exit_2_and_stores_nothing(tmp_path):
    path = catalogue(tmp_path, '[models.m]\nbackend = "ollama/x"\n[models.m.params]\ntop_k = 0\n')
    archive = tmp_path / "a.duckdb"
    result = CliRunner().invoke(cli, ["--archive", str(archive), "--models-file", str(path),
                                      "run", "--prompts", "smoke", "--model", "m"])  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().endswith(
        f"{path}: [models.m.params] top_k: must be a whole number of at least 1, not 0"
    )
    assert not archive.exists()


def test_good_settings_are_kept_per_model(tmp_path):
    path = catalogue(
        tmp_path,
        '[models.r]\nbackend = "ollama/qwen3:8b"\n'
        '[models.r.params]\nreasoning_effort = "none"\nnum_ctx = 8192\nsystem = "Be brief."\n'
        '[models.h]\nbackend = "openai/gpt-5"\n',
    )
    assert registry.model_params(["r", "h", "ollama/other"], path) == {
        "r": {"reasoning_effort": "none", "num_ctx": 8192, "system": "Be brief."}
    }


def test_apply_lays_settings_over_the_run_except_explicit_flags():
    base = GenParams(temperature=0.7, max_tokens=256, seed=3)
    own = {"temperature": 0.2, "max_tokens": 64, "top_p": 0.9, "top_k": 20, "stop": ["END"],
           "system": "ignored here"}  # fmt: skip
    gen = params.apply(base, own)
    assert (gen.temperature, gen.max_tokens, gen.top_p, gen.seed) == (0.2, 64, 0.9, 3)
    assert gen.options == (("stop", ("END",)), ("top_k", 20))
    kept = params.apply(base, own, keep=("temperature",))
    assert (kept.temperature, kept.max_tokens) == (0.7, 64)
    hash(gen)  # GenParams stays hashable: the runner caches its JSON per value
    assert params.as_record(gen)["options"] == {"stop": ["END"], "top_k": 20}
    assert "num_ctx" not in params.as_record(base) and "options" not in params.as_record(base)


def test_ollama_gets_effort_as_think_level_and_the_window_and_options():
    server = OllamaServer()
    with server as url:
        p = OllamaProvider("qwen3:8b", host=url)
        gen = params.apply(GenParams(max_tokens=16, timeout_s=5),
                           {"reasoning_effort": "high", "num_ctx": 8192, "top_p": 0.8,
                            "top_k": 20, "repeat_penalty": 1.1})  # fmt: skip
        asyncio.run(p.chat(HELLO, gen))
        asyncio.run(p.chat(HELLO, params.apply(gen, {"reasoning_effort": "none"})))
    first, second = (r.body for r in server.requests if r.path == "/api/chat")
    assert first["think"] == "high" and second["think"] is False
    assert first["options"] == {"temperature": 0.7, "num_predict": 16, "top_p": 0.8,
                                "num_ctx": 8192, "top_k": 20, "repeat_penalty": 1.1}  # fmt: skip


def test_lm_studio_by_name_defaults_to_its_local_server(monkeypatch):
    monkeypatch.delenv("LM_STUDIO_API_BASE", raising=False)
    provider = registry.resolve("lm_studio/qwen3-8b")
    assert isinstance(provider, HostedProvider)
    assert (
        provider.api_base == provider.info.api_base == LM_STUDIO_BASE == "http://127.0.0.1:1234/v1"
    )


def test_lm_studio_through_litellm_sends_settings_to_a_loopback_server(tmp_path):
    server = OpenAIServer()
    with server as url:
        path = catalogue(
            tmp_path,
            f'[models.lms]\nbackend = "lm_studio/qwen3-8b"\napi_base = "{url}"\n'
            '[models.lms.params]\nreasoning_effort = "none"\ntop_p = 0.9\nmax_tokens = 12\n',
        )
        cat = registry.load_catalogue(path)
        provider = registry.resolve("lms", cat)
        gen = params.apply(GenParams(timeout_s=5), cat["lms"].params)
        reply = asyncio.run(provider.chat(HELLO, gen))
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    body = request.body
    assert (body["model"], body["reasoning_effort"], body["top_p"], body["max_tokens"]) == (
        "qwen3-8b", "none", 0.9, 12)  # fmt: skip
    assert reply.content == "Hello from the loopback server."


def test_the_readme_models_example_is_a_valid_catalogue(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("# models.toml (models.example.toml has more)")
    snippet = readme[start : readme.index("```", start)]
    parsed = registry.load_catalogue(catalogue(tmp_path, snippet))
    assert parsed["r1-14b"].params["reasoning_effort"] == "none"
