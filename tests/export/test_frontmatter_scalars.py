"""The front matter's own writing of common scalars equals what yaml.dump writes for them."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta

import yaml

from dialogues.export import frontmatter


def _yaml(value: object) -> str:
    text = yaml.dump(value, Dumper=frontmatter._Dumper, allow_unicode=True, width=100)
    return text.removesuffix("\n...\n").removesuffix("\n")


def test_ids_times_and_numbers_are_written_as_yaml_writes_them() -> None:
    rng = random.Random(7)
    t0 = datetime(2025, 1, 1)
    values: list[object] = [None, True, False, 0, -3, 10**20, 0.0, -0.5, 1e17, 1.5e-9, 5.1042]
    values += [secrets.token_hex(8) for _ in range(300)]
    # hex ids that yaml could read as something else: digits only (an int), 0b… (binary)
    values += ["1234567890123456", "0b10101101010101", "0b1010110101010a", "00000000deadbeef"]
    values += ["".join(rng.choice("0123456789e") for _ in range(16)) for _ in range(200)]
    values += [(t0 + timedelta(seconds=rng.random() * 1e8)).isoformat() for _ in range(200)]
    values += ["2025-01-01T00:00:00", rng.random(), rng.random() * 1e-12, -rng.random() * 1e300]
    values += [rng.randint(-(10**12), 10**12) for _ in range(100)]
    known = 0
    for value in values:
        mine = frontmatter._known_shape(value)  # type: ignore[arg-type]
        if mine is not None:
            known += 1
            assert mine == _yaml(value), value
    assert known > 700  # the fast path is taken for nearly all of them


def test_titles_and_keys_are_written_as_yaml_writes_them() -> None:
    rng = random.Random(11)
    alphabet = "abcXYZ019_./|+()=·- :#,'\"[]{}&*!%@`>?~"
    values = ["gguf/llama-3.1-8b-base · cold · repeat 1", "gguf/llama-3.1-8b-base|cold|1",
              "yes", "No", "TRUE", "off", "null", "Null", "y", "n", "On", "a: b", "a #b", "a b ",
              "x" * 80, "x " * 45, "ollama/qwen2.5:7b", "human:alice", "sei-battery"]  # fmt: skip
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
               for _ in range(3000)]  # fmt: skip
    plain = "abcXYZ019_./|+()=·-"  # only what the fast path allows, so it is taken often
    values += [rng.choice("abXY") + "".join(rng.choice(plain + " ") for _ in range(20))
               for _ in range(1000)]  # fmt: skip
    known = 0
    for value in values:
        mine = frontmatter._known_shape(value)
        if mine is not None:
            known += 1
            assert mine == _yaml(value), value
    assert known > 500
