"""Who may open the workbench: a shared secret or per-person passwords, kept only as scrypt hashes.

The access file (access.toml) holds nothing but hashes:

    shared = "scrypt$16384$8$1$<salt hex>$<hash hex>"     # one secret for the whole lab
    [people]
    ana = "scrypt$16384$8$1$…"                            # or one password per person
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dialogues.domain import config
from dialogues.domain.errors import UserError

SHARED = "shared"
# scrypt cost: 16 MiB and ~50 ms per check, which makes guessing slow without making login slow.
_N, _R, _P, _LEN = 2**14, 8, 1, 32
MIN_SECRET = 8


@dataclass(frozen=True)
class Access:
    """The hashes an app checks a visitor against; empty means nobody is asked."""

    shared: str | None = None
    people: dict[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.shared or self.people)


def access_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The access file: --access, then $DIALOGUES_ACCESS, then access.toml in the project."""
    chosen = option or os.environ.get("DIALOGUES_ACCESS") or config.PROJECT_ROOT / "access.toml"
    return Path(chosen).expanduser()


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """A self-describing scrypt hash of a secret (random salt)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    """True if the secret matches the stored hash (constant-time compare); False if malformed."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(bytes.fromhex(digest)))  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def load(path: Path) -> Access:
    """The access file's hashes; a missing file is no access configured."""
    if not path.exists():
        return Access()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read the access file ({exc})") from exc
    people = data.get("people") or {}
    shared = data.get("shared")
    if not isinstance(people, dict) or not all(isinstance(v, str) for v in people.values()):
        raise UserError(f"{path}: [people] must map names to hashes")
    if shared is not None and not isinstance(shared, str):
        raise UserError(f"{path}: shared must be a hash string")
    return Access(shared=shared, people=dict(people))


def save(path: Path, access: Access) -> None:
    """Write the hashes (owner-only permissions: they are still worth guessing at)."""
    lines = ["# Written by `dialogues access-add`: scrypt hashes only, never a password.\n"]
    if access.shared:
        lines.append(f'shared = "{access.shared}"\n')
    if access.people:
        lines.append("\n[people]\n")
        lines += [f'"{name}" = "{h}"\n' for name, h in sorted(access.people.items())]
    tmp = path.with_suffix(path.suffix + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def add(path: Path, name: str | None, secret: str) -> Access:
    """Set the shared secret (name None) or one person's password, and save the file."""
    if len(secret) < MIN_SECRET:
        raise UserError(f"a secret needs at least {MIN_SECRET} characters")
    if name is not None and (not name.strip() or '"' in name or "\\" in name):
        raise UserError(f"not a usable name: {name!r}")
    now = load(path)
    if name is None:
        new = Access(shared=hash_secret(secret), people=now.people)
    else:
        new = Access(shared=now.shared, people={**now.people, name.strip(): hash_secret(secret)})
    save(path, new)
    return new


def who(access: Access, name: str, secret: str) -> str | None:
    """The visitor's name (or 'shared') if name and secret match; None otherwise."""
    name = name.strip()
    if name and name in access.people:
        return name if check_secret(secret, access.people[name]) else None
    if not name and access.shared and check_secret(secret, access.shared):
        return SHARED
    return None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as reachable


def check_bind(host: str, access: Access, path: Path) -> None:
    """Refuse to serve beyond this machine unless the access file asks visitors who they are."""
    if is_loopback(host) or access.configured:
        return
    raise UserError(
        f"--host {host} would let anyone on the network read every transcript; set a secret "
        f"first with `dialogues access-add --shared` (or one per person: `dialogues access-add "
        f"NAME`), which writes {path}"
    )
