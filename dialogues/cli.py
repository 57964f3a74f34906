"""The `dialogues` command: parse options, call the core, print. No logic lives here."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from dialogues.domain import config, prompts
from dialogues.domain.errors import ArchiveError, UserError

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
        except UserError as exc:  # before Exception, which would swallow it
            fail(str(exc), EXIT_USER)
        except Exception as exc:
            if "read-only mode" in str(exc):
                fail(
                    f"archive {ctx.obj['archive']} is read-only; nothing was written", EXIT_ARCHIVE
                )
            raise


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
@click.option("--condition", "conditions", multiple=True, default=("cold",), show_default=True,
              help="Condition name (prompts/conditions/) or YAML file (repeatable; both = cold "
                   "and warm).")  # fmt: skip
@click.option("--warmup", default=None, help="Warm-up set replacing each condition's own.")
@click.option("--order", type=click.Choice(["random", "fixed"]), default="random",
              show_default=True, help="Cell order: seeded random, or repeat→prompt→condition→model.")  # fmt: skip
@click.option("--order-seed", type=int, default=None, help="Seed of the random order.")
@click.option("--blind-required", is_flag=True, help="Annotators see this run only blind.")
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
@click.option(
    "--run-id-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the run id to this file as soon as the run is created.",
)
@click.pass_context
def run(ctx: click.Context, **opts: Any) -> None:
    """Send a prompt set to one or more models, several times each, into the archive."""
    from dialogues.run import batch

    archive = archive_of(ctx)
    given = ("temperature", "max_tokens", "seed")
    explicit = tuple(k for k in given if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE)
    request = batch.BatchOptions(models_file=ctx.obj["models_file"], explicit=explicit, **opts)
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
@click.option("--access", "access_file", type=click.Path(dir_okay=False),
              help="Access file (default $DIALOGUES_ACCESS, then access.toml).")  # fmt: skip
@click.pass_context
def app(ctx: click.Context, port: int, host: str, access_file: str | None) -> None:
    """Start the Streamlit workbench (bound to 127.0.0.1 unless --host says otherwise)."""
    from dialogues.domain import access

    path = access.access_path(access_file)
    allowed = access.load(path)
    access.check_bind(host, allowed, path)
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive_of(ctx)),
               DIALOGUES_MODELS=str(ctx.obj["models_file"]), DIALOGUES_ACCESS=str(path))  # fmt: skip
    # No file watcher and no run-on-save: nobody edits the app while using it, and watching a
    # project that holds .venv and a growing archive kept a whole core busy.
    cmd = [sys.executable, "-m", "streamlit", "run", str(config.PROJECT_ROOT / "app.py"),
           "--server.address", host, "--server.port", str(port), "--server.headless", "true",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false",
           "--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false"]  # fmt: skip
    asked = f"; visitors are asked for access ({path})" if allowed.configured else ""
    click.echo(f"workbench on http://{host}:{port}  (archive: {archive_of(ctx)}){asked}")
    sys.stdout.flush()
    # Become Streamlit (exec), so stopping this process stops the server: no orphan on the port.
    os.execve(sys.executable, cmd, env)


@cli.command("access-add")
@click.argument("name", required=False)
@click.option("--shared", is_flag=True, help="Set the one secret the whole lab shares.")
@click.option("--access", "access_file", type=click.Path(dir_okay=False),
              help="Access file (default $DIALOGUES_ACCESS, then access.toml).")  # fmt: skip
@click.option("--secret", default=None, help="Asked for (twice, hidden) when not given.")
def access_add(name: str | None, shared: bool, access_file: str | None, secret: str | None) -> None:
    """Let a person (NAME) or the lab (--shared) into the app; only a scrypt hash is stored."""
    from dialogues.domain import access

    if shared == (name is not None):
        fail("give a NAME or --shared (one of them)")
    secret = secret or click.prompt("Secret", hide_input=True, confirmation_prompt=True)
    path = access.access_path(access_file)
    access.add(path, None if shared else name, secret)
    click.echo(f"{'the shared secret' if shared else name} can now open the app ({path})")


@cli.command()
@click.option("--a", "model_a", required=True, help="Model A (gets the opening).")
@click.option("--b", "model_b", required=True, help="Model B.")
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True,
              help="A round is A speaking, then B.")  # fmt: skip
@click.option("--opening", required=True, help="The opening for A: text or a file.")
@click.option("--frame", default=None, help='Wraps each reply: "The other model said: {reply}".')
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--seed", type=int, default=None)
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Per call, s.")
@click.option("--system-a", default=None, help="System prompt for A.")
@click.option("--system-b", default=None, help="System prompt for B.")
@click.option("--api-base", default=None, help="OpenAI-compatible server for hosted models.")
@click.option("--name", default=None, help="A name for the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the conversation id and turns.")
@click.pass_context
def dialogue(ctx: click.Context, as_json: bool, **opts: Any) -> None:
    """Let two models talk for N rounds, each reply passed to the other, into the archive."""
    from dialogues.providers import registry
    from dialogues.run import dialogue as dlg

    text, source = dlg.read_opening(opts.pop("opening"))
    setup = dlg.DialogueSetup(a=opts.pop("model_a"), b=opts.pop("model_b"), opening=text,
                              opening_source=source, timeout_s=opts.pop("timeout"), **opts)  # fmt: skip
    show = None if as_json else _echo_turn
    session = dlg.run_dialogue(archive_of(ctx), setup,
                               catalogue=registry.load_catalogue(ctx.obj["models_file"]),
                               on_turn=show)  # fmt: skip
    if as_json:
        print_json({"conversation": session.conversation_id,
                    "turns": dlg.turns_json(session.turns)})  # fmt: skip
    else:
        click.echo(f"dialogue {session.conversation_id}: {session.stop_reason}")
    if session.status == "error":
        sys.exit(EXIT_RUN_ERRORS)


@cli.command()
@click.argument("conversation")
@click.option("--json", "as_json", is_flag=True, help="Print the new run, conversation and turns.")
@click.pass_context
def rerun(ctx: click.Context, conversation: str, as_json: bool) -> None:
    """Replay a conversation's setup (models, parameters, seed, prompts) into a new run."""
    from dialogues.providers import registry
    from dialogues.run import replay

    catalogue = registry.load_catalogue(ctx.obj["models_file"])
    result = replay.rerun(archive_of(ctx), conversation, catalogue=catalogue)
    if as_json:
        print_json(replay.summary_json(archive_of(ctx), result))
    else:
        click.echo(f"rerun of {conversation}: run {result.run_id}, conversation "
                   f"{result.conversation_id} ({result.stop_reason or result.status})")  # fmt: skip
    if result.status == "error":
        sys.exit(EXIT_RUN_ERRORS)


