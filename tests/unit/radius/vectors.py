"""Example packets of RFC 2865 §7, shared secret "xyzzy5461"."""

SECRET = b"xyzzy5461"

# §7.1 User Telnet to Specified Host: Access-Request for "nemo", password "arctangent".
ACCESS_REQUEST_7_1 = bytes.fromhex(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
)
PASSWORD_7_1 = b"arctangent"

# §7.1: the Access-Accept (Service-Type Login, Login-Service Telnet, Login-IP-Host 192.168.1.3).
ACCESS_ACCEPT_7_1 = bytes.fromhex(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf"
    "9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
)

# §7.2 Framed User Authenticating with CHAP: "flopsy", CHAP id 22, no CHAP-Challenge (the
# Request Authenticator is the challenge).
ACCESS_REQUEST_7_2 = bytes.fromhex(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
)

# §7.3 Access-Challenge with Reply-Message and State.
ACCESS_CHALLENGE_7_3 = bytes.fromhex(
    "0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c"
    "71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20"
    "33 32 37 36 39 34 33 30 2e 20 20 45 6e 74 65 72"
    "20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f"
    "6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30"
)
