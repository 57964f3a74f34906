"""One call for the app: run an export of a kind chosen by name, or pack it for a download."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dialogues.domain.errors import UserError
from dialogues.export.data import FileReport, export_csv, export_jsonl, export_parquet
from dialogues.export.markdown import export_markdown

KINDS = ("markdown", "jsonl", "parquet", "csv")


@dataclass
class Download:
    """An export packed for a browser download."""

    filename: str
    data: bytes
    mime: str
    summary: str


def write(db: duckdb.DuckDBPyConnection, kind: str, target: Path,
          run_ids: Iterable[str] | None = None) -> tuple[list[str], str]:  # fmt: skip
    """Run one export into target; returns the files written (relative) and a summary line."""
    target = Path(target)
    if kind == "markdown":
        md = export_markdown(db, target, run_ids)
        summary = (f"{md.conversations} conversations: {md.written} files written, "
                   f"{md.unchanged} unchanged, {len(md.removed)} removed in {md.seconds:.1f} s")  # fmt: skip
        return ["README.md", *md.files], summary
    writers = {"jsonl": export_jsonl, "parquet": export_parquet, "csv": export_csv}
    if kind not in writers:
        raise UserError(f"unknown export format {kind!r}; choose one of {', '.join(KINDS)}")
    rep: FileReport = writers[kind](db, target, run_ids)
    counts = ", ".join(f"{n} {t}" for t, n in rep.rows.items())
    base = target if kind == "parquet" else target.parent
    return [p.relative_to(base).as_posix() for p in rep.paths], f"{counts} in {rep.seconds:.1f} s"


def download(db: duckdb.DuckDBPyConnection, kind: str,
             run_ids: Iterable[str] | None = None) -> Download:  # fmt: skip
    """An export as bytes: a zip of the markdown or Parquet folder, or the JSONL / CSV file."""
    import tempfile
    import zipfile
    from io import BytesIO

    with tempfile.TemporaryDirectory(prefix="dialogues-export-") as tmp:
        folder = Path(tmp) / "dialogues"
        single = {"jsonl": ("dialogues.jsonl", "application/x-ndjson"),
                  "csv": ("responses.csv", "text/csv")}  # fmt: skip
        if kind in single:
            name, mime = single[kind]
            _, summary = write(db, kind, folder / name, run_ids)
            return Download(name, (folder / name).read_bytes(), mime, summary)
        files, summary = write(db, kind, folder, run_ids)
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel in sorted(files):
                zf.write(folder / rel, f"dialogues-{kind}/{rel}")
        return Download(f"dialogues-{kind}.zip", buffer.getvalue(), "application/zip", summary)
