"""The four seats of a session and the accounts that exist."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SEATS", "AccountRole", "Seat"]


class Seat(StrEnum):
    """A place in a session. Every session has exactly these four."""

    JUDGE = "judge"  # 执行法官
    OFFICER = "officer"  # 监管警官
    DEBTOR = "debtor"  # 被执行人
    CREDITOR = "creditor"  # 申请执行人


SEATS: tuple[Seat, ...] = (Seat.JUDGE, Seat.OFFICER, Seat.DEBTOR, Seat.CREDITOR)


class AccountRole(StrEnum):
    """Kinds of people who log in with an account (parties join by invite instead)."""

    JUDGE = "judge"
    APPROVER = "approver"  # court president or deputy who approves decisions (院长批准)
    OFFICER = "officer"  # custodial officer of a detention center, acts with a personal PIN
    CLERK = "clerk"  # 书记员: sits beside the judge and writes the sessions' transcripts
