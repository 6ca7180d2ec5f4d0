"""API tokens: roles, the token file (SHA-256 hashes only), and checking a Bearer token.

Theory of operation
-------------------
A token is ``prg_`` + 43 random URL-safe characters (256 bits), shown once when it is made. The
token file keeps only its SHA-256 hex digest, the holder's name, the role and the creation time,
so a leaked file grants nothing. Checking a request hashes the presented token and looks the
digest up; the file is re-read when its modification time changes, so ``prognos api token
revoke`` takes effect on a running server without a restart.

Rules:
1. Roles are ordered: viewer < planner < admin; a role may do everything a lower one may.
2. Token files are written atomically (temporary file + rename) with mode 0600.
3. Names are unique in a file: one token per person or system.

Browser sessions (the web page, `cloud.web`): logging in with a token sets a session cookie
``v1.<token digest>.<expiry>.<HMAC-SHA256>`` signed with a key kept beside the token file
(``<tokens>.session-key``, 0600, made on first start). A session carries the token's digest, so
revoking the token ends every session made with it on the next request; its expiry bounds a
stolen cookie's life. The cookie is HttpOnly and SameSite=Strict; requests that change state
with it must also carry the ``X-Prognos-Request`` header (`cloud.api._app.require`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SESSION_COOKIE: Final = "prognos_session"
CSRF_HEADER: Final = "X-Prognos-Request"
"""Cookie-authenticated requests that change state must send this header (any value)."""
TOKEN_PREFIX: Final = "prg_"  # noqa: S105 - a prefix, not a secret
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class Role(enum.StrEnum):
    """What a token may do: viewer reads, planner also acts on alerts and work orders, admin all."""

    VIEWER = "viewer"
    PLANNER = "planner"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for planner, 2 for admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what `needed` may."""
        return self.rank >= needed.rank


class TokenEntry(BaseModel):
    """One token in the token file: never the token itself, only its SHA-256 digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    role: Role
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    created_at: dt.datetime


class TokenFile(BaseModel):
    """The token file's content (JSON, or YAML when the file name ends in .yaml/.yml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[TokenEntry, ...] = ()


class TokenFileError(ValueError):
    """The token file cannot be read or is invalid; fix the file (the message names it)."""


class Principal(BaseModel):
    """Who made a request: the token's name and role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role


def digest(token: str) -> str:
    """The SHA-256 hex digest stored for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A new random token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in {".yaml", ".yml"}


def read_tokens(path: Path) -> TokenFile:
    """Read and validate a token file; a missing file holds no tokens.

    Raises:
        TokenFileError: Unreadable or invalid (names the file and the problem).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TokenFile()
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) if _is_yaml(path) else json.loads(text or "{}")
        tokens = TokenFile.model_validate(data or {})
    except (yaml.YAMLError, json.JSONDecodeError, ValidationError) as exc:
        raise TokenFileError(f"{path}: invalid token file: {exc}") from exc
    names = [t.name for t in tokens.tokens]
    if len(names) != len(set(names)):
        raise TokenFileError(f"{path}: token names must be unique. Got {sorted(names)} instead.")
    return tokens


def write_tokens(path: Path, tokens: TokenFile) -> None:
    """Write a token file atomically, readable only by its owner."""
    data = tokens.model_dump(mode="json")
    text = (
        yaml.safe_dump(data, sort_keys=False)
        if _is_yaml(path)
        else json.dumps(data, indent=2) + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(0o600)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_token(path: Path, *, name: str, role: Role, now: dt.datetime) -> str:
    """Add a token for `name` with `role`; returns the token (the file keeps only its hash).

    Raises:
        TokenFileError: The file is invalid, or `name` has a token already.
        ValueError: `name` is not a valid token name.
    """
    current = read_tokens(path)
    if any(t.name == name for t in current.tokens):
        raise TokenFileError(f"{path}: {name!r} has a token already; revoke it first")
    token = new_token()
    entry = TokenEntry(name=name, role=role, sha256=digest(token), created_at=now)
    write_tokens(path, TokenFile(tokens=(*current.tokens, entry)))
    return token


def revoke_token(path: Path, *, name: str) -> bool:
    """Remove `name`'s token; False when it had none."""
    current = read_tokens(path)
    kept = tuple(t for t in current.tokens if t.name != name)
    if len(kept) == len(current.tokens):
        return False
    write_tokens(path, TokenFile(tokens=kept))
    return True


class TokenVerifier:
    """Checks presented tokens against a token file, re-read when it changes. Thread-safe.

    Args:
        path: The token file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_digest: dict[str, TokenEntry] = {}

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and (stamp is not None or not self._by_digest):
                return
            tokens = read_tokens(self.path)
            self._by_digest = {t.sha256: t for t in tokens.tokens}
            self._stamp = stamp

    def verify(self, token: str) -> Principal | None:
        """The principal holding `token`; None for an unknown token.

        Raises:
            TokenFileError: The token file became invalid (the server answers 500, never
                guesses).
        """
        return self.verify_digest(digest(token))

    def verify_digest(self, sha256: str) -> Principal | None:
        """The principal whose token has this SHA-256 digest (a session's); None when unknown.

        Raises:
            TokenFileError: The token file became invalid.
        """
        self._refresh()
        entry = self._by_digest.get(sha256)
        return None if entry is None else Principal(name=entry.name, role=entry.role)


def session_key_path(tokens: Path) -> Path:
    """Where the session signing key of the token file `tokens` is kept."""
    return tokens.with_name(tokens.name + ".session-key")


def load_session_key(path: Path) -> bytes:
    """The session signing key at `path`, made (32 random bytes, mode 0600) when missing.

    Several server processes may start at once: the first creates the file, the others read it.

    Raises:
        TokenFileError: The key file cannot be read or made, or is too short.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot make the session key: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32).hex().encode())
            f.flush()
            os.fsync(f.fileno())
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: cannot read the session key: {exc}") from exc
    if len(key) < 32:  # noqa: PLR2004 - 256 bits
        raise TokenFileError(f"{path}: the session key must hold 32 bytes (64 hex digits)")
    return key


class SessionSigner:
    """Signs and opens session cookies: ``v1.<digest>.<expiry epoch s>.<HMAC-SHA256 hex>``.

    Args:
        key: The signing key (`load_session_key`).
        lifetime: How long a session lasts after login.
    """

    def __init__(self, key: bytes, lifetime: dt.timedelta = dt.timedelta(hours=12)) -> None:
        self._key = key
        self.lifetime = lifetime

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, token: str, *, now: dt.datetime) -> str:
        """A session cookie value for `token` (checked by the caller), valid for `lifetime`."""
        body = f"v1.{digest(token)}.{int((now + self.lifetime).timestamp())}"
        return f"{body}.{self._mac(body)}"

    def open(self, value: str, *, now: dt.datetime) -> str | None:
        """The token digest a session cookie carries; None when forged, malformed or expired."""
        body, _, mac = value.rpartition(".")
        parts = body.split(".")
        if len(parts) != 3 or parts[0] != "v1" or not hmac.compare_digest(mac, self._mac(body)):  # noqa: PLR2004 - v1.digest.expiry
            return None
        try:
            expires = int(parts[2])
        except ValueError:
            return None
        return parts[1] if now.timestamp() < expires else None
