"""MS-CHAPv1/v2 and EAP against a group realm, with real clients and FreeRADIUS as the reference.

The MS-CHAPv2 responses are built here by an implementation of RFC 2759 and RFC 3079 written
for this module (it imports nothing of the gateway's MS-CHAP code) and checked against the RFCs'
worked examples before it is used. radclient decrypts the MPPE keys of the answers (RFC 2548
§2.4.2) with the shared secret, so the keys compared here are what a NAS would read.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from hashlib import sha1
from pathlib import Path

import pytest
from Crypto.Cipher import DES
from Crypto.Hash import MD4

from tests.integration.freeradius import FreeRadius, running_freeradius
from tests.integration.gateway import Gateway, radclient, radiusgw

pytestmark = pytest.mark.peers

SECRET = "acme-secret"

# -- RFC 2759 / RFC 3079, written again for the test ---------------------------------------


def nt_hash(password: str) -> bytes:
    return MD4.new(password.encode("utf-16-le")).digest()


def des_encrypt(key7: bytes, block: bytes) -> bytes:
    # 56 bits into eight 7-bit groups, each shifted left one (the parity bit DES ignores).
    bits = "".join(f"{b:08b}" for b in key7)
    key8 = bytes(int(bits[i : i + 7], 2) << 1 for i in range(0, 56, 7))
    return DES.new(key8, DES.MODE_ECB).encrypt(block)


def nt_response(auth_challenge: bytes, peer_challenge: bytes, user: bytes, password: str) -> bytes:
    challenge = sha1(peer_challenge + auth_challenge + user).digest()[:8]  # §8.2
    z = nt_hash(password).ljust(21, b"\0")  # §8.5
    return b"".join(des_encrypt(z[i : i + 7], challenge) for i in (0, 7, 14))


def authenticator_response(
    password: str, nt: bytes, peer_challenge: bytes, auth_challenge: bytes, user: bytes
) -> str:
    hash_hash = MD4.new(nt_hash(password)).digest()  # §8.7
    digest = sha1(hash_hash + nt + b"Magic server to client signing constant").digest()
    challenge = sha1(peer_challenge + auth_challenge + user).digest()[:8]
    digest = sha1(digest + challenge + b"Pad to make it do more than one iteration").digest()
    return "S=" + digest.hex().upper()


def mppe_keys(password: str, nt: bytes) -> tuple[bytes, bytes]:
    """RFC 3079 §3.4: the server's (send, receive) 128-bit start keys."""
    hash_hash = MD4.new(nt_hash(password)).digest()
    master = sha1(hash_hash + nt + b"This is the MPPE Master Key").digest()[:16]
    client_send = (
        b"On the client side, this is the send key; on the server side, it is the receive key."
    )
    client_recv = (
        b"On the client side, this is the receive key; on the server side, it is the send key."
    )

    def start(magic: bytes) -> bytes:
        return sha1(master + bytes(40) + magic + b"\xf2" * 40).digest()[:16]

    return start(client_recv), start(client_send)


