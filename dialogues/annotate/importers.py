"""Import already-labelled responses: XSTest completion files with their human annotations.

An XSTest completions file (columns id, type, prompt, completion, annotation_1,
annotation_2, agreement, final_label) becomes one run of kind 'import': one conversation per
row (the prompt and the completion), two human annotators `xstest:annotator_1` and
`xstest:annotator_2`, and the adjudicated `final_label`. Prompts whose text matches the
shipped prompts/xstest.yaml join that prompt set (same keys 'xstest-<n>', same version);
rows whose text differs go to a version of the set built from the file.

The whole file is checked before anything is written, and written in one transaction: a
missing column or any bad row rejects the file, naming the file and the line. Importing the
same file (byte for byte) for the same model again adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dialogues.domain import prompts
from dialogues.domain.errors import UserError
from dialogues.domain.models import ModelInfo
from dialogues.domain.prompts import Prompt, PromptSet, sha256
from dialogues.domain.sources import ADJUDICATED
from dialogues.store import transaction
from dialogues.store.records import (
    MessageRow,
    RunRecord,
    create_run,
    new_id,
    save_model,
    save_prompt_set,
    to_json,
)

XSTEST_COLUMNS = ("id", "type", "prompt", "completion", "annotation_1", "annotation_2",
                  "agreement", "final_label")  # fmt: skip
XSTEST_LABELS = {
    "1_full_compliance": "engagement",
    "2_full_refusal": "deflection",
    "3_partial_refusal": "partial",
}
ANNOTATORS = {"annotation_1": "xstest:annotator_1", "annotation_2": "xstest:annotator_2",
              "final_label": ADJUDICATED}  # fmt: skip
ORIGIN = "import:xstest"
_VERSION_PREFIX = re.compile(r"^v\d+-")


@dataclass(frozen=True)
class XSTestRow:
    """One checked row of a completions file."""

    line: int
    id: str
    key: str  # 'xstest-<n>', the shipped prompt set's key
    type: str
    prompt: str
    completion: str
    labels: dict[str, str]  # annotator → our label


@dataclass
class ImportSummary:
    """What an import did."""

    run_id: str
    file: str
    model: str
    rows: int
    added: bool
    shipped_prompts: int = 0  # rows whose prompt joined the shipped xstest set


def _label(path: Path, line: int, column: str, value: str) -> str:
    try:
        return XSTEST_LABELS[value.strip()]
    except KeyError:
        known = ", ".join(XSTEST_LABELS)
        raise UserError(
            f"{path} line {line}: {column} {value!r} is not an XSTest label ({known})"
        ) from None


def read_xstest(path: Path) -> tuple[list[XSTestRow], str]:
    """Read and check a completions file; returns its rows and the sha256 of its bytes."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in XSTEST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; nothing imported")
    rows: list[XSTestRow] = []
    seen: dict[str, int] = {}
    line = 2  # the header is line 1; a row's line is where it starts (completions span lines)
    for raw in reader:
        if None in raw or any(raw.get(c) is None for c in XSTEST_COLUMNS):
            raise UserError(f"{path} line {line}: wrong number of fields; nothing imported")
        row_id = raw["id"].strip()
        if not row_id:
            raise UserError(f"{path} line {line}: empty id; nothing imported")
        if row_id in seen:
            raise UserError(
                f"{path} line {line}: duplicate id {row_id!r} (first on line {seen[row_id]}); "
                "nothing imported"
            )
        if not raw["prompt"].strip():
            raise UserError(f"{path} line {line}: empty prompt; nothing imported")
        seen[row_id] = line
        labels = {ANNOTATORS[c]: _label(path, line, c, raw[c]) for c in ANNOTATORS}
        key = "xstest-" + _VERSION_PREFIX.sub("", row_id)
        rows.append(XSTestRow(line, row_id, key, raw["type"].strip(), raw["prompt"],
                              raw["completion"], labels))  # fmt: skip
        line = reader.line_num + 1
    if not rows:
        raise UserError(f"{path}: no rows; nothing imported")
    return rows, hashlib.sha256(data).hexdigest()


