"""The one build step pyproject.toml cannot declare: the browser client goes inside the package.

The pages load socket.io's browser client from /static/vendor/socket.io.min.js. It comes from
npm (package.json, package-lock.json pin it) and is not kept in git. Every build (a wheel, an
sdist, an editable install) copies it from node_modules into courtlink/web/static/vendor/
(gitignored), so the wheel is complete: ``pip install .`` alone gives a server whose pages work.
When node_modules is missing, ``npm ci`` fetches it first; without npm the build stops with one
line saying so. An sdist carries the copy it was built with, so building from one needs no npm.

Everything else (metadata, the C extension, package data) is in pyproject.toml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import SetupError

ROOT = Path(__file__).resolve().parent
CLIENT = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
VENDORED = ROOT / "courtlink" / "web" / "static" / "vendor" / "socket.io.min.js"


def vendor_browser_client() -> None:
    """Copy the browser client from node_modules into the package (npm ci first if needed)."""
    npm = shutil.which("npm")
    if not CLIENT.is_file() and (ROOT / "package-lock.json").is_file() and npm:
        print("courtlink build: node_modules is missing, running npm ci", flush=True)
        done = subprocess.run(  # noqa: S603 - a fixed command: npm ci in this project
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=False
        )
        if done.returncode != 0:
            raise SetupError(f"courtlink build: `npm ci` failed (exit {done.returncode})")
    if CLIENT.is_file():
        data = CLIENT.read_bytes()
        if not VENDORED.is_file() or VENDORED.read_bytes() != data:
            VENDORED.parent.mkdir(parents=True, exist_ok=True)
            VENDORED.write_bytes(data)
        return
    if VENDORED.is_file() and not (ROOT / "package-lock.json").is_file():
        return  # an unpacked sdist: it carries the copy made when it was built
    raise SetupError(
        "courtlink build: the socket.io browser client is missing (node_modules/socket.io-client)"
        " and npm cannot fetch it: install Node.js and npm (tools/setup does), then build again"
    )


class BuildPy(build_py):
    """build_py that first puts the browser client among the package data."""

    def run(self) -> None:
        vendor_browser_client()
        # The package data may have been listed before the copy existed (egg_info lists it).
        self.__dict__.pop("data_files", None)
        super().run()


class Sdist(sdist):
    """sdist that carries the browser client, so a wheel built from it needs no npm."""

    def run(self) -> None:
        vendor_browser_client()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
