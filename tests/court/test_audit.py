"""verify_chain on chains built in memory: each kind of tampering is named at its first bad seq;
checkpoints are signed, stay verifiable across key rotation, and verify offline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from courtlink.court.audit import (
    GENESIS,
    AuditEvent,
    Checkpoint,
    checkpoint_payload,
    event_hash,
    verify_chain,
)
from courtlink.court.keys import KeyRing
from courtlink.errors import ConfigError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
N = 12


def link(seq: int, prev: str, *, data: dict[str, object] | None = None) -> AuditEvent:
    at = T0 + timedelta(seconds=seq)
    body = {"i": seq} if data is None else data
    digest = event_hash(
        seq=seq,
        at=at,
        kind="participant.joined",
        actor=f"invite:{seq}",
        session_id="s1",
        case_id="c1",
        data=body,
        prev_hash=prev,
    )
    return AuditEvent(
        seq, at, "participant.joined", f"invite:{seq}", "s1", "c1", body, prev, digest
    )


def chain(n: int = N) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        events.append(link(seq, prev))
        prev = events[-1].hash
    return events


def relinked(events: list[AuditEvent], start: int = 1) -> list[AuditEvent]:
    """Renumber from ``start`` and recompute every hash, as a forger with write access would."""
    out: list[AuditEvent] = []
    prev = GENESIS if start == 1 else events[0].prev_hash
    for seq, event in enumerate(events, start):
        fixed = link(seq, prev, data=event.data)
        out.append(fixed)
        prev = fixed.hash
    return out


def sign(keys: KeyRing, event: AuditEvent) -> Checkpoint:
    at = event.at + timedelta(milliseconds=5)
    kid, signature = keys.sign(checkpoint_payload(event.seq, event.hash, at, keys.current_kid))
    return Checkpoint(seq=event.seq, hash=event.hash, at=at, kid=kid, signature=signature)


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")


def head(events: list[AuditEvent]) -> tuple[int, str]:
    return (events[-1].seq, events[-1].hash) if events else (0, GENESIS)


def test_an_intact_chain_verifies(keys: KeyRing) -> None:
    events = chain()
    checkpoints = [sign(keys, events[5]), sign(keys, events[-1])]
    report = verify_chain(events, checkpoints, keys, checkpoints, head(events))
    assert report.ok
    assert report.first is None
    assert (report.events, report.checkpoints) == (N, 2)
    assert report.summary() == f"audit chain ok: {N} events, 2 signed checkpoints"


def test_an_empty_chain_verifies(keys: KeyRing) -> None:
    assert verify_chain([], [], keys, [], (0, GENESIS)).ok


def test_chaining_depends_on_every_field() -> None:
    base = chain(1)[0]
    changed = [
        replace(base, seq=2),
        replace(base, at=base.at + timedelta(microseconds=1)),
        replace(base, kind="participant.left"),
        replace(base, actor="invite:x"),
        replace(base, session_id=None),
        replace(base, case_id="c2"),
        replace(base, data={"i": 2}),
        replace(base, prev_hash="1" * 64),
    ]
    assert all(event.recomputed() != base.hash for event in changed)
    # The same instant in another zone is the same event.
    local = replace(base, at=base.at.astimezone(timezone(timedelta(hours=8))))
    assert local.recomputed() == base.hash


@pytest.mark.parametrize("k", [1, 6, N])
def test_altered_data_is_named_at_its_seq(keys: KeyRing, k: int) -> None:
    events = chain()
    cp = sign(keys, events[-1])
    events[k - 1] = replace(events[k - 1], data={"i": k, "amount": 1})
    report = verify_chain(events, [cp], keys, [cp], head(chain()))
    assert report.first is not None
    assert report.first.seq == k
    assert "altered" in report.first.reason
    assert report.summary().startswith(f"audit chain broken at seq {k}:")


@pytest.mark.parametrize("k", [1, 5, N - 1])
def test_a_removed_row_is_named_at_its_seq(keys: KeyRing, k: int) -> None:
    events = chain()
    cp = sign(keys, events[-1])
    del events[k - 1]
    report = verify_chain(events, [cp], keys, [cp], head(chain()))
    assert report.first is not None
    assert report.first.seq == k
    assert "removed" in report.first.reason


def test_a_forged_row_inserted_by_shifting_breaks_the_next_link(keys: KeyRing) -> None:
    original = chain()
    cp = sign(keys, original[8])
    k = 4
    # The forger writes a self-consistent row at seq k and moves the old rows k.. one up,
    # keeping their stored hashes (recomputing them needs the whole tail rewritten).
    forged = link(k, original[k - 2].hash, data={"forged": True})
    shifted = [replace(e, seq=e.seq + 1) for e in original[k - 1 :]]
    events = [*original[: k - 1], forged, *shifted]
    report = verify_chain(events, [cp], keys, [cp], (N + 1, shifted[-1].hash))
    assert report.first is not None
    # Row k links correctly to k-1; the old row k, now k+1, no longer links to its predecessor.
    assert report.first.seq == k + 1
    assert "does not link" in report.first.reason
    # The signed checkpoint no longer matches either.
    assert any(p.seq == 9 and "checkpoint" in p.reason for p in report.problems)


def test_a_row_with_a_repeated_seq_is_an_insertion(keys: KeyRing) -> None:
    events = chain()
    duplicate = link(4, events[3].hash)
    events.insert(4, duplicate)  # ..., 4, 4, 5, ...
    report = verify_chain(events, [], keys, [], head(chain()))
    assert report.first is not None
    assert report.first.seq == 4
    assert "inserted" in report.first.reason


def test_a_rewritten_chain_is_caught_by_the_checkpoint(keys: KeyRing) -> None:
    original = chain()
    cp = sign(keys, original[7])
    # Alter seq 3 and recompute everything after it, including the head: only the signature
    # over seq 8 still knows the old hashes.
    tampered = [*original[:2], *relinked([replace(original[2], data={"i": 99}), *original[3:]], 3)]
    assert all(e.recomputed() == e.hash for e in tampered)
    report = verify_chain(tampered, [cp], keys, [cp], head(tampered))
    assert report.first is not None
    assert report.first.seq == 8
    assert "rewritten" in report.first.reason


def test_a_checkpoint_with_a_bad_signature(keys: KeyRing) -> None:
    events = chain()
    good = sign(keys, events[5])
    forged = replace(sign(keys, events[9]), signature=good.signature)
    report = verify_chain(events, [good, forged], keys, [good, forged], head(events))
    assert report.first is not None
    assert report.first.seq == 10
    assert "signature invalid" in report.first.reason
    # A checkpoint moved to another seq, or signed by an unknown key, fails the same way.
    moved = replace(good, seq=7, hash=events[6].hash)
    unknown = replace(good, kid="0" * 16)
    for bad in (moved, unknown):
        report = verify_chain(events, [bad], keys, [], head(events))
        assert report.first is not None
        assert report.first.seq == bad.seq
        assert "signature invalid" in report.first.reason


def test_a_tail_cut_beyond_a_checkpoint(keys: KeyRing) -> None:
    events = chain()
    cp = sign(keys, events[9])
    cut = events[:7]
    # The forger also set the head to the new end, so only the checkpoint knows.
    report = verify_chain(cut, [cp], keys, [cp], head(cut))
    assert report.first is not None
    assert report.first.seq == 8
    assert "tail cut off" in report.first.reason
    assert "covers 10" in report.first.reason


def test_a_tail_cut_after_the_last_checkpoint_is_caught_by_the_head(keys: KeyRing) -> None:
    events = chain()
    cp = sign(keys, events[5])
    report = verify_chain(events[:9], [cp], keys, [cp], head(events))
    assert report.first is not None
    assert report.first.seq == 10
    assert "head says seq 12" in report.first.reason


def test_a_witnessed_checkpoint_missing_from_the_database(keys: KeyRing) -> None:
    events = chain()
    early, late = sign(keys, events[3]), sign(keys, events[-1])
    report = verify_chain(events, [early], keys, [early, late], head(events))
    assert report.first is not None
    assert report.first.seq == N
    assert "missing from the database" in report.first.reason


def test_a_database_checkpoint_that_differs_from_the_witness(keys: KeyRing) -> None:
    events = chain()
    stored = sign(keys, events[5])
    witnessed = replace(stored, at=stored.at + timedelta(seconds=1))
    report = verify_chain(events, [stored], keys, [witnessed], head(events))
    assert report.first is not None
    assert report.first.seq == 6
    assert "differs from the witness" in report.first.reason


def test_the_witness_catches_a_cut_that_also_removed_the_checkpoints(keys: KeyRing) -> None:
    events = chain()
    cp = sign(keys, events[9])
    cut = events[:5]
    assert verify_chain(cut, [], keys, [], head(cut)).ok  # without the witness: undetectable
    report = verify_chain(cut, [], keys, [cp], head(cut))
    assert report.first is not None
    assert report.first.seq == 6
    assert {p.seq for p in report.problems} == {6, 10}


def test_a_head_hash_mismatch(keys: KeyRing) -> None:
    events = chain()
    report = verify_chain(events, [], keys, [], (N, "f" * 64))
    assert report.first is not None
    assert report.first.seq == N
    assert "head hash" in report.first.reason


def test_rows_beyond_the_recorded_head(keys: KeyRing) -> None:
    events = chain()
    report = verify_chain(events, [], keys, [], head(events[:9]))
    assert report.first is not None
    assert report.first.seq == 10
    assert "beyond the recorded head" in report.first.reason


def test_the_first_problem_is_the_lowest_seq(keys: KeyRing) -> None:
    events = chain()
    bad_cp = replace(sign(keys, events[1]), signature="AAAA")
    events[6] = replace(events[6], actor="invite:forged")
    report = verify_chain(events, [bad_cp], keys, [], head(events))
    assert [p.seq for p in report.problems] == [7, 2]
    assert report.first is not None
    assert report.first.seq == 2


def test_rotation_keeps_older_checkpoints_verifiable(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keys = KeyRing.load_or_create(directory)
    events = chain()
    old_kid = keys.current_kid
    early = sign(keys, events[3])
    new_kid = keys.rotate()
    assert new_kid != old_kid
    assert keys.current_kid == new_kid
    late = sign(keys, events[-1])
    assert (early.kid, late.kid) == (old_kid, new_kid)
    assert verify_chain(events, [early, late], keys, [early, late], head(events)).ok
    # After a restart the same ring is loaded: both keys, the newer one current.
    reloaded = KeyRing.load_or_create(directory)
    assert reloaded.current_kid == new_kid
    assert set(reloaded.public_keys()) == {old_kid, new_kid}
    assert verify_chain(events, [early, late], reloaded, [early, late], head(events)).ok


def test_public_keys_verify_offline(tmp_path: Path) -> None:
    keys = KeyRing.load_or_create(tmp_path / "keys")
    events = chain()
    early = sign(keys, events[3])
    keys.rotate()
    late = sign(keys, events[-1])
    published = keys.public_keys()
    offline = KeyRing.from_public(published)
    assert verify_chain(events, [early, late], offline, [early, late], head(events)).ok
    with pytest.raises(ConfigError):
        offline.current_kid  # noqa: B018 - a verify-only ring cannot sign
    with pytest.raises(ConfigError):
        offline.sign(b"x")
    # Published without the old key, the old checkpoint cannot be verified.
    partial = KeyRing.from_public({late.kid: published[late.kid]})
    report = verify_chain(events, [early, late], partial, [], head(events))
    assert [p.seq for p in report.problems] == [early.seq]
    # Another server's keys verify nothing of ours.
    stranger = KeyRing.load_or_create(tmp_path / "other")
    assert not verify_chain(events, [late], stranger, [], head(events)).ok


def test_key_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keys = KeyRing.load_or_create(directory)
    for path in directory.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    assert (directory / "current").read_text().strip() == keys.current_kid
