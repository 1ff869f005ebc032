"""The cryptography of MS-CHAP: RFC 2433 (v1), RFC 2759 (v2) and RFC 3079 (MPPE keys).

Pure functions over bytes, named after the RFC's pseudo-code. MD4 and DES are this package's
own, compiled (``radiusgw.auth.md4``, ``radiusgw.auth.des``: why there); SHA-1 is hashlib's.
The test vectors are RFC 2759 §9.2-9.3 and RFC 3079 §3.5 (tests/unit/auth/test_mschap.py).

Passwords are the account's UTF-8 octets; the MS-CHAP hashes take them as Unicode (UTF-16LE,
RFC 2759 §8.3). Nothing here logs or compares: the caller compares with ``hmac.compare_digest``.
"""

from __future__ import annotations

from collections import OrderedDict
from hashlib import sha1
from typing import Final

from radiusgw.auth import des, md4

# RFC 2759 §8.7: the magic constants of GenerateAuthenticatorResponse.
_AUTH_MAGIC1: Final = b"Magic server to client signing constant"
_AUTH_MAGIC2: Final = b"Pad to make it do more than one iteration"
# RFC 3079 §3.4: GetMasterKey and GetAsymmetricStartKey.
_MASTER_MAGIC: Final = b"This is the MPPE Master Key"
_CLIENT_SEND_MAGIC: Final = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_SERVER_SEND_MAGIC: Final = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1: Final = bytes(40)
_SHS_PAD2: Final = b"\xf2" * 40


# The NT hash and its hash depend on the password alone: kept per password for as many
# accounts as a worker caches (32 octets an account), so that a user's second login skips
# the UTF-16 conversion and both MD4s.
_HASHES: Final = 1 << 17


class DerivedCache:
    """Octets derived from octets, the ``size`` most recently used kept.

    Not ``functools.lru_cache``: its entries are objects the cyclic collector tracks, one per
    password, which live long enough to reach the oldest generation. With 100,000 users a
    worker made one for each new user, and the oldest generation's growth set off full
    collections of 8-46 ms each, in all four workers at once (a ``gc.callbacks`` probe under
    group MS-CHAPv2, ``bench.run --scenario mschapv2 --open-loop 8``); with more users than
    the cache holds the churn never ends. An ``OrderedDict`` keeps its order in C nodes and
    its keys and values here are ``bytes``, which the collector does not track: it walks one
    object, however full.
    """

    __slots__ = ("_entries", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        entries = self._entries
        entries[key] = value
        if len(entries) > self.size:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


_NT_HASHES: Final = DerivedCache(_HASHES)
_NT_HASH_HASHES: Final = DerivedCache(_HASHES)


def nt_password_hash(password: bytes) -> bytes:
    """RFC 2759 §8.3 NtPasswordHash: MD4 of the password in UTF-16LE."""
    digest = _NT_HASHES.get(password)
    if digest is None:
        unicode = password.decode("utf-8", "surrogateescape").encode("utf-16-le", "surrogatepass")
        digest = md4.digest(unicode)
        _NT_HASHES.put(password, digest)
    return digest


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """RFC 2759 §8.4 HashNtPasswordHash: MD4 of the NT password hash."""
    digest = _NT_HASH_HASHES.get(password_hash)
    if digest is None:
        digest = md4.digest(password_hash)
        _NT_HASH_HASHES.put(password_hash, digest)
    return digest


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """RFC 2759 §8.5 ChallengeResponse (RFC 2433 §A.5): the 8-octet challenge DES-encrypted with
    three keys cut from the 16-octet hash padded with zeros to 21 octets."""
    z = password_hash + bytes(5)
    return (
        des.encrypt(z[:7], challenge)
        + des.encrypt(z[7:14], challenge)
        + des.encrypt(z[14:], challenge)
    )


def challenge_hash(
    peer_challenge: bytes, authenticator_challenge: bytes, user_name: bytes
) -> bytes:
    """RFC 2759 §8.2 ChallengeHash: the first 8 octets of SHA-1(peer + authenticator + name)."""
    return sha1(peer_challenge + authenticator_challenge + user_name).digest()[:8]


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, user_name: bytes, password_hash: bytes
) -> bytes:
    """RFC 2759 §8.1 GenerateNTResponse, from the NT password hash."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    return challenge_response(challenge, password_hash)


def authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    user_name: bytes,
) -> bytes:
    """RFC 2759 §8.7 GenerateAuthenticatorResponse: "S=" and 40 upper-case hex digits."""
    digest = sha1(hash_nt_password_hash(password_hash) + nt_response + _AUTH_MAGIC1).digest()
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    digest = sha1(digest + challenge + _AUTH_MAGIC2).digest()
    return b"S=" + digest.hex().upper().encode("ascii")


def master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey."""
    return sha1(password_hash_hash + nt_response + _MASTER_MAGIC).digest()[:16]


def asymmetric_start_key(master: bytes, length: int, *, send: bool, server: bool = True) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey: the server's send key is the client's receive key."""
    magic = _SERVER_SEND_MAGIC if send == server else _CLIENT_SEND_MAGIC
    return sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def mppe_v2_keys(password_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """RFC 3079 §3 (128-bit): the server's (send, receive) start keys, which RFC 2548 §2.4.2-3
    carries as MS-MPPE-Send-Key and MS-MPPE-Recv-Key."""
    master = master_key(hash_nt_password_hash(password_hash), nt_response)
    return (
        asymmetric_start_key(master, 16, send=True),
        asymmetric_start_key(master, 16, send=False),
    )


def mppe_v1_keys(password: bytes) -> bytes:
    """RFC 2548 §2.4.1 MS-CHAP-MPPE-Keys before encryption: LM-Key (8 octets), NT-Key (16),
    zero padding to 32 octets.

    The LM-Key is zeros: no LAN Manager hash is made or offered (it is DES over the upper-cased
    password cut in 7-octet halves; FreeRADIUS 3.2 sends zeros too). The NT-Key is
    HashNtPasswordHash, not the NT hash §2.4.1 names: RFC 3079 §2 derives the v1 MPPE keys from
    it, and that is what NASes (pppd) and FreeRADIUS use."""
    return bytes(8) + hash_nt_password_hash(nt_password_hash(password)) + bytes(8)
