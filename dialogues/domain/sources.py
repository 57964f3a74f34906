"""Label sources: who gave a label. 'human:<annotator>', 'adjudicated', or 'tagger:<tagger id>'.

A person's labels are theirs under their name; annotator 'adjudicated' is the agreed label of
a study (not a person); every tag is its tagger's, name@version. Sources sort people first,
then the adjudicated label, then taggers.
"""

from __future__ import annotations

ADJUDICATED = "adjudicated"
HUMAN_PREFIX = "human:"
TAGGER_PREFIX = "tagger:"


def of_annotator(annotator: str) -> str:
    """The source of an annotator's labels: 'adjudicated' or 'human:<name>'."""
    return ADJUDICATED if annotator == ADJUDICATED else HUMAN_PREFIX + annotator


def of_tagger(tagger_id: str) -> str:
    """The source of a tagger's labels: 'tagger:<name@version>'."""
    return TAGGER_PREFIX + tagger_id


def annotator_sql(column: str) -> str:
    """`of_annotator` in SQL, over an annotator column."""
    return (
        f"CASE WHEN {column} = '{ADJUDICATED}' THEN '{ADJUDICATED}' "
        f"ELSE '{HUMAN_PREFIX}' || {column} END"
    )


def tagger_sql(column: str) -> str:
    """`of_tagger` in SQL, over a tagger_id column."""
    return f"'{TAGGER_PREFIX}' || {column}"


def is_human(source: str) -> bool:
    """A person's own labels (not the adjudicated ones, not a tagger's)."""
    return source.startswith(HUMAN_PREFIX)


def is_tagger(source: str) -> bool:
    """An automatic tagger's labels."""
    return source.startswith(TAGGER_PREFIX)


def rank(source: str) -> int:
    """0 for people, 1 for the adjudicated label, 2 for taggers, 3 for anything else."""
    if is_human(source):
        return 0
    if source == ADJUDICATED:
        return 1
    return 2 if is_tagger(source) else 3


def ordered(found: set[str] | list[str]) -> list[str]:
    """Sources in display order: people, adjudicated, taggers, each by name."""
    return sorted(found, key=lambda s: (rank(s), s))
