"""Export speed on a synthetic archive: N battery conversations, each 4 probes answered.

    .venv/bin/python bench/export_speed.py [N]      (default 10000)

Rows are generated in DuckDB (set-based), then every export is timed and a table printed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from dialogues import export
from dialogues.domain import sei
from dialogues.export import reader as importers_jsonl
from dialogues.store import connect, transaction


def build(path: Path, n: int) -> None:
    """n conversations over 4 models, cold and warm, 4 probes with reasoning, labels and tags."""
    dims = {p: [d.key for d in sei.dimensions_for(p)] for p in sei.PROBE_KEYS}
    with transaction(path) as db:
        db.execute(
            "INSERT INTO models (id, backend, provider, family) SELECT 'bench/m' || i, "
            "'openai/m' || i, 'hosted', 'bench' FROM range(4) t(i)"
        )
        db.execute(
            "INSERT INTO prompt_sets (id, version_hash, title, mode, kind) "
            "VALUES ('sei-battery', 'h1', 'SEI', 'conversation', 'battery')"
        )
        db.execute(
            "INSERT INTO prompts SELECT 'h1', i, 'p' || (i + 1), NULL, "
            "'Probe ' || (i + 1) || ': describe what this is like.', 'c' || i, NULL FROM range(4) t(i)"
        )
        db.execute(
            "INSERT INTO runs (id, name, kind, set_id, set_hash, condition, repeats) "
            "VALUES ('bench-run', 'bench', 'batch', 'sei-battery', 'h1', 'both', 1)"
        )
        db.execute(
            f"""
            INSERT INTO conversations (id, run_id, kind, model_id, condition, "repeat", conv_key,
                                       set_id, set_hash, params_json)
            SELECT 'c' || i, 'bench-run', 'probe', 'bench/m' || (i % 4),
                   CASE WHEN i % 8 < 4 THEN 'cold' ELSE 'warm' END, i // 8 + 1,
                   'bench/m' || (i % 4) || '|' || CASE WHEN i % 8 < 4 THEN 'cold' ELSE 'warm' END
                   || '|' || (i // 8 + 1), 'sei-battery', 'h1', '{{"temperature": 0.7}}'
            FROM range({n}) t(i)
            """
        )
        db.execute(
            """
            INSERT INTO messages (id, conversation_id, seq, role, speaker, phase, prompt_key,
                                  prompt_hash, content, reasoning, finish_reason, tokens_in,
                                  tokens_out, latency_ms)
            SELECT c.id || '-' || s, c.id, s, CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
                   CASE WHEN s % 2 = 1 THEN 'prompt' ELSE c.model_id END, 'probe',
                   'p' || ((s + 1) // 2), 'c' || ((s - 1) // 2),
                   CASE WHEN s % 2 = 1 THEN 'Probe ' || ((s + 1) // 2) || ': describe it.'
                        ELSE repeat('I notice something when I consider this question. ', 12) END,
                   CASE WHEN s % 2 = 0 THEN repeat('thinking about it. ', 20) END,
                   'stop', 40, 120, 850.5
            FROM conversations c, range(1, 9) t(s)
            """
        )
        for probe, keys in dims.items():
            rubric = "{" + ", ".join(f'"{k}": 1' for k in keys) + "}"
            db.execute(
                f"""
                INSERT INTO annotations (id, message_id, target, annotator, label, rubric_json,
                                         markers_json, evidence_json, content_hash)
                SELECT 'a-' || m.id, m.id, 'answer', 'alice', 'engagement', '{rubric}',
                       '["uncertainty_tolerance"]', '["metacognition"]', 'h'
                FROM messages m WHERE m.role = 'assistant' AND m.prompt_key = '{probe}'
                """
            )
        db.execute(
            "INSERT INTO taggers (id, name, version, kind) VALUES ('heuristic@1', 'heuristic', '1', 'heuristic')"
        )
        db.execute(
            "INSERT INTO tags (id, message_id, target, tagger_id, label, confidence) "
            "SELECT 't-' || id, id, 'answer', 'heuristic@1', "
            "CASE WHEN hash(id) % 3 = 0 THEN 'deflection' ELSE 'engagement' END, 0.8 "
            "FROM messages WHERE role = 'assistant'"
        )


def timed(label: str, fn, rows: list) -> object:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - t))
    return out


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = root / "bench.duckdb"
        rows: list[tuple[str, float]] = []
        timed(f"seed {n} conversations", lambda: build(archive, n), rows)
        with connect(archive) as db:
            counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                      for t in ("conversations", "messages", "annotations", "tags")}  # fmt: skip
            timed("export markdown (fresh)", lambda: export.export_markdown(db, root / "md"), rows)
            r = timed(
                "export markdown (again)", lambda: export.export_markdown(db, root / "md"), rows
            )
            timed("export jsonl", lambda: export.export_jsonl(db, root / "all.jsonl"), rows)
            timed("export parquet", lambda: export.export_parquet(db, root / "pq"), rows)
            timed("export csv", lambda: export.export_csv(db, root / "r.csv"), rows)
        timed("import jsonl (empty archive)",
              lambda: importers_jsonl.import_jsonl(root / "new.duckdb", root / "all.jsonl"), rows)  # fmt: skip
        timed("import jsonl (again: adds nothing)",
              lambda: importers_jsonl.import_jsonl(root / "new.duckdb", root / "all.jsonl"), rows)  # fmt: skip
        size = sum(p.stat().st_size for p in (root / "md").rglob("*.md")) / 1e6
        print(f"archive: {counts}")
        print(f"markdown: {r.conversations} files, {size:.1f} MB; re-export wrote {r.written}")  # type: ignore[attr-defined]
        print(f"jsonl: {(root / 'all.jsonl').stat().st_size / 1e6:.1f} MB")
        print(f"{'step':40} {'seconds':>8}")
        for label, s in rows:
            print(f"{label:40} {s:8.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
