"""Encryption at rest of personal fields: AES-GCM with keys from settings or a key file.

What enquirers wrote (subjects, descriptions, links, contact details, transcripts,
notes, messages waiting in the outbox, conversation drafts) is sealed in the column
types below before it reaches the driver, so a dump of the database file or of the
PostgreSQL tables, without the key, shows none of it. Labels (enquirer type, setting,
platform, categories, dates) stay plain: the yearly analysis counts them in SQL.

A stored value reads ``hl1:<key id>:<base64 of nonce + ciphertext>``. Several keys may
be configured: the first seals, any of them opens, so a new key can be put first and
:func:`reseal` run (``helpline db rotate-key``) before the old one is dropped. A value
without the prefix is one written before encryption existed: it reads as it is and is
sealed by the next :func:`reseal` (the migration that introduced encryption runs one).

Looking a person up by contact detail cannot use a sealed column, so the case also
keeps a keyed HMAC of each (a blind index, :meth:`DataKeys.blind`): equal inputs give
equal digests, and without the key a digest says nothing about the address.

The keys travel with the engine (:func:`attach`), not in a global: each engine's
dialect carries the keys its sealed columns use.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Dialect, Text, TypeDecorator, bindparam, column, select, table
from sqlalchemy import update as sql_update
from sqlalchemy.sql.expression import ColumnClause

log = logging.getLogger(__name__)
PREFIX = "hl1:"
KEY_BYTES = 32
NONCE_BYTES = 12
DIALECT_ATTRIBUTE = "helpline_data_keys"
RESEAL_BATCH = 2_000


class DataKeyError(ValueError):
    """A data key is missing, malformed, or not the one a value was sealed with."""


def new_key() -> str:
    """A fresh data key as text (URL-safe base64 of 32 random bytes): what to configure."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DataKeyError("a data key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(
            f"a data key must be {KEY_BYTES} bytes (generate one: helpline db new-key)"
        )
    return raw


class DataKeys:
    """The keys personal fields are sealed with: the first seals, every one opens."""

    def __init__(self, keys: Sequence[bytes], *, source: str = "") -> None:
        """``source`` says where the keys came from (for messages; never the keys)."""
        self.source = source
        self._keys = list(keys)
        self._ciphers = {self._key_id(k): AESGCM(k) for k in self._keys}
        self._ids = [self._key_id(k) for k in self._keys]  # sealing is hot: said once here
        self._index_keys = [
            hmac.new(k, b"helpline blind index", hashlib.sha256).digest() for k in self._keys
        ]

    @classmethod
    def parse(cls, text: str, *, source: str = "") -> DataKeys:
        """Keys from a setting or key file: separated by commas or lines, newest first."""
        parts = [p for p in text.replace("\n", ",").split(",") if p.strip()]
        if not parts:
            raise DataKeyError("no data key given")
        return cls([_decode_key(p) for p in parts], source=source)

    @staticmethod
    def _key_id(key: bytes) -> str:
        return hashlib.sha256(b"helpline key id" + key).hexdigest()[:8]

    @property
    def usable(self) -> bool:
        """Whether any key is configured (nothing can be sealed or opened without one)."""
        return bool(self._keys)

    @property
    def current_id(self) -> str:
        """The id of the key new values are sealed with (the newest)."""
        self._need()
        return self._ids[0]

    def _need(self) -> None:
        if not self._keys:
            raise DataKeyError(
                "personal data cannot be read or written without a data key: "
                "set HELPLINE_DATA_KEY (see the README, 'Data protection')"
            )

    def seal(self, plain: str) -> str:
        """``plain`` encrypted with the current key (a fresh nonce each time)."""
        self._need()
        kid = self._ids[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plain.encode("utf-8"), None)
        return f"{PREFIX}{kid}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, stored: str) -> str:
        """The plain text of a stored value (a value from before encryption as it is)."""
        if not stored.startswith(PREFIX):
            return stored
        self._need()
        kid, _, body = stored[len(PREFIX) :].partition(":")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DataKeyError(f"a value was sealed with key {kid}, which is not configured")
        raw = base64.b64decode(body)
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode("utf-8")
        except InvalidTag:
            raise DataKeyError(f"a value sealed with key {kid} does not open (altered?)") from None

    def is_current(self, stored: str) -> bool:
        """Sealed with the current key already (:func:`reseal` leaves it)."""
        return stored.startswith(f"{PREFIX}{self.current_id}:")

    def blind(self, kind: str, value: str) -> str:
        """The blind index of ``value`` under the current key (see the module docstring)."""
        self._need()
        return self._digest(self._index_keys[0], kind, value)

    def blinds(self, kind: str, value: str) -> list[str]:
        """The blind index under every key: what a lookup matches (mid-rotation too)."""
        return [self._digest(k, kind, value) for k in self._index_keys]

    @staticmethod
    def _digest(key: bytes, kind: str, value: str) -> str:
        message = f"{kind}:{normalise_identity(kind, value)}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def normalise_identity(kind: str, value: str) -> str:
    """How a person's identifier is written before it is indexed, so lookups match."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        digits = "".join(c for c in value if c.isdigit())
        return "44" + digits[1:] if digits.startswith("0") else digits
    return value


NO_KEYS = DataKeys([], source="none")


def attach(dialect: Dialect, keys: DataKeys) -> None:
    """Give an engine's dialect the keys its sealed columns use."""
    setattr(dialect, DIALECT_ATTRIBUTE, keys)


def keys_of(dialect: Dialect) -> DataKeys:
    """The keys attached to ``dialect`` (none: every sealed value refuses to be used)."""
    keys = getattr(dialect, DIALECT_ATTRIBUTE, None)
    return keys if isinstance(keys, DataKeys) else NO_KEYS


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(new_key() + "\n")
    log.warning(
        "created a data key file at %s (owner-only): the personal data in the database "
        "cannot be read without it, so back it up apart from the database",
        path,
    )