def test_the_tests_rfc2759_and_rfc3079_match_the_rfcs_examples() -> None:
    # RFC 2759 §9.2 and RFC 3079 §3.5.3: "User", "clientPass".
    auth = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
    peer = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
    nt = nt_response(auth, peer, b"User", "clientPass")
    assert nt.hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    assert (
        authenticator_response("clientPass", nt, peer, auth, b"User")
        == "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    )
    assert mppe_keys("clientPass", nt)[0].hex().upper() == "8B7CDC149B993A1BA118CB153F56DCCB"


# -- requests and answers --------------------------------------------------------------------


def mschapv2(user: str, password: str, ident: int = 7) -> tuple[str, bytes, bytes, bytes]:
    """radclient input for one MS-CHAPv2 Access-Request, and its challenges and NT-Response."""
    auth, peer = os.urandom(16), os.urandom(16)
    nt = nt_response(auth, peer, user.encode(), password)
    response = bytes((ident, 0)) + peer + bytes(8) + nt
    text = (
        f'User-Name = "{user}"\n'
        f"MS-CHAP-Challenge = 0x{auth.hex()}\n"
        f"MS-CHAP2-Response = 0x{response.hex()}\n"
    )
    return text, auth, peer, nt


def octets(value: str) -> bytes:
    assert value.startswith("0x"), value
    return bytes.fromhex(value[2:])


@pytest.fixture
def dora(db: Path, realms: Path) -> Path:
    """A disabled account beside the conftest's alice and bob."""
    common = ["--db", str(db), "--realms", str(realms)]
    radiusgw("account", "add", "acme.example", "dora", "--password", "explorer", *common)
    radiusgw("account", "disable", "acme.example", "dora", "--db", str(db))
    return db


@pytest.fixture
def freeradius(tmp_path: Path) -> Iterator[FreeRadius]:
    users = '"alice@acme.example" Cleartext-Password := "wonderland"\n'
    with running_freeradius(tmp_path / "fr", secret=SECRET, users=users, mschap=True) as fr:
        yield fr


def test_radtest_mschap_v1_is_accepted_with_the_keys_freeradius_gives(
    gateway: Gateway, freeradius: FreeRadius
) -> None:
    keys = []
    for port in (gateway.auth_port, freeradius.auth_port):
        command = ["radtest", "-t", "mschap", "alice@acme.example", "wonderland"]
        out = subprocess.run(
            [*command, f"127.0.0.1:{port}", "0", SECRET],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert "Received Access-Accept" in out, out
        assert "MS-MPPE-Encryption-Policy = Encryption-Allowed" in out
        assert "MS-MPPE-Encryption-Types = RC4-40or128-bit-Allowed" in out
        line = next(x for x in out.splitlines() if "MS-CHAP-MPPE-Keys" in x)
        keys.append(octets(line.split(" = ")[1]))
    # RFC 2548 §2.4.1: LM-Key (zeros) + NT-Key (HashNtPasswordHash); the challenge plays no part.
    assert keys[0] == keys[1] == bytes(8) + MD4.new(nt_hash("wonderland")).digest()


def test_mschapv2_accept_carries_success_and_the_rfc3079_keys(gateway: Gateway) -> None:
    text, auth, peer, nt = mschapv2("alice@acme.example", "wonderland")
    r = radclient(gateway.auth_port, "auth", SECRET, text)
    assert r.code == "Access-Accept", r.output
    assert r.attributes["Framed-IP-Address"] == ["10.0.0.5"]  # the account's own, kept
    expected = authenticator_response("wonderland", nt, peer, auth, b"alice@acme.example")
    assert octets(r.attributes["MS-CHAP2-Success"][0]) == b"\x07" + expected.encode()
    send, recv = mppe_keys("wonderland", nt)
    assert octets(r.attributes["MS-MPPE-Send-Key"][0]) == send
    assert octets(r.attributes["MS-MPPE-Recv-Key"][0]) == recv


def test_mschapv2_answers_match_freeradius_for_the_same_request(
    gateway: Gateway, freeradius: FreeRadius
) -> None:
    text, *_ = mschapv2("alice@acme.example", "wonderland")
    ours = radclient(gateway.auth_port, "auth", SECRET, text)
    reference = radclient(freeradius.auth_port, "auth", SECRET, text)
    assert (ours.code, reference.code) == ("Access-Accept", "Access-Accept"), reference.output
    for name in (
        "MS-CHAP2-Success",
        "MS-MPPE-Send-Key",  # decrypted: the salts differ, the keys must not
        "MS-MPPE-Recv-Key",
        "MS-MPPE-Encryption-Policy",
        "MS-MPPE-Encryption-Types",
    ):
        assert ours.attributes[name] == reference.attributes[name], name


def test_mschapv2_wrong_password_and_unknown_user_get_error_691(gateway: Gateway) -> None:
    for user, password in (("alice@acme.example", "guess"), ("nobody@acme.example", "guess")):
        r = radclient(gateway.auth_port, "auth", SECRET, mschapv2(user, password)[0])
        assert r.code == "Access-Reject", r.output
        assert r.attributes["Reply-Message"] == ["unknown user or wrong password"]
        # radclient shows the Ident octet (7, the response's) in octal, then the text.
        error = r.attributes["MS-CHAP-Error"][0]
        assert error.startswith("\\007E=691 R=0 C=") and len(error.split()[2]) == 34, error
        assert error.endswith(" V=3 M=Authentication failed")


def test_mschapv2_disabled_account_gets_error_647(gateway: Gateway, dora: Path) -> None:
    r = radclient(gateway.auth_port, "auth", SECRET, mschapv2("dora@acme.example", "explorer")[0])
    assert r.code == "Access-Reject", r.output
    assert r.attributes["Reply-Message"] == ["account disabled"]
    assert r.attributes["MS-CHAP-Error"][0].startswith("\\007E=647 R=0 C=")


def test_eapol_test_gets_an_eap_failure_as_its_first_answer(
    gateway: Gateway, tmp_path: Path
) -> None:
    conf = tmp_path / "eapol.conf"
    conf.write_text(
        'network={\n  key_mgmt=IEEE8021X\n  eap=MD5\n  identity="alice@acme.example"\n'
        '  password="wonderland"\n}\n'
    )
    started = time.monotonic()
    server = ["-a", "127.0.0.1", "-p", str(gateway.auth_port), "-s", SECRET]
    proc = subprocess.run(
        ["eapol_test", "-c", str(conf), *server, "-n", "-t", "10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode != 0 and out.rstrip().endswith("FAILURE"), out[-2000:]
    answers = [line for line in out.splitlines() if line.startswith("RADIUS message: code=")]
    # The Access-Request, then at once the Access-Reject: no Access-Challenge, no retransmit.
    assert [a.split()[2] for a in answers] == ["code=1", "code=3"], answers
    assert "decapsulated EAP packet (code=4" in out  # RFC 3579 §2.6.1: an EAP-Failure
    assert "CTRL-EVENT-EAP-FAILURE" in out
    assert "EAP is not offered in this realm" in out
    assert elapsed < 8  # far below eapol_test's own 10 s timeout: it did not wait one out
