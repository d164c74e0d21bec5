"""The wheel is complete: the browser client the pages load ships inside the package.

setup.py copies socket.io's browser client from node_modules into courtlink/web/static/vendor/
at build time. These tests build a real wheel (the C extension compiles, about 30 s) from a copy
of the source tree, so the shared tree's build/ directory is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from courtlink.config import Settings
from courtlink.web.assets import VENDOR_FILES, add_vendor_routes, vendor_file
from tests.conftest import ROOT, make_settings, missing
from tests.web.support import assert_problem

CLIENT = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
IN_PACKAGE = "courtlink/web/static/vendor/socket.io.min.js"


def source_copy(into: Path) -> Path:
    """The project's sources without anything built, installed or fetched."""
    tree = into / "src"
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "node_modules",
            "build",
            "dist",
            "var",
            "vendor",
            "__pycache__",
            "*.egg-info",
            "*.so",
            ".*_cache",
            "test-results",
        ),
    )
    return tree


def build_wheel(tree: Path, out: Path, env: dict[str, str] | None = None) -> str:
    """``pip wheel`` of ``tree`` into ``out``, with this venv's setuptools (no network)."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(output)
    return output


def test_the_wheel_carries_the_browser_client(tmp_path: Path) -> None:
    if not CLIENT.is_file():
        missing("socket.io-client", "npm packages not installed (run `npm ci`)")
    tree = source_copy(tmp_path)
    (tree / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    assert not (tree / IN_PACKAGE).exists()

    build_wheel(tree, tmp_path / "out")

    (wheel,) = (tmp_path / "out").glob("courtlink-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert archive.read(IN_PACKAGE) == CLIENT.read_bytes()
    assert any(n.startswith("courtlink/media/_forward") for n in names)  # still a whole wheel
    assert "courtlink/web/templates/join.html" in names


def test_without_npm_the_build_stops_with_one_line(tmp_path: Path) -> None:
    tree = source_copy(tmp_path)
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}  # no npm, no node_modules: nothing to copy from
    with pytest.raises(AssertionError) as failed:
        build_wheel(tree, tmp_path / "out", env)
    lines = [line for line in str(failed.value).splitlines() if "courtlink build:" in line]
    assert len(lines) == 1, str(failed.value)
    assert "socket.io browser client is missing" in lines[0]
    assert "npm" in lines[0]


def test_the_installed_package_has_the_browser_client() -> None:
    """An editable install (tools/setup) runs the same build step into the source tree."""
    if not CLIENT.is_file():
        missing("socket.io-client", "npm packages not installed (run `npm ci`)")
    packaged = resources.files("courtlink.web").joinpath("static", "vendor", "socket.io.min.js")
    assert packaged.read_bytes() == CLIENT.read_bytes()


def test_node_modules_setting_overrides_the_packaged_copy(tmp_path: Path) -> None:
    packaged: Settings = make_settings(tmp_path / "var")
    own: Settings = make_settings(tmp_path / "var", server={"node_modules": str(tmp_path / "nm")})
    for name, parts in VENDOR_FILES:
        assert vendor_file(packaged, name).parts[-4:] == ("web", "static", "vendor", name)
        assert vendor_file(own, name) == (tmp_path / "nm").resolve().joinpath(*parts)


async def test_vendor_routes_serve_the_packaged_copy_or_answer_503(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    if not CLIENT.is_file():
        missing("socket.io-client", "npm packages not installed (run `npm ci`)")
    packaged = web.Application()
    add_vendor_routes(packaged, make_settings(tmp_path / "var"))
    client = await aiohttp_client(packaged)
    async with client.get("/static/vendor/socket.io.min.js") as r:
        assert r.status == 200
        assert "max-age" in r.headers["Cache-Control"]
        assert await r.read() == CLIENT.read_bytes()

    elsewhere = web.Application()
    add_vendor_routes(
        elsewhere, make_settings(tmp_path / "var", server={"node_modules": str(tmp_path / "no")})
    )
    client = await aiohttp_client(elsewhere)
    async with client.get("/static/vendor/socket.io.min.js") as r:
        await assert_problem(r, 503, "assets_missing")
