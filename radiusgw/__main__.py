"""``python -m radiusgw`` is the ``radiusgw`` command."""

from radiusgw.cli import main

main()