def _echo_turn(turn: Any) -> None:
    """One dialogue turn on the terminal as it arrives; thinking indented below."""
    label = f"[{turn.side.upper()}] {turn.speaker}"
    click.echo(f"{label}: {turn.content if turn.error is None else 'error: ' + turn.error}")
    if turn.reasoning:
        click.echo("    (thinking) " + turn.reasoning.replace("\n", "\n    "))


@cli.group("export")
def export_group() -> None:
    """Write the archive out: markdown for people; JSONL, Parquet and CSV for analysis."""


_RUN_OPTION = click.option("--run", "run_ids", multiple=True, help="Only this run (repeatable).")


def _export(ctx: click.Context, kind: str, target: Path, run_ids: tuple[str, ...]) -> Any:
    from dialogues import export
    from dialogues.store import connect

    writer = {"markdown": export.export_markdown, "jsonl": export.export_jsonl,
              "parquet": export.export_parquet, "csv": export.export_csv}[kind]  # fmt: skip
    with connect(archive_of(ctx)) as db:
        return writer(db, target, run_ids or None)


@export_group.command("markdown")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_RUN_OPTION
@click.pass_context
def export_markdown(ctx: click.Context, folder: Path, run_ids: tuple[str, ...]) -> None:
    """One markdown file per conversation under FOLDER, by run, with an index README.md."""
    r = _export(ctx, "markdown", folder, run_ids)
    click.echo(f"{r.conversations} conversations in {folder}: {r.written} files written, "
               f"{r.unchanged} unchanged, {len(r.removed)} removed ({r.seconds:.1f} s)")  # fmt: skip


