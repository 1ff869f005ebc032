"""Authentication methods: PAP, CHAP, MS-CHAPv1, MS-CHAPv2 (and EAP, refused) behind one interface.

``method`` holds the interface (``Method``, ``Verdict``); one module per method holds its
implementation; ``mschap`` holds the MS-CHAP cryptography (RFC 2433, 2759, 3079). Which method
answers a request is the mode's choice (``radiusgw.modes.group.choose``), from the attributes
present. Sans-I/O: bytes and the cached account in, a verdict out.
"""
