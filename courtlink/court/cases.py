"""Enforcement cases (执行案件)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from courtlink.errors import InvalidInput

__all__ = ["Case", "normalize_case_number"]

# (2021)苏0903执1234号: year, province abbreviation + court code, 执 (enforcement), optional
# sub-kind (恢 resumed, 保 preservation, 异 objection...), serial number.
# re.ASCII: \d is 0-9 only (full-width digits are folded to ASCII first, other scripts refused).
_CASE_NUMBER = re.compile(
    r"^\((\d{4})\)([\u4e00-\u9fff]\d{2,4})(执[\u4e00-\u9fff]?)(\d{1,6})号$", re.ASCII
)


def normalize_case_number(raw: str) -> str:
    """Validate a case number (案号) and write it with ASCII parentheses.

    Courts write both （2021） and (2021), and input methods type full-width digits and spaces;
    NFKC folds those to ASCII so that one spelling keeps the number unique in the database.
    """
    value = "".join(unicodedata.normalize("NFKC", raw).split())
    if not _CASE_NUMBER.match(value):
        raise InvalidInput(f"case number {raw!r} is not of the form (2021)苏0903执1234号")
    return value


@dataclass(frozen=True, slots=True)
class Case:
    """One enforcement case. Money is in fen (分) so sums are exact."""

    id: str
    number: str
    court: str
    judge_id: str
    creditor_name: str
    debtor_name: str
    amount_owed_fen: int
    amount_paid_fen: int
    created_at: datetime

    @property
    def amount_outstanding_fen(self) -> int:
        return max(self.amount_owed_fen - self.amount_paid_fen, 0)
