"""signaling.messages.parse for every payload model, valid and not; InvalidInput names the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from courtlink.court.seats import Seat
from courtlink.errors import InvalidInput
from courtlink.signaling.messages import (
    PROTOCOL_VERSION,
    JoinRequest,
    LeaveRequest,
    Payload,
    PresenceRequest,
    StateRequest,
    error_ack,
    ok_ack,
    parse,
)

MODELS: list[type[Payload]] = [JoinRequest, LeaveRequest, StateRequest, PresenceRequest]
NOT_OBJECTS: list[Any] = [
    [],
    [{"session": "s1"}],
    "session",
    "",
    0,
    1.5,
    True,
    False,
    b"{}",
    ("session", "s1"),
]


def refused(model: type[Payload], payload: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse(model, payload)
    assert caught.value.code == "invalid_input"
    return caught.value.message


# join ---------------------------------------------------------------------------------------


def test_join_session_only() -> None:
    request = parse(JoinRequest, {"session": "abc123"})
    assert request.session == "abc123"
    assert request.seats is None


@pytest.mark.parametrize(
    ("seats", "parsed"),
    [
        (["judge"], (Seat.JUDGE,)),
        (["creditor"], (Seat.CREDITOR,)),
        (["officer", "debtor"], (Seat.OFFICER, Seat.DEBTOR)),
        (["debtor"], (Seat.DEBTOR,)),
    ],
)
def test_join_with_seats(seats: list[str], parsed: tuple[Seat, ...]) -> None:
    request = parse(JoinRequest, {"session": "s", "seats": seats})
    assert tuple(request.seats or ()) == parsed
    assert all(isinstance(seat, Seat) for seat in request.seats or ())


def test_join_seats_null_means_every_seat_of_the_invite() -> None:
    assert parse(JoinRequest, {"session": "s", "seats": None}).seats is None


def test_join_is_frozen() -> None:
    request = parse(JoinRequest, {"session": "s"})
    with pytest.raises(ValidationError):
        request.session = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "session"),
        (None, "session"),
        ({"seats": ["judge"]}, "session"),
        ({"session": 12345}, "session"),
        ({"session": 1.0}, "session"),
        ({"session": True}, "session"),
        ({"session": None}, "session"),
        ({"session": ["s"]}, "session"),
        ({"session": {"id": "s"}}, "session"),
        ({"session": ""}, "session"),
        ({"session": "x" * 33}, "session"),
        ({"session": "s", "seats": "judge"}, "seats"),
        ({"session": "s", "seats": []}, "seats"),
        ({"session": "s", "seats": ["officer", "debtor", "creditor"]}, "seats"),
        ({"session": "s", "seats": ["judge", "judge", "judge"]}, "seats"),
        ({"session": "s", "seats": ["usher"]}, "seats.0"),
        ({"session": "s", "seats": ["JUDGE"]}, "seats.0"),
        ({"session": "s", "seats": ["officer", "bailiff"]}, "seats.1"),
        ({"session": "s", "seats": [1]}, "seats.0"),
        ({"session": "s", "seats": [None]}, "seats.0"),
        ({"session": "s", "seats": {"judge": True}}, "seats"),
        ({"session": "s", "role": "judge"}, "role"),
        ({"session": "s", "token": "t"}, "token"),
    ],
)
def test_join_invalid(payload: Any, field: str) -> None:
    message = refused(JoinRequest, payload)
    assert message.split(":", 1)[0] == field, message


def test_join_session_length_limits() -> None:
    assert parse(JoinRequest, {"session": "x"}).session == "x"
    assert parse(JoinRequest, {"session": "x" * 32}).session == "x" * 32


def test_unknown_field_says_so() -> None:
    message = refused(JoinRequest, {"session": "s", "sesion": "s"})
    assert message == "sesion: unknown field"


def test_number_as_session_is_not_coerced() -> None:
    message = refused(JoinRequest, {"session": 42})
    assert message.startswith("session: ")
    assert "string" in message


def test_too_many_seats_names_seats() -> None:
    message = refused(JoinRequest, {"session": "s", "seats": ["judge", "officer", "debtor"]})
    assert message.startswith("seats: ")
    assert "2" in message  # the limit is in the reason


def test_bad_seat_name_names_its_index() -> None:
    message = refused(JoinRequest, {"session": "s", "seats": ["judge", "clerk"]})
    assert message.startswith("seats.1: ")
    assert "judge" in message  # the reason lists what is allowed


def test_only_first_error_is_reported() -> None:
    message = refused(JoinRequest, {"session": 1, "seats": ["nobody"], "extra": 1})
    assert message.count(":") >= 1
    assert message.split(":", 1)[0] in {"session", "seats.0", "extra"}


# leave and presence: empty objects only -------------------------------------------------------


@pytest.mark.parametrize("model", [LeaveRequest, PresenceRequest])
@pytest.mark.parametrize("payload", [None, {}])
def test_empty_requests(model: type[Payload], payload: Any) -> None:
    assert isinstance(parse(model, payload), model)


@pytest.mark.parametrize("model", [LeaveRequest, PresenceRequest])
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"session": "s"}, "session"),
        ({"reason": "bye"}, "reason"),
        ({"all": True}, "all"),
    ],
)
def test_empty_requests_refuse_fields(model: type[Payload], payload: Any, field: str) -> None:
    assert refused(model, payload) == f"{field}: unknown field"


# state ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "audio", "video"),
    [
        ({}, None, None),
        (None, None, None),
        ({"audio_muted": True}, True, None),
        ({"audio_muted": False}, False, None),
        ({"video_muted": True}, None, True),
        ({"audio_muted": True, "video_muted": False}, True, False),
        ({"audio_muted": None, "video_muted": None}, None, None),
    ],
)
def test_state_valid(payload: Any, audio: bool | None, video: bool | None) -> None:
    request = parse(StateRequest, payload)
    assert request.audio_muted is audio
    assert request.video_muted is video


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"audio_muted": "yes"}, "audio_muted"),
        ({"audio_muted": "true"}, "audio_muted"),
        ({"audio_muted": 1}, "audio_muted"),
        ({"audio_muted": 0}, "audio_muted"),
        ({"audio_muted": []}, "audio_muted"),
        ({"video_muted": "no"}, "video_muted"),
        ({"video_muted": 1.0}, "video_muted"),
        ({"audio_muted": True, "connection": "connected"}, "connection"),
        ({"muted": True}, "muted"),
    ],
)
def test_state_invalid(payload: Any, field: str) -> None:
    message = refused(StateRequest, payload)
    assert message.split(":", 1)[0] == field, message
    if field.endswith("_muted"):
        assert "boolean" in message


# every model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("payload", NOT_OBJECTS, ids=repr)
def test_non_objects_are_refused(model: type[Payload], payload: Any) -> None:
    assert refused(model, payload) == "payload must be a JSON object"


@pytest.mark.parametrize("model", MODELS)
def test_unknown_field_on_every_model(model: type[Payload]) -> None:
    payload: dict[str, Any] = {"session": "s"} if model is JoinRequest else {}
    payload["surprise"] = 1
    assert refused(model, payload) == "surprise: unknown field"


@pytest.mark.parametrize("model", MODELS)
def test_error_is_a_courtlink_error_with_a_clean_message(model: type[Payload]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(model, {"surprise": object()})
    error = caught.value
    assert error.status == 422
    assert error.as_dict() == {"code": "invalid_input", "message": error.message}
    assert "object at 0x" not in error.message  # the input itself is not echoed
    assert error.__cause__ is None  # pydantic's error is not chained to the edge


# acks --------------------------------------------------------------------------------------


def test_acks() -> None:
    assert ok_ack() == {"ok": True, "data": {}}
    assert ok_ack({"a": 1}) == {"ok": True, "data": {"a": 1}}
    assert error_ack(InvalidInput("session: Field required")) == {
        "ok": False,
        "error": {"code": "invalid_input", "message": "session: Field required"},
    }
    assert PROTOCOL_VERSION == 1
