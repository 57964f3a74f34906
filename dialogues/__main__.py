"""`python -m dialogues` runs the CLI."""

from dialogues.cli import main

main()