def load_key_file(path: Path) -> DataKeys:
    """The keys in ``path``, the file created (mode 0600) with a new key if absent."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            _create_key_file(path)
    return DataKeys.parse(path.read_text(encoding="ascii"), source=str(path))


def write_key_file(path: Path, keys: Iterable[str]) -> None:
    """Replace the key file's contents (owner-only), newest key first."""
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("".join(k + "\n" for k in keys))
    os.replace(temporary, path)


def _key_file_lock(path: Path) -> int:
    """An open descriptor on the key file's lock (``helpline.db.key.lock``, owner-only).

    The lock is a file of its own: the key file is replaced whole when it is written, and
    a lock on the old one would lock nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def key_file_in_use(path: Path | None) -> Iterator[None]:
    """Held by a running service for its whole life (``path`` None: no key file, nothing
    to hold). The service keeps the keys it read at start, so a rotation of the file under
    it would leave it sealing with a key the file no longer holds: :func:`key_file_alone`
    refuses while anyone holds this. A service started during a rotation waits for it."""
    if path is None:
        yield
        return
    descriptor = _key_file_lock(path)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for the data key rotation to finish")
            fcntl.flock(descriptor, fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)  # the lock goes with it (with the process, if it dies)


@contextlib.contextmanager
def key_file_alone(path: Path) -> Iterator[bool]:
    """Whether nothing holds :func:`key_file_in_use` for ``path``; kept so until the end."""
    descriptor = _key_file_lock(path)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(descriptor)


class Sealed(TypeDecorator[str]):
    """Free text that is personal data: sealed on the way in, opened on the way out."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Sealed on the way in."""
        return None if value is None else keys_of(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """Opened on the way out."""
        return None if value is None else keys_of(dialect).open(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON value that holds personal data (links, drafts, payloads), sealed as text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """JSON, then sealed, on the way in."""
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return keys_of(dialect).seal(text)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """Opened, then parsed, on the way out."""
        return None if value is None else json.loads(keys_of(dialect).open(value))


BLIND_INDEXES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "cases": {
        "contact_email_index": ("contact_email", "email"),
        "contact_phone_index": ("contact_phone", "phone"),
        "enquirer_index": ("enquirer_chat", "chat"),
    },
    "case_links": {"key": ("shown", "link")},
}
"""Blind index columns kept by :func:`reseal`: index column -> (sealed column, kind)."""


def reseal(
    connection: Connection,
    keys: DataKeys,
    tables: Mapping[str, Sequence[str]],
    *,
    key_column: str = "id",
) -> int:
    """Seal every value of ``tables``' columns with the current key; the values changed.

    Used by ``helpline db rotate-key`` and by the migration that introduced sealing (for
    values written in plain before it). Rows go in batches by primary key; values
    already sealed with the current key are left as they are.
    """
    changed = 0
    for name, columns in tables.items():
        primary: ColumnClause[Any] = column(key_column)
        sealed = [column(c, Text) for c in columns]
        source = table(name, primary, *sealed)
        last: Any = None
        while True:
            query = select(primary, *sealed).order_by(primary).limit(RESEAL_BATCH)
            if last is not None:
                query = query.where(primary > last)
            rows = connection.execute(query).all()
            if not rows:
                break
            last = rows[-1][0]
            updates = []
            for row in rows:
                values = dict(zip(columns, row[1:], strict=True))
                stale = {
                    c: keys.seal(keys.open(v))
                    for c, v in values.items()
                    if v is not None and not keys.is_current(v)
                }
                if stale:
                    updates.append({"_key": row[0], **{c: values[c] for c in columns}, **stale})
                    changed += len(stale)
            if updates:
                statement = (
                    sql_update(source)
                    .where(primary == bindparam("_key"))
                    .values({c: bindparam(c) for c in columns})
                )
                connection.execute(statement, updates)
    return changed


def _blind_or_none(keys: DataKeys, kind: str, value: str | None) -> str | None:
    return keys.blind(kind, value) if value else None


def reindex(connection: Connection, keys: DataKeys, only: Iterable[str] | None = None) -> int:
    """Recompute every blind index under the current key (after a rotation); rows changed.

    ``only``: these tables (a migration names the ones that exist at its revision).
    """
    changed = 0
    wanted = set(BLIND_INDEXES if only is None else only)
    for name, indexes in BLIND_INDEXES.items():
        if name not in wanted:
            continue
        sources = sorted({source for source, _ in indexes.values()})
        primary: ColumnClause[Any] = column("id")
        target = table(name, primary, *(column(c, Text) for c in (*sources, *indexes)))
        rows = connection.execute(
            select(primary, *(column(c, Text) for c in sources)).select_from(target)
        ).all()
        updates = []
        for row in rows:
            plain = {
                c: (keys.open(v) if v else None) for c, v in zip(sources, row[1:], strict=True)
            }
            values = {
                index: _blind_or_none(keys, kind, plain[source])
                for index, (source, kind) in indexes.items()
            }
            updates.append({"_key": row[0], **values})
        if updates:
            statement = (
                sql_update(target)
                .where(primary == bindparam("_key"))
                .values({c: bindparam(c) for c in indexes})
            )
            connection.execute(statement, updates)
            changed += len(updates)
    return changed


def sealed_columns(tables: Iterable[Any]) -> dict[str, list[str]]:
    """The sealed columns of ``tables`` (SQLAlchemy ``Table`` objects), by table name."""
    found: dict[str, list[str]] = {}
    for source in tables:
        names = [c.name for c in source.columns if isinstance(c.type, Sealed | SealedJSON)]
        if names:
            found[source.name] = names
    return found
