"""A process that used an embedded model exits quietly: the models are freed before the
interpreter tears llama-cpp-python down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A test that loads SmolLM2, tokenizes and generates; run alone in its own pytest, its Llama
# outlived llama-cpp-python's module at exit, and Llama.__del__ printed
# "TypeError: 'NoneType' object is not callable" from free_model once per model.
USES_A_MODEL = (
    "tests/providers/test_context.py::test_an_embedded_model_counts_with_its_own_tokenizer"
)


@pytest.mark.model
def test_a_process_that_used_an_embedded_model_exits_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", USES_A_MODEL],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "1 passed" in said
    assert "Exception ignored" not in said and "free_model" not in said, said
