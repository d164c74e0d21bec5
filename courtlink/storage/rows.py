"""The one row mapper: table rows to the domain's frozen dataclasses and back.

A field is read from the column of the same name. Where the column's type differs from the
field's (seats kept as text, JSON kept as text, enums kept as their value, SQLite handing
integers back for booleans), the mapper for that dataclass names a ``Convert`` for the field,
once, and both directions use it. Times need no conversion here: the ``UTCDateTime`` column type
(tables.py) already gives aware UTC datetimes back on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Row, Table

from courtlink.court.seats import Seat

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "BOOL",
    "INT",
    "JSON",
    "OPTIONAL_INT",
    "SEAT_SET",
    "SEAT_TUPLE",
    "Convert",
    "RowMapper",
    "enum",
    "optional_enum",
]

T = TypeVar("T", bound="DataclassInstance")
E = TypeVar("E", bound=StrEnum)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Convert:
    """How one field is stored: ``load`` turns the column's value into the field's, ``dump`` the
    field's into the column's."""

    load: Callable[[Any], Any]
    dump: Callable[[Any], Any] = _same


_IDENTITY = Convert(_same)


def _json_dump(value: Any) -> str:
    # Sorted keys: the same data is always stored as the same text.
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _seat_set(value: str) -> frozenset[Seat]:
    return frozenset(Seat(s) for s in value.split(",") if s)


def _seat_set_dump(seats: frozenset[Seat]) -> str:
    # Sorted, so that the same set is always the same text.
    return ",".join(sorted(seats))


def _seat_tuple(value: str) -> tuple[Seat, ...]:
    return tuple(Seat(s) for s in value.split(","))


def _seat_tuple_dump(seats: tuple[Seat, ...]) -> str:
    # In the given order: an invite's first seat is the one it offers first.
    return ",".join(seats)


BOOL = Convert(bool)
"""A boolean column (SQLite may give 0/1 back)."""

INT = Convert(int)
"""An integer column (a BIGINT or INTEGER, whatever the driver's type)."""

OPTIONAL_INT = Convert(_optional_int)
"""A nullable integer column."""

JSON = Convert(json.loads, _json_dump)
"""JSON kept as text: sorted keys, non-ASCII kept readable."""

SEAT_SET = Convert(_seat_set, _seat_set_dump)
"""A set of seats kept as sorted comma-separated text; the empty text is the empty set."""

SEAT_TUPLE = Convert(_seat_tuple, _seat_tuple_dump)
"""Seats in order, kept as comma-separated text (never empty)."""


def enum(kind: type[E]) -> Convert:
    """An enum kept as its value."""
    return Convert(kind, str)


def optional_enum(kind: type[E]) -> Convert:
    """A nullable enum kept as its value; NULL and the empty text both read as None."""

    def load(value: str | None) -> E | None:
        return kind(value) if value else None

    def dump(value: E | None) -> str | None:
        return None if value is None else str(value)

    return Convert(load, dump)


class RowMapper(Generic[T]):
    """Maps rows of ``table`` to ``cls`` and back, field by field by name.

    Fields that are not columns (a detention's periods, a document's steps) are given by the
    caller to ``load``; columns that are not fields are ignored.
    """

    __slots__ = ("_columns", "_convert", "cls", "table")

    def __init__(self, cls: type[T], table: Table, **convert: Convert) -> None:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(convert) - names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
        self.cls = cls
        self.table = table
        self._convert: Mapping[str, Convert] = MappingProxyType(convert)
        self._columns = tuple(c.name for c in table.columns if c.name in names)

    def _conversion(self, name: str) -> Convert:
        return self._convert.get(name, _IDENTITY)

    def load(self, row: Row[Any] | Mapping[str, Any], **given: Any) -> T:
        """The dataclass of this row; ``given`` supplies (or overrides) fields by name."""
        values: Mapping[Any, Any] = row._mapping if isinstance(row, Row) else row
        kwargs = dict(given)
        for f in fields(self.cls):
            if f.name not in kwargs and f.name in values:
                kwargs[f.name] = self._conversion(f.name).load(values[f.name])
        return self.cls(**kwargs)

    def dump(self, record: T, *only: str) -> dict[str, Any]:
        """Column values of ``record`` to insert or update: every column that is a field, or
        just the ``only`` ones."""
        names = only or self._columns
        unknown = sorted(set(names) - set(self._columns))
        if unknown:
            raise KeyError(f"{self.table.name} has no field column {', '.join(unknown)}")
        return {name: self._conversion(name).dump(getattr(record, name)) for name in names}
