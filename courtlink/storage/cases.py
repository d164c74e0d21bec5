"""Cases, and detentions with their periods."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, insert, select, update

from courtlink.court.cases import Case
from courtlink.court.detentions import Detention, Period
from courtlink.errors import NotFound
from courtlink.storage import tables as t
from courtlink.storage.queries import Queries
from courtlink.storage.rows import INT, RowMapper

__all__ = ["CASES", "DETENTIONS", "PERIODS", "CaseRecords"]

CASES = RowMapper(Case, t.cases, amount_owed_fen=INT, amount_paid_fen=INT)
DETENTIONS = RowMapper(Detention, t.detentions)
PERIODS = RowMapper(Period, t.detention_periods, days=INT)


class CaseRecords(Queries):
    """Queries about cases and detentions; part of ``Records``."""

    async def add_case(self, case: Case) -> None:
        """Store a new case; ``Conflict`` when its id or number is taken."""
        await self._insert(t.cases, CASES.dump(case), f"case {case.number}")

    async def case(self, case_id: str) -> Case:
        """The case; ``NotFound`` when there is none."""
        return CASES.load(await self._one(select(t.cases).where(t.cases.c.id == case_id), "case"))

    async def case_by_number(self, number: str) -> Case | None:
        """The case of this number, or None."""
        row = (await self.conn.execute(select(t.cases).where(t.cases.c.number == number))).first()
        return None if row is None else CASES.load(row)

    async def cases(self, judge_id: str | None = None) -> list[Case]:
        """Every case (of this judge), newest first."""
        stmt = select(t.cases).order_by(t.cases.c.created_at.desc())
        if judge_id is not None:
            stmt = stmt.where(t.cases.c.judge_id == judge_id)
        return [CASES.load(r) for r in await self.conn.execute(stmt)]

    async def set_amount_paid(self, case_id: str, amount_fen: int) -> None:
        """Record how much of the debt is paid so far."""
        await self.conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(amount_paid_fen=amount_fen)
        )

    async def add_detention(self, detention: Detention) -> None:
        """Store a new detention with its periods."""
        await self._insert(t.detentions, DETENTIONS.dump(detention), "detention")
        await self._write_periods(detention)

    async def save_detention(self, detention: Detention) -> None:
        """Store a changed detention (renewed or released)."""
        await self.conn.execute(
            update(t.detentions)
            .where(t.detentions.c.id == detention.id)
            .values(DETENTIONS.dump(detention, "released_at"))
        )
        await self._write_periods(detention)

    async def _write_periods(self, detention: Detention) -> None:
        # Replaced as a whole: the periods are one value of the detention, not rows of their own.
        await self.conn.execute(
            delete(t.detention_periods).where(t.detention_periods.c.detention_id == detention.id)
        )
        await self.conn.execute(
            insert(t.detention_periods),
            [
                {"detention_id": detention.id, "idx": i, **PERIODS.dump(p)}
                for i, p in enumerate(detention.periods)
            ],
        )

    async def detention(self, detention_id: str) -> Detention:
        """The detention; ``NotFound`` when there is none."""
        found = await self._detentions(t.detentions.c.id == detention_id)
        if not found:
            raise NotFound("no such detention")
        return found[0]

    async def detentions(
        self, case_ids: Sequence[str] | None = None, center: str | None = None
    ) -> list[Detention]:
        """Every detention (of these cases, at this center), oldest first."""
        where: ColumnElement[bool] = t.detentions.c.id.is_not(None)
        if case_ids is not None:
            where = t.detentions.c.case_id.in_(list(case_ids))
        if center is not None:
            where = where & (t.detentions.c.center == center)
        return await self._detentions(where)

    async def _detentions(self, where: ColumnElement[bool]) -> list[Detention]:
        rows = list(
            await self.conn.execute(
                select(t.detentions).where(where).order_by(t.detentions.c.created_at)
            )
        )
        if not rows:
            return []
        periods: dict[str, list[Period]] = {r.id: [] for r in rows}
        for p in await self.conn.execute(
            select(t.detention_periods)
            .where(t.detention_periods.c.detention_id.in_(list(periods)))
            .order_by(t.detention_periods.c.idx)
        ):
            periods[p.detention_id].append(PERIODS.load(p))
        return [DETENTIONS.load(r, periods=tuple(periods[r.id])) for r in rows]
