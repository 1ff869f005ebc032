"""The password cipher and its key file (radiusgw.store.secrets)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from radiusgw.errors import StoreError
from radiusgw.store.secrets import KEY_BYTES, NONCE_BYTES, PasswordCipher, load_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_created_0600_with_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    key = load_key(path)
    assert len(key) == KEY_BYTES
    assert path.read_bytes() == key
    assert _mode(path) == 0o600


def test_key_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    old = os.umask(0)
    try:
        load_key(path)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_existing_key_file_is_read_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    first = load_key(path)
    assert load_key(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["db.key"]  # no temporary file left behind


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_with_group_or_other_permissions_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "db.key"
    load_key(path)
    path.chmod(mode)
    with pytest.raises(StoreError, match=r"group or other permissions \(mode 0[0-7]{3}\)"):
        load_key(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_the_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "db.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(StoreError, match=f"holds {size} bytes"):
        load_key(path)


def test_missing_key_file_is_refused_when_creation_is_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        load_key(tmp_path / "db.key", create=False)


def test_key_file_in_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create the key file"):
        load_key(tmp_path / "nowhere" / "db.key")


def test_sealed_password_round_trips_and_hides_the_clear_text() -> None:
    cipher = PasswordCipher(os.urandom(KEY_BYTES))
    sealed = cipher.encrypt("acme.example", "bob", "correct horse")
    assert b"correct horse" not in sealed
    assert len(sealed) == NONCE_BYTES + len("correct horse") + 16  # GCM tag
    assert cipher.decrypt("acme.example", "bob", sealed) == "correct horse"


def test_each_seal_uses_a_fresh_nonce() -> None:
    cipher = PasswordCipher(os.urandom(KEY_BYTES))
    assert cipher.encrypt("r", "u", "pw") != cipher.encrypt("r", "u", "pw")


@pytest.mark.parametrize(
    ("realm", "username"),
    [("other.example", "bob"), ("acme.example", "alice"), ("acme.exampl", "ebob")],
)
def test_sealed_password_is_bound_to_its_realm_and_username(realm: str, username: str) -> None:
    cipher = PasswordCipher(os.urandom(KEY_BYTES))
    sealed = cipher.encrypt("acme.example", "bob", "pw")
    with pytest.raises(StoreError, match="cannot be decrypted"):
        cipher.decrypt(realm, username, sealed)


def test_another_key_cannot_decrypt() -> None:
    sealed = PasswordCipher(os.urandom(KEY_BYTES)).encrypt("r", "u", "pw")
    with pytest.raises(StoreError, match="key file does not match the database"):
        PasswordCipher(os.urandom(KEY_BYTES)).decrypt("r", "u", sealed)


def test_key_check_matches_only_its_own_key() -> None:
    cipher = PasswordCipher(os.urandom(KEY_BYTES))
    check = cipher.key_check()
    assert cipher.matches(check)
    assert not PasswordCipher(os.urandom(KEY_BYTES)).matches(check)
    assert not cipher.matches(b"short")


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(StoreError, match="32 bytes"):
        PasswordCipher(b"x" * 16)
