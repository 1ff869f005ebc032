"""The password cipher: AES-256-GCM with the key in a file apart from the database.

Rules:

- The key file holds exactly 32 random bytes (an AES-256 key) and nothing else. It is created on
  first use with mode 0600 and is never world-readable, not even for an instant: the bytes are
  written to a temporary file made with ``O_CREAT | O_EXCL`` and mode 0600, then hard-linked into
  place, so a process that races us sees either no key file or a complete one.
- An existing key file with any group or other permission bit, or of the wrong length, is refused.
- A sealed password is ``nonce (12 random bytes) || ciphertext || tag``. The associated data binds
  it to its realm and username, so a ciphertext copied onto another row does not decrypt.
- Losing the key loses every stored password; the database cannot be read without it.

Nothing here knows about SQLite; ``radiusgw.store.sqlite`` stores what this module seals.
"""

from __future__ import annotations

import os
import secrets
import stat
import struct
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from radiusgw.errors import StoreError
from radiusgw.store.durable import fsync_directory

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM nonce size (NIST SP 800-38D §5.2.1.1); random per seal
_PASSWORD_AD = b"radiusgw password v1\x00"
_KEY_CHECK_AD = b"radiusgw key check v1\x00"
_KEY_CHECK_TEXT = b"radiusgw key check"


class PasswordCipher:
    """Seals and opens account passwords with one AES-256-GCM key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise StoreError(f"a password key is {KEY_BYTES} bytes; this one has {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path, *, create: bool = True) -> PasswordCipher:
        return cls(load_key(path, create=create))

    def encrypt(self, realm: str, username: str, password: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        data = password.encode("utf-8")
        return nonce + self._aead.encrypt(nonce, data, _password_ad(realm, username))

    def decrypt(self, realm: str, username: str, sealed: bytes) -> str:
        """The clear password; StoreError if the key or the row does not match the ciphertext."""
        try:
            data = self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _password_ad(realm, username)
            )
        except (InvalidTag, ValueError):
            raise StoreError(
                f"the password of account {username!r} in realm {realm!r} cannot be decrypted: "
                "the key file does not match the database, or the row was altered"
            ) from None
        return data.decode("utf-8")

    def key_check(self) -> bytes:
        """A sealed constant kept in the database, so a wrong key is caught when it is opened."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, _KEY_CHECK_TEXT, _KEY_CHECK_AD)

    def matches(self, key_check: bytes) -> bool:
        try:
            data = self._aead.decrypt(
                key_check[:NONCE_BYTES], key_check[NONCE_BYTES:], _KEY_CHECK_AD
            )
        except (InvalidTag, ValueError):
            return False
        return data == _KEY_CHECK_TEXT


def open_against(
    key_path: Path,
    where: str,
    *,
    read_only: bool,
    stored_check: Callable[[], bytes | None],
    store_check: Callable[[bytes], None],
) -> PasswordCipher:
    """The cipher of ``key_path``, matched against the key check the database ``where`` holds
    (``stored_check``); a database with none gets this key's (``store_check``, which must not
    overwrite one another process or node stored first). Refused, in one sentence, when the
    key file is missing for a database that has a check, or does not match it."""
    check = stored_check()
    if check is not None and not key_path.exists():
        raise StoreError(
            f"the key file {key_path} is missing, but the database {where} was "
            "set up with a key; restore that key file (a new key could not read its passwords)"
        )
    cipher = PasswordCipher.from_key_file(key_path, create=check is None and not read_only)
    if check is None and read_only:
        return cipher  # nothing sealed yet, and nothing may be written here
    if check is None:
        store_check(cipher.key_check())
        check = stored_check()  # another process may have sealed it first
    if check is None or not cipher.matches(check):
        raise StoreError(
            f"the key file {key_path} does not match the database {where}: "
            "its passwords were sealed with another key"
        )
    return cipher


def _password_ad(realm: str, username: str) -> bytes:
    # Length-prefixed, so ("a", "bc") and ("ab", "c") bind differently.
    r = realm.encode("utf-8")
    u = username.encode("utf-8")
    return _PASSWORD_AD + struct.pack(">H", len(r)) + r + struct.pack(">H", len(u)) + u


def load_key(path: Path, *, create: bool = True) -> bytes:
    """Read the key file, creating it first (mode 0600) when it is missing and ``create`` is set."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            raise StoreError(f"the key file {path} does not exist") from None
    _create_key(path)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"the key file {path} is not a regular file")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise StoreError(
                f"the key file {path} has group or other permissions (mode {mode:04o}); "
                f"it must be readable by its owner only: chmod 600 {path}"
            )
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        size = max(len(key), st.st_size)
        raise StoreError(
            f"the key file {path} holds {size} bytes where a key has exactly {KEY_BYTES}; "
            "it is not a radiusgw key file or it was damaged"
        )
    return key


def _create_key(path: Path) -> None:
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the key file {path}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, 0o600)  # exactly 0600 whatever the umask
            os.write(fd, AESGCM.generate_key(bit_length=KEY_BYTES * 8))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; theirs is the key
        except OSError as exc:
            raise StoreError(f"cannot create the key file {path}: {exc.strerror}") from None
        try:
            fsync_directory(directory)  # losing the key loses every password: make it durable
        except OSError as exc:
            raise StoreError(f"cannot create the key file {path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
