"""The `dialogues` command: parse options, call the core, print. No logic lives here."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from dialogues import config, prompts
from dialogues.errors import ArchiveError, UserError

EXIT_USER, EXIT_ARCHIVE, EXIT_RUN_ERRORS = 2, 3, 1


def fail(message: str, code: int = EXIT_USER) -> NoReturn:
    """Print one line for a person and exit; no traceback for user errors."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_json(value: Any) -> None:
    """Machine-readable output for --json."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str, indent=2))


class Group(click.Group):
    """Turns UserError into one clear line and a meaningful exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchiveError as exc:
            fail(str(exc), EXIT_ARCHIVE)
        except Exception as exc:
            if "read-only mode" in str(exc):
                fail(f"archive {ctx.obj['archive']} is read-only; nothing was written", EXIT_ARCHIVE)
            raise
        except UserError as exc:
            fail(str(exc), EXIT_USER)


@click.group(cls=Group)
@click.option("--archive", type=click.Path(dir_okay=False), help="DuckDB archive file.")
@click.option("--models-file", type=click.Path(dir_okay=False), help="models.toml catalogue.")
@click.version_option(package_name="dialogues")
@click.pass_context
def cli(ctx: click.Context, archive: str | None, models_file: str | None) -> None:
    """A research workbench for how language models answer reflective questions."""
    ctx.obj = {
        "archive": config.archive_path(archive),
        "models_file": config.models_toml_path(models_file),
    }


def archive_of(ctx: click.Context) -> Path:
    return Path(ctx.obj["archive"])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List available models with their metadata (built-in GGUF, models.toml, Ollama)."""
    from dataclasses import asdict

    from dialogues.providers import registry

    catalogue = registry.load_catalogue(ctx.obj["models_file"])
    found, notes = registry.available(catalogue, config.ollama_host())
    if as_json:
        print_json({"models": [asdict(m) for m in found], "notes": notes})
        return
    for m in found:
        size = m.parameter_size or (f"{m.parameters:,}" if m.parameters else "?")
        click.echo(
            f"{m.id:40} {m.provider:7} {m.family or '?':16} {size:>8} "
            f"{m.quantization or '-':8} {m.training or '-'}"
        )
    for note in notes:
        click.echo(f"note: {note}", err=True)


@cli.command()
@click.option("--prompts", "prompt_ref", help="Prompt-set id (file stem in prompts/) or path.")
@click.option("--model", "model_refs", multiple=True, help="Model (repeatable).")
@click.option("--condition", type=click.Choice(["cold", "warm", "both"]), default="cold")
@click.option("--warmup", default="warmup-default", show_default=True, help="Warm-up set.")
@click.option("--repeats", type=click.IntRange(1), default=1, show_default=True)
@click.option("--concurrency", type=click.IntRange(1), default=4, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Per call, s.")
@click.option("--api-base", default=None, help="OpenAI-compatible server for hosted models.")
@click.option("--system", "system_prompt", default=None, help="System prompt for every call.")
@click.option("--name", default=None, help="A name for the run.")
@click.option("--resume", "resume_id", default=None, help="Finish the missing cells of RUN.")
@click.option("--retry-errors", is_flag=True, help="With --resume, also redo failed cells.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--run-id-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the run id to this file as soon as the run is created.")
@click.pass_context
def run(ctx: click.Context, **opts: Any) -> None:
    """Send a prompt set to one or more models, several times each, into the archive."""
    from dialogues import batch

    archive = archive_of(ctx)
    request = batch.BatchOptions(models_file=ctx.obj["models_file"], **opts)
    summary = asyncio.run(batch.run(archive, request, progress=not opts["quiet"]))
    out = {"run": summary.run_id, "total": summary.total, "done": summary.done,
           "errors": summary.errors,
           "per_model": {k: vars(v) for k, v in summary.per_model.items()}}  # fmt: skip
    if opts["as_json"]:
        print_json(out)
    else:
        click.echo(
            f"run {summary.run_id}: {summary.done} of {summary.total} answered, "
            f"{summary.errors} failed"
        )
    if summary.errors:
        sys.exit(EXIT_RUN_ERRORS)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """List runs with cells planned, answered and failed."""
    from dialogues.store import connect, records

    with connect(archive_of(ctx)) as db:
        rows = records.list_runs(db)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {str(r['created_at'])[:19]}  {r['name'] or '-':20} {r['set_id'] or '-':14}"
            f" {r['done']}/{r['total']} done, {r['errors']} errors"
        )


@cli.command("prompts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_prompts(as_json: bool) -> None:
    """List the shipped prompt sets and check that each file is valid."""
    rows = []
    for path in prompts.available():
        ps = prompts.load(path)
        rows.append({"id": ps.id, "file": path.name, "title": ps.title, "mode": ps.mode,
                     "kind": ps.kind, "prompts": len(ps.prompts), "version": ps.version_hash})  # fmt: skip
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:16} {r['prompts']:4} prompts  {r['mode']:12} {r['title']}")


@cli.command()
@click.option("--port", type=int, default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.pass_context
def app(ctx: click.Context, port: int, host: str) -> None:
    """Start the Streamlit workbench (bound to 127.0.0.1 unless --host says otherwise)."""
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive_of(ctx)),
               DIALOGUES_MODELS=str(ctx.obj["models_file"]))  # fmt: skip
    cmd = [sys.executable, "-m", "streamlit", "run", str(config.PROJECT_ROOT / "app.py"),
           "--server.address", host, "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]  # fmt: skip
    click.echo(f"workbench on http://{host}:{port}  (archive: {archive_of(ctx)})")
    raise SystemExit(subprocess.call(cmd, env=env))


def main() -> None:
    """Entry point for the `dialogues` script."""
    cli(prog_name="dialogues")


if __name__ == "__main__":
    main()
