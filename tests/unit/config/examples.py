# ruff: noqa: E501 (the examples are verbatim, comments and all)
"""The realm-file examples of the operator interface (docs/operations.md, "Realm files"), verbatim.

Every one of them must load exactly as the interface says: they are what operators copy.
"""

ACME = """\
# realms/acme.toml: one contract
[contract]
id = "acme"                      # unique among contracts
name = "ACME Corporation"
ends = 2027-03-31                # optional: after this date its realms get Access-Reject (第9条)

[[client]]                       # クライアント: one registered terminal = one IP (第5条2)
address = "198.51.100.7"         # IPv4 or IPv6
secret = "s3cret"
require_message_authenticator = true   # default true; false only for legacy NAS
rate_limit = 500                 # optional: requests per second from this NAS
coa_port = 3799                  # optional: where Disconnect-Request goes (RFC 5176)

[[realm]]
name = "acme.example"            # matched case-insensitively against the text after the last '@'
mode = "group"                   # "group" | "proxy" | "vpdn"
max_accounts = 1000              # group: contract limit on accounts (第7条)
max_sessions = 200               # optional: concurrent sessions in this realm (第14条2)
max_sessions_per_account = 1     # optional: Simultaneous-Use
traffic_quota = "500GB"          # optional: per calendar month, from accounting octets
"""

GLOBEX = """\
# realms/globex.toml: a proxy contract
[contract]
id = "globex"
name = "Globex"

[[client]]
address = "198.51.100.9"
secret = "other"

[[realm]]
name = "globex.example"
mode = "proxy"
strip = false                    # default true: forward "user" instead of "user@realm"
pool = "failover"                # "failover" (in order) | "load-balance"
[[realm.server]]
address = "203.0.113.20"
auth_port = 1812
acct_port = 1813
secret = "upstream-secret"
"""

INITECH = """\
# realms/initech.toml: a VPDN contract (no client needed: requests come from carrier LACs)
[contract]
id = "initech"
name = "Initech"

[[realm]]
name = "vpn.initech.example"
mode = "vpdn"
carrier = "D"                    # "D" | "K" | "E": answered only to that carrier's access servers
balance = "round-robin"          # "none" | "lac" | "round-robin" | "weighted" | "least-sessions"
authenticate = false             # true: check the user's password against this realm's accounts first
probe_interval = 10              # seconds between L2TP health probes of each LNS; 0 = off
[[realm.lns]]
address = "192.0.2.10"
port = 1701
secret = "tunnel-secret"         # the L2TP tunnel secret, sent as Tunnel-Password
preference = 1
weight = 1
max_sessions = 5000
"""

CARRIERS = """\
# realms/carriers.toml: access servers of the carrier networks (operator-registered)
[[carrier]]
type = "D"
address = "203.0.113.1"
secret = "docomo-lac-secret"
require_message_authenticator = true
"""
