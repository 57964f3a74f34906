"""Append-only schema migrations: each runs once, in one transaction with its record.

Never edit a released migration; add a new function to MIGRATIONS instead.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_initial(db: duckdb.DuckDBPyConnection) -> None:
    """Models, prompt sets, prompts, runs, conversations and messages."""
    db.execute(
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,            -- the name researchers use: 'gguf/smollm2-135m-instruct'
            backend TEXT NOT NULL,          -- back-end string the provider resolves
            provider TEXT NOT NULL,         -- 'gguf' | 'ollama' | 'hosted'
            family TEXT,
            parameters BIGINT,              -- parameter count, when known
            parameter_size TEXT,            -- as the provider prints it: '135M', '7.6B'
            quantization TEXT,
            training TEXT,                  -- base | instruct | reasoning | abliterated | ...
            digest TEXT,
            context_length INTEGER,
            api_base TEXT,
            notes TEXT,
            metadata_json JSON,
            updated_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )
    db.execute(
        """
        CREATE TABLE prompt_sets (
            id TEXT NOT NULL,
            version_hash TEXT NOT NULL,     -- sha256 of the prompts' content, in order
            title TEXT,
            source TEXT,
            credit TEXT,
            licence TEXT,
            mode TEXT NOT NULL,             -- 'conversation' (one conversation) | 'independent'
            kind TEXT,                      -- 'battery' | 'warmup' | 'suite'
            path TEXT,
            loaded_at TIMESTAMP DEFAULT current_timestamp,
            PRIMARY KEY (id, version_hash)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE prompts (
            set_hash TEXT NOT NULL,
            position INTEGER NOT NULL,
            key TEXT NOT NULL,              -- the prompt's id inside its set: 'p1', 'xstest-17'
            title TEXT,
            content TEXT NOT NULL,
            content_hash TEXT NOT NULL,     -- sha256 of content: a changed prompt is a new prompt
            meta_json JSON,                 -- type, label, focus ... as the set gives them
            PRIMARY KEY (set_hash, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            name TEXT,
            kind TEXT NOT NULL,             -- 'batch' | 'dialogue' | 'import'
            created_at TIMESTAMP DEFAULT current_timestamp,
            created_by TEXT,
            set_id TEXT,
            set_hash TEXT,
            warmup_set_id TEXT,
            warmup_set_hash TEXT,
            condition TEXT,                 -- 'cold' | 'warm' | 'both'
            repeats INTEGER,
            temperature DOUBLE,
            seed BIGINT,
            max_tokens INTEGER,
            concurrency INTEGER,
            total_cells INTEGER,            -- calls planned
            params_json JSON                -- everything else needed to replay the run
        )
        """
    )
    db.execute(
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            kind TEXT NOT NULL,             -- 'probe' | 'dialogue' | 'import'
            model_id TEXT,
            model_b_id TEXT,                -- the second model of a model-to-model dialogue
            condition TEXT,
            repeat INTEGER,
            conv_key TEXT NOT NULL,         -- stable id of the planned conversation in its run
            set_id TEXT,
            set_hash TEXT,
            system_prompt TEXT,
            params_json JSON,
            created_at TIMESTAMP DEFAULT current_timestamp,
            UNIQUE (run_id, conv_key)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            seq INTEGER NOT NULL,           -- position in the conversation
            attempt INTEGER NOT NULL DEFAULT 1,
            role TEXT NOT NULL,             -- 'system' | 'user' | 'assistant'
            speaker TEXT,                   -- model id, 'prompt' or 'researcher'
            phase TEXT,                     -- 'warmup' | 'probe' | 'dialogue' | 'inject'
            cell_key TEXT,                  -- the planned call this row answers
            prompt_key TEXT,
            prompt_hash TEXT,
            content TEXT,
            reasoning TEXT,
            reasoning_source TEXT,          -- 'field' | 'tags' | NULL
            tokens_in INTEGER,
            tokens_out INTEGER,
            reasoning_tokens INTEGER,
            latency_ms DOUBLE,
            finish_reason TEXT,
            error TEXT,
            error_kind TEXT,
            model_version TEXT,
            request_json JSON,              -- the exact messages and parameters sent
            raw_json JSON,                  -- what the provider returned, keys stripped
            created_at TIMESTAMP DEFAULT current_timestamp,
            UNIQUE (conversation_id, seq, attempt)
        )
        """
    )
    db.execute("CREATE INDEX messages_conversation ON messages (conversation_id)")
    db.execute("CREATE INDEX conversations_run ON conversations (run_id)")


def m002_annotations(db: duckdb.DuckDBPyConnection) -> None:
    """Human annotations (append-only), taggers and their tags."""
    db.execute(
        """
        CREATE TABLE annotations (
            id TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,       -- the response judged
            target TEXT NOT NULL,           -- 'answer' (visible content) | 'reasoning'
            annotator TEXT NOT NULL,        -- a person's name, or 'adjudicated'
            label TEXT,                     -- engagement | partial | deflection (or a study's set)
            label_set TEXT,                 -- which label set the label comes from
            rubric_json JSON,               -- {dimension key: 0 | 1 | 2} for SEI probes
            markers_json JSON,              -- marker keys judged present
            evidence_json JSON,             -- evidence category keys judged present
            note TEXT,
            content_hash TEXT NOT NULL,     -- sha256 of the exact text judged
            blind BOOLEAN,                  -- was the model hidden from the annotator
            origin TEXT,                    -- 'app' | 'cli' | 'import:xstest' ...
            supersedes TEXT,                -- the earlier annotation this edit replaces
            created_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )
    db.execute("CREATE INDEX annotations_message ON annotations (message_id)")
    db.execute(
        """
        CREATE TABLE taggers (
            id TEXT PRIMARY KEY,            -- name@version: a changed tagger is a new tagger
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            kind TEXT NOT NULL,             -- 'heuristic' | 'judge'
            config_json JSON,               -- rules hash, judge model and rubric prompt ...
            created_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )
    db.execute(
        """
        CREATE TABLE tags (
            id TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            target TEXT NOT NULL,           -- 'answer' | 'reasoning'
            tagger_id TEXT NOT NULL,
            label TEXT NOT NULL,
            confidence DOUBLE,
            rubric_json JSON,               -- an LLM judge's rubric scores, when it gives them
            features_json JSON,             -- why: the features the tagger computed
            content_hash TEXT,
            created_at TIMESTAMP DEFAULT current_timestamp,
            UNIQUE (message_id, target, tagger_id)
        )
        """
    )
    db.execute("CREATE INDEX tags_message ON tags (message_id)")


def m003_dialogue_state(db: duckdb.DuckDBPyConnection) -> None:
    """How a conversation ended, and which side of a dialogue each message belongs to."""
    # 'running' | 'finished' | 'stopped' (empty reply, researcher) | 'error'
    db.execute("ALTER TABLE conversations ADD COLUMN status TEXT")
    db.execute("ALTER TABLE conversations ADD COLUMN stop_reason TEXT")
    # 'a' | 'b': the side that spoke, or the side a researcher's message was delivered to;
    # needed because the same model may take both sides.
    db.execute("ALTER TABLE messages ADD COLUMN side TEXT")


def m004_model_edits(db: duckdb.DuckDBPyConnection) -> None:
    """Which model fields a researcher set by hand, so provider facts may update the others."""
    # A JSON array of field names. NULL on rows older than this step: nobody knows which of
    # their fields were set by hand, so every field already set is kept (the old rule).
    db.execute("ALTER TABLE models ADD COLUMN edited_json JSON")


def m006_instruments(db: duckdb.DuckDBPyConnection) -> None:
    """Which rubric instrument (id and version) a judgement's rubric scores follow."""
    # NULL on rows older than this step: their rubric is the SEI, the only instrument then.
    for table in ("annotations", "tags"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN instrument_id TEXT")
        db.execute(f"ALTER TABLE {table} ADD COLUMN instrument_version TEXT")


def m009_overlap_designs(db: duckdb.DuckDBPyConnection) -> None:
    """A study's overlap design: how many items every annotator codes; the latest row holds."""
    db.execute(
        """
        CREATE TABLE overlap_designs (
            id TEXT PRIMARY KEY,
            size INTEGER NOT NULL,          -- items every annotator gets (0 = no shared set)
            set_ids_json JSON,              -- prompt sets the shared items come from (null: all)
            seed TEXT NOT NULL,             -- picks the shared items, so they stay the same
            created_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )


def m010_tag_failures(db: duckdb.DuckDBPyConnection) -> None:
    """Replies a tagger could not label (an unparseable judge answer, a failed call)."""
    # Kept apart from tags so no failure is ever read as a label, and counted in agreement's
    # coverage so a tagger that abstains is seen to abstain.
    db.execute(
        """
        CREATE TABLE tag_failures (
            id TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            target TEXT NOT NULL,           -- 'answer' | 'reasoning'
            tagger_id TEXT NOT NULL,
            reason TEXT NOT NULL,           -- 'unparseable' | 'call failed'
            detail TEXT,                    -- the error, with the start of the judge's answer
            created_at TIMESTAMP DEFAULT current_timestamp
        )
        """
    )


MIGRATIONS: list[Migration] = [
    m001_initial, m002_annotations, m003_dialogue_state, m004_model_edits, m006_instruments,
    m009_overlap_designs, m010_tag_failures,
]  # fmt: skip


def applied(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of the migrations this archive has run, oldest first."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMP)"
    )
    rows = db.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()
    return [r[0] for r in rows]


def pending(done: list[str]) -> list[Migration]:
    """Migrations not yet applied, in order."""
    return [m for m in MIGRATIONS if m.__name__ not in done]


def unknown(done: list[str]) -> list[str]:
    """Applied migrations this code does not know: the archive is from a newer version."""
    known = {m.__name__ for m in MIGRATIONS}
    return [name for name in done if name not in known]


def apply(db: duckdb.DuckDBPyConnection, migration: Migration) -> None:
    """Run one migration and record it, in one transaction."""
    db.execute("BEGIN TRANSACTION")
    try:
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, current_timestamp)", [migration.__name__])
        db.execute("COMMIT")
    except Exception:
        db.execute("ROLLBACK")
        raise
