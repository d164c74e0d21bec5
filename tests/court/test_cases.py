"""Case numbers (案号): accepted spellings, one stored form, refused shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courtlink.court.cases import Case, normalize_case_number
from courtlink.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("(2021)苏0903执1234号", "(2021)苏0903执1234号"),
        # Full-width parentheses, as Chinese input methods type them.
        ("（2021）苏0903执1234号", "(2021)苏0903执1234号"),
        ("（2021)苏0903执1234号", "(2021)苏0903执1234号"),
        # Spaces around and inside, ASCII and ideographic.
        ("  (2021) 苏0903 执 1234 号 ", "(2021)苏0903执1234号"),
        ("（2021）\u3000苏0903执1234号", "(2021)苏0903执1234号"),
        # Full-width digits are the same number.
        ("（２０２１）苏０９０３执１２３４号", "(2021)苏0903执1234号"),
        # Sub-kinds: 恢 (resumed), 保 (preservation), 异 (objection).
        ("(2021)苏0903执恢12号", "(2021)苏0903执恢12号"),
        ("(2023)京01执保1号", "(2023)京01执保1号"),
        ("(2019)粤0304执异123456号", "(2019)粤0304执异123456号"),
        ("(2024)沪0115执7号", "(2024)沪0115执7号"),
    ],
)
def test_valid_case_numbers_are_written_one_way(raw: str, stored: str) -> None:
    assert normalize_case_number(raw) == stored
    # Normalizing is idempotent: the stored form is itself valid and unchanged.
    assert normalize_case_number(stored) == stored


def test_every_spelling_of_one_number_is_the_same_key() -> None:
    spellings = ["(2021)苏0903执1234号", "（2021）苏0903执1234号", " (２０２１)苏0903执1234号"]
    assert len({normalize_case_number(s) for s in spellings}) == 1


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "2021苏0903执1234号",  # no parentheses
        "[2021]苏0903执1234号",  # brackets are not parentheses
        "(21)苏0903执1234号",  # two-digit year
        "(20210)苏0903执1234号",  # five-digit year
        "(2021)0903执1234号",  # no province abbreviation
        "(2021)苏9执1234号",  # court code too short
        "(2021)苏09031执1234号",  # court code too long
        "(2021)苏0903民1234号",  # civil, not enforcement
        "(2021)苏0903执1234",  # no 号
        "(2021)苏0903执号",  # no serial number
        "(2021)苏0903执1234567号",  # serial number too long
        "(2021)苏0903执恢保12号",  # two sub-kinds
        "(2021)苏0903执1234号x",  # trailing text
        "(2021)苏0903执1234号\n(2022)苏0903执1号",  # two numbers
        "(2021)sx0903执1234号",  # latin letters for the province
        "(٢٠٢١)苏0903执1234号",  # Arabic-Indic digits are not a year
        "(2021)苏0903执12٣4号",
    ],
)
def test_malformed_case_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_case_number(raw)
    assert caught.value.code == "invalid_input"
    assert "(2021)苏0903执1234号" in caught.value.message  # tells the user the expected form


@pytest.mark.parametrize(
    ("owed", "paid", "outstanding"),
    [(35_600_000, 0, 35_600_000), (35_600_000, 600_000, 35_000_000), (100, 250, 0)],
)
def test_outstanding_amount_is_owed_minus_paid_never_negative(
    owed: int, paid: int, outstanding: int
) -> None:
    case = Case(
        id="c1",
        number="(2021)苏0903执1234号",
        court="盐城市盐都区人民法院",
        judge_id="j1",
        creditor_name="王建国",
        debtor_name="李某",
        amount_owed_fen=owed,
        amount_paid_fen=paid,
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    assert case.amount_outstanding_fen == outstanding
