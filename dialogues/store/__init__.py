"""The DuckDB archive: connection handling, migrations, and the records we keep."""

from dialogues.store.db import connect, transaction

__all__ = ["connect", "transaction"]