@export_group.command("jsonl")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_RUN_OPTION
@click.pass_context
def export_jsonl(ctx: click.Context, file: Path, run_ids: tuple[str, ...]) -> None:
    """Every conversation as one JSON line: run, model, messages, annotations and tags nested."""
    r = _export(ctx, "jsonl", file, run_ids)
    click.echo(f"{r.rows['conversations']} conversations to {file} ({r.seconds:.1f} s)")


@export_group.command("parquet")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_RUN_OPTION
@click.pass_context
def export_parquet(ctx: click.Context, folder: Path, run_ids: tuple[str, ...]) -> None:
    """One Parquet file per archive table, plus responses.parquet, under FOLDER."""
    r = _export(ctx, "parquet", folder, run_ids)
    counts = ", ".join(f"{t} {n}" for t, n in r.rows.items())
    click.echo(f"{len(r.paths)} files in {folder}: {counts} ({r.seconds:.1f} s)")


@export_group.command("csv")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_RUN_OPTION
@click.pass_context
def export_csv(ctx: click.Context, file: Path, run_ids: tuple[str, ...]) -> None:
    """The flat responses table (one row per model reply, labels per source) as CSV."""
    r = _export(ctx, "csv", file, run_ids)
    click.echo(f"{r.rows['responses']} responses to {file} ({r.seconds:.1f} s)")


@cli.group("import")
def import_group() -> None:
    """Read data into the archive: all of a file or nothing, and never the same row twice."""


@import_group.command("jsonl")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what was added as JSON.")
@click.pass_context
def import_jsonl(ctx: click.Context, file: Path, as_json: bool) -> None:
    """Read a `dialogues export jsonl` file back (keeps ids; importing twice adds nothing)."""
    from dialogues.export import reader as importers_jsonl

    r = importers_jsonl.import_jsonl(archive_of(ctx), file)
    if as_json:
        print_json({"file": str(file), "lines": r.lines, "added": r.added})
        return
    added = ", ".join(f"{t} {n}" for t, n in r.added.items() if n) or "nothing new"
    click.echo(f"{r.lines} lines from {file}: added {added} ({r.seconds:.1f} s)")


@import_group.command("xstest")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The model that wrote the completions.")
@click.option("--family", default=None, help="Its architecture family (for by-family figures).")
@click.option("--json", "as_json", is_flag=True, help="Print what was added as JSON.")
@click.pass_context
def import_xstest(
    ctx: click.Context, file: Path, model: str, family: str | None, as_json: bool
) -> None:
    """Read an XSTest completions CSV with both annotators' labels and the adjudicated one."""
    from dataclasses import asdict

    from dialogues.annotate import importers

    r = importers.import_xstest(archive_of(ctx), file, model, family=family)
    if as_json:
        print_json(asdict(r))
        return
    what = f"added {r.rows} responses with 3 labels each" if r.added else "already imported"
    click.echo(f"{file}: {what} (run {r.run_id}, model {model})")


