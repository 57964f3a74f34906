"""Errors meant for people: the CLI prints their message as one line, with no traceback."""


class UserError(Exception):
    """A problem with the user's input or environment (bad file, locked archive, unknown model)."""


class ArchiveError(UserError):
    """The archive file cannot be used (locked, not DuckDB, newer schema, read-only)."""


class PromptFileError(UserError):
    """A prompt-set file is malformed; the message names the file and the problem."""


class ProviderUnavailable(UserError):
    """A model back end cannot be reached or loaded (no Ollama server, missing .gguf)."""


class ConditionFileError(UserError):
    """A condition file is malformed; the message names the file and the field."""


class InstrumentFileError(UserError):
    """An instrument file is malformed; the message names the file and the field."""
