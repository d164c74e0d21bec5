"""The row mapper without a database: each conversion both ways, and every aggregate's mapper
turning its dataclass into column values and back unchanged."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from courtlink.court.accounts import Account
from courtlink.court.audit import AuditEvent, Checkpoint
from courtlink.court.cases import Case
from courtlink.court.consent import Consent
from courtlink.court.detentions import Detention, Period
from courtlink.court.documents.lifecycle import DocKind, DocState, Document, InboxItem
from courtlink.court.invites import Invite
from courtlink.court.routing import Caucus
from courtlink.court.seats import AccountRole, Seat
from courtlink.court.sessions import Session, SessionState
from courtlink.court.terminals import Terminal
from courtlink.storage import tables as t
from courtlink.storage.accounts import ACCOUNTS
from courtlink.storage.audit import AUDIT_DATA, AUDIT_EVENTS, CHECKPOINTS
from courtlink.storage.cases import CASES, DETENTIONS, PERIODS
from courtlink.storage.documents import DOCUMENTS, INBOX_ITEMS
from courtlink.storage.rows import (
    BOOL,
    INT,
    JSON,
    OPTIONAL_INT,
    SEAT_SET,
    SEAT_TUPLE,
    RowMapper,
    enum,
    optional_enum,
)
from courtlink.storage.sessions import CONSENTS, INVITES, SESSIONS
from courtlink.storage.terminals import TERMINALS

T0 = datetime(2026, 3, 1, 1, 30, 15, 123456, tzinfo=UTC)


# Conversions ---------------------------------------------------------------------------------


def test_bool_reads_sqlite_integers() -> None:
    assert BOOL.load(1) is True
    assert BOOL.load(0) is False
    assert BOOL.dump(True) is True


def test_int_reads_any_integer_type() -> None:
    assert INT.load(True) == 1
    assert type(INT.load(True)) is int
    assert INT.dump(35_600_000_000_00) == 35_600_000_000_00


def test_optional_int_keeps_null() -> None:
    assert OPTIONAL_INT.load(None) is None
    assert OPTIONAL_INT.load(2048) == 2048
    assert OPTIONAL_INT.dump(None) is None


def test_enum_is_stored_as_its_value() -> None:
    convert = enum(SessionState)
    assert convert.load("ended") is SessionState.ENDED
    stored = convert.dump(SessionState.ENDED)
    assert stored == "ended"
    assert type(stored) is str
    with pytest.raises(ValueError, match="nonsense"):
        convert.load("nonsense")


def test_optional_enum_reads_null_and_empty_text_as_none() -> None:
    convert = optional_enum(Caucus)
    assert convert.load(None) is None
    assert convert.load("") is None
    assert convert.load("creditor") is Caucus.CREDITOR
    assert convert.dump(None) is None
    assert convert.dump(Caucus.DETENTION) == "detention"


def test_json_is_sorted_readable_text() -> None:
    data = {"b": [1, 2], "a": "李某"}
    text = JSON.dump(data)
    assert text == '{"a": "李某", "b": [1, 2]}'
    assert JSON.load(text) == data


def test_seat_set_is_sorted_text_and_empty_text_is_the_empty_set() -> None:
    assert SEAT_SET.load("") == frozenset()
    assert SEAT_SET.dump(frozenset()) == ""
    seats = frozenset({Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR})
    assert SEAT_SET.dump(seats) == "creditor,debtor,officer"
    assert SEAT_SET.load("creditor,debtor,officer") == seats
    assert all(type(s) is Seat for s in SEAT_SET.load("judge"))


def test_seat_tuple_keeps_its_order() -> None:
    seats = (Seat.OFFICER, Seat.DEBTOR)
    assert SEAT_TUPLE.dump(seats) == "officer,debtor"
    assert SEAT_TUPLE.load("officer,debtor") == seats
    with pytest.raises(ValueError, match="''"):
        SEAT_TUPLE.load("")  # an invite always has a seat


def test_audit_data_is_canonical_and_survives_unreadable_text() -> None:
    assert AUDIT_DATA.dump({"b": 1, "a": "李某"}) == '{"a":"李某","b":1}'
    assert AUDIT_DATA.load('{"a":"李某","b":1}') == {"a": "李某", "b": 1}
    # An edit outside Courtlink: the read goes on, and verification names the row.
    assert AUDIT_DATA.load("{not json") == {"unreadable": "{not json"}


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_times_are_aware_utc_both_ways(dialect: Any) -> None:
    """Times are converted by the column type, not the mapper: SQLite keeps naive UTC,
    PostgreSQL timestamptz; both give aware UTC back."""
    column = t.UTCDateTime()
    beijing = T0.astimezone(timezone(timedelta(hours=8)))
    stored = column.process_bind_param(beijing, dialect)
    assert stored is not None
    if dialect.name == "sqlite":
        assert stored == T0.replace(tzinfo=None)
    else:
        assert stored == T0
        assert stored.utcoffset() == timedelta(0)
    read = column.process_result_value(stored, dialect)
    assert read == T0
    assert read is not None
    assert read.tzinfo is UTC
    assert column.process_bind_param(None, dialect) is None
    assert column.process_result_value(None, dialect) is None
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(T0.replace(tzinfo=None), dialect)


# The mapper ----------------------------------------------------------------------------------


def test_load_takes_columns_by_field_name_and_ignores_the_rest() -> None:
    row = {
        "id": "t1",
        "name": "会见室一号终端",
        "center": "盐城市拘留所",
        "credential_hash": "$argon2id$cred",
        "created_at": T0,
        "disabled": 0,
        "not_a_field": "ignored",
    }
    assert TERMINALS.load(row) == Terminal(
        "t1", "会见室一号终端", "盐城市拘留所", "$argon2id$cred", T0
    )


def test_load_leaves_missing_columns_to_their_defaults_and_takes_given_fields() -> None:
    row = {"id": "i1", "document_id": "doc1", "recipient": "terminal:t1", "created_at": T0}
    assert INBOX_ITEMS.load(row) == InboxItem("i1", "doc1", "terminal:t1", T0)
    given = INBOX_ITEMS.load(row, recipient="account:j1", alerted_at=T0)
    assert (given.recipient, given.alerted_at) == ("account:j1", T0)


def test_load_fails_when_a_required_field_has_no_column() -> None:
    with pytest.raises(TypeError, match="recipient"):
        INBOX_ITEMS.load({"id": "i1", "document_id": "doc1", "created_at": T0})


def test_a_conversion_for_no_field_is_refused() -> None:
    with pytest.raises(TypeError, match="Terminal has no field disbled"):
        RowMapper(Terminal, t.terminals, disbled=BOOL)


def test_dump_writes_only_columns_and_only_those_asked_for() -> None:
    detention = Detention("d1", "c1", "李某", "盐城市拘留所", (Period(T0, 15),), created_at=T0)
    values = DETENTIONS.dump(detention)
    assert "periods" not in values
    assert set(values) == {c.name for c in t.detentions.columns}
    assert DETENTIONS.dump(detention, "released_at") == {"released_at": None}
    with pytest.raises(KeyError, match="periods"):
        DETENTIONS.dump(detention, "periods")


SAMPLES: list[tuple[RowMapper[Any], Any, dict[str, Any]]] = [
    (
        ACCOUNTS,
        Account(
            "j1", "judge", "张法官", AccountRole.JUDGE, "法院", "", True, "$argon2id$pw", None, T0
        ),
        {},
    ),
    (CASES, Case("c1", "(2021)苏0903执1234号", "法院", "j1", "王建国", "李某", 10**12, 5, T0), {}),
    (
        DETENTIONS,
        Detention("d1", "c1", "李某", "拘留所", (Period(T0, 15),), T0, T0),
        {"periods": (Period(T0, 15),)},
    ),
    (PERIODS, Period(T0, 15), {}),
    (
        SESSIONS,
        Session(
            "s1",
            "c1",
            T0,
            SessionState.LIVE,
            lobby=True,
            recorded=False,
            created_by="account:j1",
            created_at=T0,
            video_codec="h264",
            admitted=frozenset({Seat.JUDGE, Seat.DEBTOR}),
            caucus=Caucus.CREDITOR,
            muted=frozenset({Seat.CREDITOR}),
        ),
        {},
    ),
    (
        INVITES,
        Invite("i1", "s1", (Seat.OFFICER, Seat.DEBTOR), T0, "account:j1", T0, T0, "终端"),
        {},
    ),
    (CONSENTS, Consent("s1", Seat.DEBTOR, "i1", T0, True, 1, "o1"), {}),
    (TERMINALS, Terminal("t1", "终端", "拘留所", "$argon2id$cred", T0, disabled=True), {}),
    (
        AUDIT_EVENTS,
        AuditEvent(
            7, T0, "case.created", "account:j1", None, "c1", {"n": "李某"}, "0" * 64, "1" * 64
        ),
        {},
    ),
    (CHECKPOINTS, Checkpoint(7, "1" * 64, T0, "k1", "c2lnbmF0dXJl"), {}),
    (
        DOCUMENTS,
        Document(
            "doc1",
            "c1",
            DocKind.RENEWAL,
            DocState.ISSUED,
            "(2021)苏0903执1234号之一",
            "续拘决定书",
            {"days": 10, "reason": "未履行"},
            "account:j1",
            T0,
            detention_id="d1",
            sha256="a" * 64,
            size=2048,
            signed_by="k1",
            updated_at=T0,
            steps=({"action": "draft"},),
        ),
        {"steps": ({"action": "draft"},)},
    ),
    (INBOX_ITEMS, InboxItem("i1", "doc1", "terminal:t1", T0, T0, None, T0), {}),
]


@pytest.mark.parametrize(
    ("mapper", "record", "given"), SAMPLES, ids=[m.cls.__name__ for m, _, _ in SAMPLES]
)
def test_every_mapper_round_trips_its_dataclass(
    mapper: RowMapper[Any], record: Any, given: dict[str, Any]
) -> None:
    values = mapper.dump(record)
    # What is stored is plain column values: text, numbers, booleans, times, None.
    assert all(v is None or type(v) in (str, int, bool, datetime) for v in values.values()), values
    assert set(given) == {f.name for f in fields(record)} - set(values)
    assert mapper.load(values, **given) == record
