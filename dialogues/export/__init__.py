"""The archive out: a markdown folder for people, JSONL / Parquet / CSV for notebooks.

Everything is read with a few set-based queries into a `Snapshot` (one query per table, never
one per conversation), then written with plain string building, so 10,000 conversations
export in seconds. Decisions a reader of an export should know:

- Markdown: every text a model or a person wrote sits inside a fenced code block whose fence
  is longer than any backtick run in the text, so `---`, HTML, `</details>` or ``` in a reply
  cannot end the block; short strings in headings and tables are backslash-escaped. The raw
  file shows the exact text; renderers show it verbatim (monospace, unwrapped).
- Names are stable: `<run-date>-<run-slug>-<id8>/<model>-<condition>-<repeat>[-<prompt>].md`,
  from archive data only, so re-exporting rewrites the same files (unchanged bytes are not
  rewritten). A file we wrote earlier for a conversation that no longer exists is removed,
  only inside a run folder this export writes, and only if its front matter says we wrote it.
- Front matter leaves out who ran the batch (a login name) and the API base URL; the JSONL
  keeps every column, because it is the lossless form.
- Annotations: the current value is the latest row per (message, target, annotator), read
  with the app's own query (`annotations.CURRENT_SQL`); markdown shows current values, JSONL
  carries every row (history included).
- Secrets: no export contains the value of an environment variable that looks like a key,
  token, secret or password (see `secret_values`), even if one slipped into the archive.

One module per part: `snapshot` reads, `judgements` picks current labels and SEI, `paths`,
`text`, `frontmatter`, `markdown` and `index` write the markdown archive, `data` writes JSONL,
Parquet and CSV, `kinds` is the app's one call. This module only gathers their public names.
"""

from dialogues.export.common import (
    Row,
    people_errors,
    redact,
    response_state,
    secret_values,
)
from dialogues.export.data import (
    JSONL_FORMAT,
    RESPONSE_COLUMNS,
    FileReport,
    conversation_record,
    export_csv,
    export_jsonl,
    export_parquet,
    jsonl_lines,
    responses_frame,
)
from dialogues.export.frontmatter import MARKER, _Dumper, _yaml, front_matter
from dialogues.export.index import render_index, score_table
from dialogues.export.judgements import (
    ConversationSEI,
    Judgement,
    annotation_source,
    conversation_judgements,
    conversation_seis,
    current_judgements,
)
from dialogues.export.kinds import KINDS, Download, download, write
from dialogues.export.markdown import (
    NO_ANSWER,
    NO_ANSWER_PLAIN,
    MarkdownReport,
    export_markdown,
    render_conversation,
)
from dialogues.export.paths import (
    RESERVED,
    SLUG_MAX,
    conversation_stem,
    plan_paths,
    run_folder,
    safe_target,
    slug,
)
from dialogues.export.snapshot import HEAVY, ORDER, TABLES, Snapshot, snapshot
from dialogues.export.text import fenced, inline

__all__ = [
    "HEAVY", "JSONL_FORMAT", "KINDS", "MARKER", "NO_ANSWER", "NO_ANSWER_PLAIN", "ORDER",
    "RESERVED", "RESPONSE_COLUMNS", "SLUG_MAX", "TABLES", "ConversationSEI",
    "Download", "FileReport", "Judgement", "MarkdownReport", "Row", "Snapshot", "_Dumper",
    "_yaml", "annotation_source", "conversation_judgements", "conversation_record",
    "conversation_seis", "conversation_stem", "current_judgements",
    "download", "export_csv", "export_jsonl", "export_markdown", "export_parquet", "fenced",
    "front_matter", "inline", "jsonl_lines", "people_errors", "plan_paths",
    "redact", "render_conversation", "render_index", "response_state", "responses_frame",
    "run_folder", "safe_target", "secret_values", "score_table", "slug", "snapshot", "write",
]  # fmt: skip
