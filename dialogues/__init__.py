"""dialogues: a research workbench for reflective-question studies of language models."""

__version__ = "0.1.0"