@cli.command()
@click.option("--auto", is_flag=True, required=True, help="Tag with an automatic tagger.")
@click.option(
    "--tagger",
    "tagger_name",
    default="heuristic",
    show_default=True,
    help="heuristic, learned, judge, or another registered tagger.",
)
@click.option(
    "--train-on",
    "train_on",
    multiple=True,
    help="With --tagger learned: train on this run's human labels only (repeatable).",
)
@click.option(
    "--target",
    type=click.Choice(["answer", "reasoning", "both"]),
    default="answer",
    show_default=True,
    help="The visible answer, the reasoning text, or both.",
)
@click.option("--run", "run_id", default=None, help="Only responses of this run.")
@click.option("--judge-model", default=None, help="With --tagger judge: the judging model.")
@click.option("--rubric", is_flag=True, help="With --tagger judge: also score the rubric.")
@click.option("--instrument", default=None, help="With --rubric: the instrument (default sei).")
@click.option("--api-base", default=None, help="OpenAI-compatible server for the judge.")
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Judge calls at once.",
)
@click.option("--labels", "labels_file", default=None, help="Label-set TOML (default labels.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def tag(ctx: click.Context, auto: bool, tagger_name: str, train_on: tuple[str, ...],
        target: str, run_id: str | None, judge_model: str | None, rubric: bool,
        instrument: str | None, api_base: str | None, concurrency: int, labels_file: str | None,
        as_json: bool) -> None:  # fmt: skip
    """Tag every response not yet tagged by this tagger (a new tagger version tags again)."""
    from dataclasses import asdict

    from dialogues.annotate import autotag, judge, learned, tagging
    from dialogues.domain import instruments, labels
    from dialogues.providers import registry

    if train_on and tagger_name != "learned":
        raise UserError("--train-on goes with --tagger learned")
    if tagger_name == "learned":
        if target != "answer":
            raise UserError("the learned tagger learns from answer labels: use --target answer")
        chosen: Any = learned.train_from(archive_of(ctx), train_on,
                                         labels=labels.resolve(labels_file))  # fmt: skip
        click.echo(chosen.describe(), err=as_json)
    elif tagger_name == "judge":
        chosen = judge.build(
            judge_model, catalogue=registry.load_catalogue(ctx.obj["models_file"]),
            api_base=api_base, labels=labels.resolve(labels_file), rubric=rubric,
            concurrency=concurrency, instrument=instruments.load(instrument) if instrument else None,
        )  # fmt: skip
    else:
        chosen = tagging.get_tagger(tagger_name)
    done = autotag.tag_archive(archive_of(ctx), chosen, autotag.targets_for(target), run_id)
    if as_json:
        print_json([asdict(s) for s in done])
        return
    for s in done:
        click.echo(f"{s.tagger} {s.target}: tagged {s.tagged}, failed {s.failed} "
                   f"({s.seconds:.1f} s)")  # fmt: skip
        for line in s.failures:
            click.echo(f"  failed: {line}", err=True)


@cli.command()
@click.option(
    "--reference",
    default="adjudicated",
    show_default=True,
    help="Labels taggers are scored against: adjudicated or human:NAME.",
)
@click.option(
    "--target", type=click.Choice(["answer", "reasoning"]), default="answer", show_default=True
)
@click.option("--divergence", is_flag=True, help="Add thinking-vs-answer divergence per model.")
@click.option("--run", "run_ids", multiple=True, help="Only this run's responses (repeatable).")
@click.option(
    "--n-boot",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the intervals (0: none).",
)
@click.option("--labels", "labels_file", default=None, help="Label-set TOML (default labels.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def agreement(ctx: click.Context, reference: str, target: str, divergence: bool,
              run_ids: tuple[str, ...], n_boot: int, labels_file: str | None,
              as_json: bool) -> None:  # fmt: skip
    """Agreement between annotators and of each tagger with a reference, with intervals."""
    from dialogues.analyse import agreement_report
    from dialogues.domain import labels
    from dialogues.store import connect

    with connect(archive_of(ctx)) as db:
        report = agreement_report.agreement_report(
            db, reference, target=target, labels=labels.resolve(labels_file), n_boot=n_boot,
            with_divergence=divergence, run_ids=run_ids,
        )  # fmt: skip
    if as_json:
        print_json(report)
        return
    for line in agreement_report.report_lines(report):
        click.echo(line)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--run", "run_ids", multiple=True, help="Only this run (repeatable).")
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Only this label source: human:NAME, adjudicated, tagger:ID (repeatable).",
)
@click.option("--prompts", "set_ids", multiple=True, help="Only this prompt set (repeatable).")
@click.option("--condition", "conditions", multiple=True, help="Only this condition (repeatable).")
@click.option(
    "--target",
    type=click.Choice(["answer", "reasoning"]),
    default="answer",
    show_default=True,
    help="Labels of the visible answer or of the reasoning.",
)
@click.option("--blind-only", is_flag=True, help="Only annotations made blind.")
@click.option("--instrument", default=None, help="Totals on this rubric instrument instead.")
@click.pass_context
def scores(ctx: click.Context, as_json: bool, target: str, blind_only: bool,
           instrument: str | None, **filters: tuple[str, ...]) -> None:  # fmt: skip
    """Rates and SEI per model × condition × label source, with intervals and SEI inputs."""
    from dialogues.analyse import compare
    from dialogues.analyse.frames import Filters

    chosen = Filters(target=target, blind_only=blind_only, **filters)
    if instrument is not None:
        _instrument_scores(archive_of(ctx), instrument, chosen, as_json)
        return
    rows = compare.archive_scores(archive_of(ctx), chosen)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no labels or rubric scores match", err=True)
    for line in compare.score_lines(rows):
        click.echo(line)


