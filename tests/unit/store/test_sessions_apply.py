"""How ``apply_events`` writes sessions (radiusgw.store.sessions): values as the records say them,
and one batch equal to its records one at a time, whatever the stream.

The records carry the event the engine parsed (``AccountingRecord.event``), as the server's
accounting writer sends them, so the events' fields are set here directly.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from radiusgw.accounting import AccountingEvent
from radiusgw.domain import AdmissionRequest
from radiusgw.radius.attributes import AcctStatusType
from radiusgw.store import AccountingRecord, open_store
from radiusgw.store.sessions import SessionTable
from tests.unit.store.test_sessions import all_rows

REALM = "acme.example"
NAS = "198.51.100.7"
T0 = 1_741_564_800.0  # 2025-03-10 UTC


def event_record(status: AcctStatusType, **fields: Any) -> AccountingRecord:
    fields.setdefault("realm", REALM)
    fields.setdefault("username", "alice")
    fields.setdefault("session_id", "s1")
    fields.setdefault("received", T0)
    fields.setdefault("event_time", fields["received"])
    fields.setdefault("nas_address", NAS)
    event = AccountingEvent(status=status, **fields)
    return AccountingRecord(
        event.received,
        event.nas_address,
        event.realm,
        event.username,
        int(status),
        event.session_id,
        b"parsed on receipt",
        event=event,
    )


def test_absent_values_are_null_and_empty_or_zero_ones_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with open_store(db, Path(f"{db}.key")) as store:
        store.write_accounting(
            [
                event_record(AcctStatusType.START, session_id="", nas_identifier="", username=""),
                event_record(AcctStatusType.STOP, session_id="", terminate_cause=0, username=""),
                event_record(
                    AcctStatusType.START,
                    session_id="full",
                    lns="192.0.2.10",
                    nas_ip_address="198.51.100.1",
                    nas_identifier="lac-1",
                    framed_ip="100.64.0.1",
                    interim_interval=0,  # 0 means absent
                ),
                event_record(AcctStatusType.STOP, session_id="none", terminate_cause=None),
            ]
        )
    conn = sqlite3.connect(db)
    found = conn.execute(
        "SELECT acct_session_id, username, lns, nas_ip_address, nas_identifier, framed_ip,"
        " interim_interval, terminate_cause, closed_by FROM sessions ORDER BY id"
    ).fetchall()
    conn.close()
    assert found == [
        ("", "", None, None, "", None, None, 0, "stop"),
        ("full", "alice", "192.0.2.10", "198.51.100.1", "lac-1", "100.64.0.1", None, None, None),
        ("none", "alice", None, None, None, None, None, None, "stop"),
    ]


_STATUSES = [
    AcctStatusType.START,
    AcctStatusType.INTERIM_UPDATE,
    AcctStatusType.STOP,
    AcctStatusType.ACCOUNTING_ON,
]
_EVENTS = st.lists(
    st.builds(
        event_record,
        st.sampled_from(_STATUSES),
        nas_address=st.sampled_from([NAS, "198.51.100.8"]),
        session_id=st.sampled_from(["a", "b", "c"]),
        username=st.sampled_from(["alice", "bob"]),
        received=st.integers(0, 200).map(lambda s: T0 + s),
        input_octets=st.integers(0, 2**40),
        session_time=st.none() | st.integers(0, 100),
        lns=st.none() | st.sampled_from(["192.0.2.1", "192.0.2.2"]),
        terminate_cause=st.none() | st.integers(0, 20),
    ),
    max_size=25,
)


_HELD = st.lists(
    st.builds(
        AdmissionRequest,
        st.just(REALM),
        st.sampled_from(["alice", "bob"]),
        st.none() | st.sampled_from(["192.0.2.1", "192.0.2.2"]),
        realm_max=st.just(10),
    ),
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(records=_EVENTS, held=_HELD)
def test_one_batch_equals_its_records_one_at_a_time(
    records: list[AccountingRecord], held: list[AdmissionRequest]
) -> None:
    # Repeated keys, NAS restarts and reservations to consume, in any order.
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, batches in (("one", [records]), ("each", [[r] for r in records])):
            db = Path(tmp) / f"{name}.db"
            with open_store(db, Path(f"{db}.key")) as store:
                table = SessionTable(db)
                table.admit(held, T0)
                table.close()
                for batch in batches:
                    store.write_accounting(batch)
            conn = sqlite3.connect(db)
            left = conn.execute("SELECT * FROM session_reservations ORDER BY id").fetchall()
            conn.close()
            results.append((all_rows(db), left))
    assert results[0] == results[1]
