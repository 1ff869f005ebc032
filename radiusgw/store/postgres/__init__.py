"""The fleet's shared store: PostgreSQL through synchronous psycopg 3.

``url`` tells a ``postgresql://`` URL from an SQLite path and names it without its password (no
psycopg); ``connection`` opens a connection and turns PostgreSQL's errors into one sentence;
``schema`` holds the versioned migrations (``radiusgw db migrate``) and the check a node makes
on start; ``accounts`` is the account half of the ``AccountStore`` Protocol. This package's
``__init__`` imports nothing, so that ``url`` can be used without loading psycopg.
"""
