"""L2TPv2 control messages as octets: one built by hand from RFC 2661, others from xl2tpd.

The SCCRQ is laid out field by field from RFC 2661 §3.1 (header), §4.1 (AVP header) and §6.1
(the AVPs of SCCRQ). The xl2tpd messages were captured on loopback from xl2tpd 1.3.18 acting as
LNS with the tunnel secret ``s3cret``, answering that SCCRQ (our challenge 00..0f).
"""

SECRET = b"s3cret"
LOCAL_TUNNEL_ID = 0x1234
HOST_NAME = "probe"
OUR_CHALLENGE = bytes(range(16))

# SCCRQ (RFC 2661 §6.1), Tunnel ID 0 (the peer has assigned none yet), Ns 0, Nr 0.
SCCRQ = bytes.fromhex(
    # |T|L|x|x|S|x|O|P|x|x|x|x|Ver=2| = c8 02; Length 87; Tunnel ID 0; Session ID 0; Ns 0; Nr 0
    "c802 0057 0000 0000 0000 0000"
    # |M|H|rsvd|Length=8| Vendor 0 | Type 0 Message Type | 1 SCCRQ
    "8008 0000 0000 0001"
    # M, Length 8, Protocol Version (2): version 1, revision 0
    "8008 0000 0002 0100"
    # M, Length 10, Framing Capabilities (3): A and S bits
    "800a 0000 0003 00000003"
    # M, Length 11, Host Name (7): "probe"
    "800b 0000 0007 70726f6265"
    # M, Length 8, Assigned Tunnel ID (9): 0x1234
    "8008 0000 0009 1234"
    # M, Length 8, Receive Window Size (10): 4
    "8008 0000 000a 0004"
    # M, Length 22, Challenge (11): 16 octets 00..0f
    "8016 0000 000b 000102030405060708090a0b0c0d0e0f"
)

# xl2tpd's SCCRP: Tunnel ID 0x1234 (ours), Ns 0, Nr 1; its Assigned Tunnel ID 0x29b8, Host Name
# "lns1", Challenge Response MD5(2 + "s3cret" + 00..0f), and its own Challenge.
XL2TPD_SCCRP = bytes.fromhex(
    "c8020091123400000000000180080000000000028008000000020100800a0000000300000003800a000000"
    "04000000000008000000060690800a000000076c6e733100130000000878656c6572616e63652e636f6d80"
    "080000000929b880080000000a000480160000000dd7cdc58ae8fec2b994e7edd0b94bd8a1801600000"
    "00b28b131c5cb2a9073f4460e94fae047f3"
)
XL2TPD_TUNNEL_ID = 0x29B8
XL2TPD_RESPONSE = bytes.fromhex("d7cdc58ae8fec2b994e7edd0b94bd8a1")
XL2TPD_CHALLENGE = bytes.fromhex("28b131c5cb2a9073f4460e94fae047f3")

# Our SCCCN, which xl2tpd accepted (it logged "Connection established"): Tunnel ID 0x29b8, Ns 1,
# Nr 1, Challenge Response MD5(3 + "s3cret" + XL2TPD_CHALLENGE).
SCCCN = bytes.fromhex(
    "c802002a29b8000000010001800800000000000380160000000d38779d7610fe31460cb2c66080911b05"
)
SCCCN_RESPONSE = bytes.fromhex("38779d7610fe31460cb2c66080911b05")
