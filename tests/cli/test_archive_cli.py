"""``courtlink verify DIR`` and ``courtlink archive export``, run as a user runs them: one line
per finding, status 1 when anything is wrong, 0 when genuine, offline with --certs too."""

from __future__ import annotations

from pathlib import Path

from courtlink.court.hashing import SecretHasher
from courtlink.web.services import open_services
from tests.cli.test_cli import cli_env, courtlink
from tests.conftest import make_settings
from tests.court.recording_support import write_recording
from tests.helpers import build_world


async def sealed_world(data: Path, hasher: SecretHasher) -> tuple[Path, str, str]:
    """A world with one sealed recording; (its directory, the case number, the certs PEM)."""
    settings = make_settings(data)
    async with open_services(settings, hasher=hasher) as services:
        world = await build_world(services)
        directory = services.archive.path(world.session.id)
        write_recording(directory, session_id=world.session.id, case_id=world.case.id)
        await services.archive.seal(world.session.id)
        return directory, world.case.number, services.seal.public_pem()


async def test_verify_a_recording_online_and_offline(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    data = tmp_path / "var"
    directory, _, pem = await sealed_world(data, fast_hasher)
    certs = tmp_path / "court.pem"
    certs.write_text(pem)
    env = cli_env(data)
    online = await courtlink("verify", str(directory), env=env, cwd=tmp_path)
    assert online.status == 0, online.out + online.err
    assert online.out.startswith("genuine: recording of session ")
    offline = await courtlink(
        "verify",
        str(directory),
        "--certs",
        str(certs),
        env=cli_env(tmp_path / "none"),
        cwd=tmp_path,
    )
    assert offline.status == 0, offline.out + offline.err

    data_bytes = bytearray((directory / "judge.video.webm").read_bytes())
    data_bytes[0] ^= 1
    (directory / "judge.video.webm").write_bytes(bytes(data_bytes))
    (directory / "creditor.audio.webm").unlink()
    (directory / "extra.bin").write_bytes(b"x")
    bad = await courtlink("verify", str(directory), "--certs", str(certs), env=env, cwd=tmp_path)
    assert bad.status == 1
    assert bad.err == ""
    assert bad.out.splitlines() == [
        "creditor.audio.webm: missing",
        "judge.video.webm: content changed",
        "extra.bin: not in the manifest",
        f"NOT GENUINE: recording of session {directory.name} (case (2021)苏0903执1234号): "
        "3 problems",
    ]


async def test_verify_against_another_courts_certificates(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    directory, _, _ = await sealed_world(tmp_path / "var", fast_hasher)
    _, _, stranger = await sealed_world(tmp_path / "other", fast_hasher)
    certs = tmp_path / "other.pem"
    certs.write_text(stranger)
    result = await courtlink(
        "verify", str(directory), "--certs", str(certs), env=cli_env(tmp_path / "x"), cwd=tmp_path
    )
    assert result.status == 1
    assert result.out.splitlines()[0] == (
        "manifest.p7s: not signed with a certificate of this court"
    )
    assert "Traceback" not in result.out + result.err


async def test_archive_export_then_verify(tmp_path: Path, fast_hasher: SecretHasher) -> None:
    data = tmp_path / "var"
    _, number, pem = await sealed_world(data, fast_hasher)
    certs = tmp_path / "court.pem"
    certs.write_text(pem)
    env = cli_env(data)
    out = tmp_path / "package"
    result = await courtlink("archive", "export", number, "--out", str(out), env=env, cwd=tmp_path)
    assert result.status == 0, result.out + result.err
    assert result.out.splitlines()[-1].startswith("verified: ")
    assert (out / "archive.p7s").exists()
    for args in (["verify", str(out)], ["archive", "verify", str(out), "--certs", str(certs)]):
        check = await courtlink(*args, env=env, cwd=tmp_path)
        assert check.status == 0, check.out + check.err
        assert check.out.startswith(f"genuine: archive of case {number}")
    (out / "case.json").write_text("{}")
    check = await courtlink("verify", str(out), "--certs", str(certs), env=env, cwd=tmp_path)
    assert check.status == 1
    assert check.out.splitlines()[0].startswith("case.json: content changed (2 bytes")
    assert check.out.splitlines()[-1].startswith("NOT GENUINE: archive of case")
    again = await courtlink("archive", "export", number, "--out", str(out), env=env, cwd=tmp_path)
    assert again.status == 1
    assert "is not an empty directory" in again.one_error_line()
    unknown = await courtlink("archive", "export", "no-such-case", env=env, cwd=tmp_path)
    assert unknown.status == 1
    assert unknown.one_error_line() == "courtlink: error: no case no-such-case"


async def test_verify_a_pdf_still_works_with_a_directory_argument_allowed(
    tmp_path: Path,
) -> None:
    missing = await courtlink(
        "verify", str(tmp_path / "nothing"), env=cli_env(tmp_path), cwd=tmp_path
    )
    assert missing.status == 2  # click: the path does not exist