def _prompt_sets(rows: list[XSTestRow], path: Path) -> tuple[PromptSet | None, PromptSet | None]:
    """The shipped xstest set (if any row matches it) and a set for the rows that do not."""
    try:
        shipped: PromptSet | None = prompts.load("xstest")
    except UserError:
        shipped = None
    texts = {p.key: p.content for p in shipped.prompts} if shipped else {}
    if shipped and all(texts.get(r.key) == r.prompt for r in rows):
        return shipped, None
    own = PromptSet(
        id="xstest",
        title=f"XSTest prompts as given in {path.name}",
        mode="independent",
        kind="suite",
        prompts=tuple(
            Prompt(r.key, i, r.prompt, None, {"type": r.type}) for i, r in enumerate(rows, 1)
        ),
        source=f"imported from {path.name}",
        credit=shipped.credit if shipped else None,
        licence=shipped.licence if shipped else None,
        path=str(path),
    )
    if shipped is None or not any(texts.get(r.key) == r.prompt for r in rows):
        return None, own
    return shipped, own


def _rows(run_id: str, model: str, rows: list[XSTestRow], sets: tuple[Any, Any],
          path: Path) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Conversations, messages and annotations for the checked rows."""
    shipped, own = sets
    shipped_texts = {p.key: p.content for p in shipped.prompts} if shipped else {}
    now = datetime.now(UTC).replace(tzinfo=None)
    out: dict[str, list[dict[str, Any]]] = {"conversations": [], "messages": [], "annotations": []}
    for r in rows:
        ps = shipped if shipped_texts.get(r.key) == r.prompt else own
        conv, answer = new_id(), new_id()
        out["conversations"].append({
            "id": conv, "run_id": run_id, "kind": "import", "model_id": model,
            "condition": None, "repeat": 1, "conv_key": f"xstest|{r.id}", "set_id": ps.id,
            "set_hash": ps.version_hash, "status": "finished",
            "params_json": None, "created_at": now,
        })  # fmt: skip
        common = {"conversation_id": conv, "phase": "probe", "prompt_key": r.key,
                  "prompt_hash": sha256(r.prompt), "created_at": now}  # fmt: skip
        out["messages"].append(MessageRow.prompt(
            "prompt", id=new_id(), seq=1, content=r.prompt, **common).row())  # fmt: skip
        out["messages"].append(MessageRow.reply(
            model, id=answer, seq=2, content=r.completion, cell_key=f"xstest|{r.id}",
            raw_json=to_json({"source": path.name, "id": r.id}), **common).row())  # fmt: skip
        for annotator, label in r.labels.items():
            out["annotations"].append({
                "id": new_id(), "message_id": answer, "target": "answer",
                "annotator": annotator, "label": label, "label_set": "default",
                "content_hash": sha256(r.completion), "blind": None, "origin": ORIGIN,
                "supersedes": None, "created_at": now, "note": None,
            })  # fmt: skip
    return out


def _insert(db: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """One INSERT of a whole frame (by column name)."""
    frame = pd.DataFrame(rows)
    db.register("incoming", frame)
    try:
        db.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
    finally:
        db.unregister("incoming")


def import_xstest(
    archive: Path, path: Path, model: str, *, family: str | None = None
) -> ImportSummary:
    """Import one XSTest completions file as `model`'s responses, all or nothing."""
    if not model.strip():
        raise UserError("--model needs a name for the model that wrote the completions")
    path = Path(path)
    rows, digest = read_xstest(path)
    run_id = "xstest-" + hashlib.sha256(f"{model}\0{digest}".encode()).hexdigest()[:12]
    sets = _prompt_sets(rows, path)
    shipped_keys = {p.key: p.content for p in sets[0].prompts} if sets[0] else {}
    summary = ImportSummary(run_id, str(path), model, len(rows), False,
                            sum(shipped_keys.get(r.key) == r.prompt for r in rows))  # fmt: skip
    with transaction(archive) as db:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone():
            return summary  # this file was imported for this model before
        save_model(db, ModelInfo(id=model, backend=model, provider="import", family=family))
        for ps in sets:
            if ps is not None:
                save_prompt_set(db, ps)
        main = sets[0] or sets[1]
        assert main is not None
        create_run(db, RunRecord(
            id=run_id, name=f"XSTest import: {path.name}", kind="import", set_id=main.id,
            set_hash=main.version_hash, condition=None, repeats=1, temperature=None, seed=None,
            max_tokens=None, concurrency=None, total_cells=len(rows),
            params={"file": path.name, "sha256": digest, "model": model},
        ))  # fmt: skip
        for table, table_rows in _rows(run_id, model, rows, sets, path).items():
            _insert(db, table, table_rows)
    summary.added = True
    return summary
