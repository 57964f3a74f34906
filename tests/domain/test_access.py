"""Access control: hashes only on disk, right secrets in, wrong ones out, loopback told apart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dialogues.domain import access
from dialogues.domain.errors import UserError


def test_a_hash_checks_its_own_secret_only() -> None:
    stored = access.hash_secret("correct horse")
    assert access.check_secret("correct horse", stored)
    assert not access.check_secret("correct hors", stored)
    assert not access.check_secret("correct horse", "plain-text")  # malformed: refused, no raise
    assert access.hash_secret("correct horse") != stored  # salted


def test_the_hash_is_scrypt_as_the_library_computes_it() -> None:
    salt = bytes(range(16))
    kind, n, r, p, salt_hex, digest = access.hash_secret("s3cret-pass", salt).split("$")
    direct = hashlib.scrypt(b"s3cret-pass", salt=salt, n=int(n), r=int(r), p=int(p), dklen=32)
    assert (kind, salt_hex, digest) == ("scrypt", salt.hex(), direct.hex())


def test_the_file_holds_hashes_and_lets_the_right_people_in(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    assert not access.load(path).configured
    access.add(path, None, "lab-secret-1")
    access.add(path, "ana", "anas-password")
    text = path.read_text()
    assert "lab-secret-1" not in text and "anas-password" not in text
    assert path.stat().st_mode & 0o077 == 0
    allowed = access.load(path)
    assert access.who(allowed, "", "lab-secret-1") == access.SHARED
    assert access.who(allowed, "ana", "anas-password") == "ana"
    assert access.who(allowed, "ana", "lab-secret-1") is None
    assert access.who(allowed, "bob", "anas-password") is None
    assert access.who(allowed, "", "wrong-secret") is None


def test_short_secrets_and_broken_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    with pytest.raises(UserError, match="at least 8"):
        access.add(path, "ana", "short")
    assert not path.exists()
    path.write_text("[people]\nana = 3\n")
    with pytest.raises(UserError, match="access.toml"):
        access.load(path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("lab-box", False)],
)  # fmt: skip
def test_loopback_is_only_this_machine(host: str, loopback: bool) -> None:
    assert access.is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_access(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    access.check_bind("127.0.0.1", access.Access(), path)
    with pytest.raises(UserError, match="access-add"):
        access.check_bind("0.0.0.0", access.Access(), path)
    access.check_bind("0.0.0.0", access.Access(shared=access.hash_secret("lab-secret-1")), path)