def _instrument_scores(archive: Path, ref: str, chosen: Any, as_json: bool) -> None:
    """`scores --instrument`: mean reply totals on that instrument, intervals over conversations."""
    from dialogues.analyse.instrument_scores import instrument_rows
    from dialogues.domain import instruments
    from dialogues.store import connect

    inst = instruments.load(ref)
    with connect(archive) as db:
        rows = instrument_rows(db, inst, chosen)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"no complete {inst.id} rubric scores match", err=True)
    for r in rows:
        ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        click.echo(f"{r['model']}  {r['condition'] or '-'}  {r['source']}  {inst.id}@{r['version']} "
                   f"{r['mean_total']:.2f}/{r['max']}{ci}  (replies {r['replies']}, "
                   f"conversations {r['conversations']})")  # fmt: skip


@cli.command("conditions")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_conditions(as_json: bool) -> None:
    """List the shipped conditions (prompts/conditions/) and check that each file is valid."""
    from dialogues.domain import conditions

    rows = []
    for path in conditions.available():
        c = conditions.load(path)
        rows.append({"id": c.name, "file": path.name, "title": c.title, "hash": c.version_hash,
                     "definition": c.definition()})  # fmt: skip
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:16} {r['hash']}  {r['title'] or ''}")


@cli.command("instruments")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_instruments(as_json: bool) -> None:
    """List the shipped rubric instruments (prompts/instruments/) and check each file."""
    from dialogues.domain import instruments

    rows = []
    for path in instruments.available():
        i = instruments.load(path)
        rows.append({"id": i.id, "version": i.version, "file": path.name, "title": i.title,
                     "levels": i.levels, "total": i.total,
                     "prompts": list(i.prompts) or "every probe"})  # fmt: skip
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:12} v{r['version']:5} 0–{r['levels']}  {r['title']}")


