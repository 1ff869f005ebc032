"""The MS-CHAP cryptography against the worked examples of RFC 2759 §9 and RFC 3079 §3.5."""

from __future__ import annotations

import gc

from radiusgw.auth import mschap

# RFC 2759 §9.2 Hash Example: user name "User", password "clientPass".
USER_NAME = b"User"
PASSWORD = b"clientPass"
AUTHENTICATOR_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
CHALLENGE = bytes.fromhex("D02E4386BCE91226")
PASSWORD_HASH = bytes.fromhex("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"

# RFC 2759 §9.3 Example of DES Key Generation: password "MyPw".
MYPW_HASH = bytes.fromhex("FC156AF7EDCD6C0EDDE3337D427F4EAC")
DES_KEY_1 = bytes.fromhex("FD0B5B5E7F6E34D9")
DES_KEY_2 = bytes.fromhex("0E6E796737EA08FE")

# RFC 3079 §3.5 (the same user, password and challenges as RFC 2759 §9.2).
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_40 = bytes.fromhex("8B7CDC149B993A1B")  # §3.5.1
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")  # §3.5.3


def test_rfc2759_hash_example() -> None:
    assert mschap.nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER_NAME) == CHALLENGE
    assert mschap.challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    nt = mschap.generate_nt_response(
        AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USER_NAME, PASSWORD_HASH
    )
    assert nt == NT_RESPONSE
    assert mschap.hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH
    response = mschap.authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER_NAME
    )
    assert response == AUTHENTICATOR_RESPONSE


def test_rfc2759_des_key_generation_example() -> None:
    # The keys themselves are checked against DES in test_des.py.
    assert mschap.nt_password_hash(b"MyPw") == MYPW_HASH


def test_rfc3079_master_and_start_keys() -> None:
    master = mschap.master_key(PASSWORD_HASH_HASH, NT_RESPONSE)
    assert master == MASTER_KEY
    assert mschap.asymmetric_start_key(master, 8, send=True) == SEND_START_KEY_40
    assert mschap.asymmetric_start_key(master, 16, send=True) == SEND_START_KEY_128
    send, recv = mschap.mppe_v2_keys(PASSWORD_HASH, NT_RESPONSE)
    assert send == SEND_START_KEY_128
    # The server's receive key is the client's send key (RFC 3079 §3.4).
    assert recv == mschap.asymmetric_start_key(master, 16, send=True, server=False)
    assert recv != send


def test_mppe_v1_keys_are_zero_lm_key_nt_hash_hash_and_padding() -> None:
    assert mschap.mppe_v1_keys(PASSWORD) == bytes(8) + PASSWORD_HASH_HASH + bytes(8)


def test_non_ascii_password_is_hashed_as_unicode() -> None:
    assert mschap.nt_password_hash("パスワード".encode()) != mschap.nt_password_hash(b"?????")


def test_the_derived_cache_keeps_the_most_recently_used() -> None:
    cache = mschap.DerivedCache(2)
    cache.put(b"a", b"1")
    cache.put(b"b", b"2")
    assert cache.get(b"a") == b"1"  # now b is the least recently used
    cache.put(b"c", b"3")
    assert (cache.get(b"b"), cache.get(b"a"), cache.get(b"c"), len(cache)) == (None, b"1", b"3", 2)


def test_the_derived_cache_gives_the_collector_nothing_to_track_per_entry() -> None:
    # Its entries must not reach the oldest generation one by one (DerivedCache's docstring):
    # lru_cache made a tracked object per entry, 10,000 here.
    cache = mschap.DerivedCache(20_000)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        cache.put(i.to_bytes(4, "big"), bytes(16))
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert len(cache) == 10_000


def test_the_nt_hashes_are_the_same_from_the_cache() -> None:
    first = mschap.nt_password_hash(b"cached twice")
    assert mschap.nt_password_hash(b"cached twice") == first
    assert mschap.hash_nt_password_hash(first) == mschap.hash_nt_password_hash(first)