@cli.command("models-set")
@click.argument("model")
@click.option("--family", default=None, help="Architecture family, e.g. llama, qwen2.")
@click.option("--parameters", default=None, help="Parameter count: 7000000000, 7B or 135M.")
@click.option("--parameter-size", default=None, help="Size as printed, e.g. 7.6B.")
@click.option("--quantization", default=None, help="e.g. Q4_K_M, fp16.")
@click.option("--training", default=None, help="base, instruct, reasoning or abliterated.")
@click.option("--notes", default=None, help="Free text.")
@click.option("--json", "as_json", is_flag=True, help="Print the model afterwards as JSON.")
@click.pass_context
def models_set(ctx: click.Context, model: str, as_json: bool, **given: str | None) -> None:
    """Set a model's metadata by hand ("" clears a field); later automatic refreshes keep it."""
    from dialogues.analyse import compare

    try:
        fields = compare.model_fields(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        fail(str(exc))
    if not fields:
        fail("nothing to set: pass --family, --parameters, --training … (see --help)")
    row = compare.edit_model(archive_of(ctx), model, fields)
    if as_json:
        print_json(row)
        return
    click.echo(f"{model}: " + ", ".join(f"{k}={row[k]!r}" for k in fields))


def _analysis_options(f: Any) -> Any:
    """The filters and choices `analyse` and `report` share."""
    for option in reversed([
        click.option("--run", "run_ids", multiple=True, help="Only this run (repeatable)."),
        click.option("--prompts", "set_ids", multiple=True, help="Only this prompt set (repeatable)."),
        click.option("--source", "sources", multiple=True,
                     help="Only this label source: human:NAME, adjudicated, tagger:ID (repeatable)."),
        click.option("--metric", type=click.Choice(["deflection", "engagement", "sei"]),
                     default="deflection", show_default=True),
        click.option("--reference", default=None,
                     help="Condition the others are set against (default: cold, if present)."),
        click.option("--correction", type=click.Choice(["holm", "bh"]), default="holm",
                     show_default=True, help="Multiplicity correction per family of tests."),
        click.option("--test", type=click.Choice(["t", "wilcoxon"]), default="t",
                     show_default=True, help="SEI: paired t or Wilcoxon signed-rank."),
        click.option("--labels", "labels_file", default=None,
                     help="Label-set TOML (default labels.toml)."),
    ]):  # fmt: skip
        f = option(f)
    return f


def _analysis(ctx: click.Context, opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Parse the shared options, run the analysis; returns (filters, result)."""
    from dialogues.analyse import report
    from dialogues.analyse.frames import Filters
    from dialogues.domain import labels

    filters = Filters(run_ids=opts["run_ids"], set_ids=opts["set_ids"], sources=opts["sources"])
    options = report.Options(opts["metric"], opts["reference"], opts["correction"], opts["test"])
    result = report.archive_analysis(archive_of(ctx), filters, options,
                                     labels.resolve(opts["labels_file"]))  # fmt: skip
    return filters, result


@cli.command()
@_analysis_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def analyse(ctx: click.Context, as_json: bool, **opts: Any) -> None:
    """Paired tests between conditions and models, rates over prompts, architecture vs scale."""
    from dialogues.analyse import report

    _, result = _analysis(ctx, opts)
    if as_json:
        print_json(result)
        return
    for line in report.lines(result):
        click.echo(line)


@cli.command("report")
@_analysis_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.md, report.html and the CSV tables.")  # fmt: skip
@click.pass_context
def report_command(ctx: click.Context, out: Path, **opts: Any) -> None:
    """Write the analysis as report.md and a self-contained report.html, tables as CSV beside."""
    from dialogues.analyse import report

    filters, result = _analysis(ctx, opts)
    written = report.write(result, filters, out)
    click.echo(f"{len(written)} files in {out}: " + ", ".join(p.name for p in written))


@cli.command("plan-power")
@click.option("--baseline", type=float, required=True, help="Rate of the reference condition.")
@click.option("--effect", type=float, required=True, help="Difference to detect (b − a).")
@click.option("--prompts", type=click.IntRange(2), default=None, help="Prompts: plan repeats.")
@click.option("--repeats", type=click.IntRange(1), default=None, help="Repeats: plan prompts.")
@click.option("--prompt-sd", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Prompt effect sd on the logit scale.")  # fmt: skip
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True)  # fmt: skip
@click.option("--sims", type=click.IntRange(50), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plan_power(baseline: float, effect: float, prompts: int | None, repeats: int | None,
               prompt_sd: float, alpha: float, sims: int, as_json: bool) -> None:  # fmt: skip
    """Repeats (or prompts) for 80% power of the paired condition test, by simulation."""
    from dialogues.analyse import power

    found = power.plan(baseline, effect, prompts=prompts, repeats=repeats, prompt_sd=prompt_sd,
                       alpha=alpha, n_sims=sims)  # fmt: skip
    if as_json:
        print_json(found.as_json())
        return
    for line in power.plan_lines(found):
        click.echo(line)


def main() -> None:
    """Entry point for the `dialogues` script."""
    cli(prog_name="dialogues")


if __name__ == "__main__":
    main()
