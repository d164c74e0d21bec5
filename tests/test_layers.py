"""The house rules of docs/architecture.md, read from the source: which package may import which.

Each module of courtlink/ is parsed (not imported) and its imports, top-level or inside
functions, are checked against the rules below. A rule broken names the module and the import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "courtlink"

# Third-party frameworks by what they are for.
MEDIA_STACK = ("aiortc", "aioice", "av", "pylibsrtp")
SOCKET_STACK = ("socketio", "engineio")
HTTP_STACK = ("aiohttp", "aiohttp_jinja2")
PAPER_STACK = ("weasyprint", "pyhanko", "pyhanko_certvalidator")

# package -> what it must never import (third-party stacks and courtlink packages).
NEVER: dict[str, tuple[str, ...]] = {
    # The domain and its records: no I/O framework, nothing of the edges.
    "courtlink.court": (
        *MEDIA_STACK,
        *SOCKET_STACK,
        *HTTP_STACK,
        *PAPER_STACK,
        "courtlink.live",
        "courtlink.signaling",
        "courtlink.media",
        "courtlink.papers",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    "courtlink.storage": (
        *MEDIA_STACK,
        *SOCKET_STACK,
        *HTTP_STACK,
        *PAPER_STACK,
        "courtlink.live",
        "courtlink.signaling",
        "courtlink.media",
        "courtlink.papers",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    # The live session meets signaling and media through ports; it imports neither side.
    "courtlink.live": (
        *MEDIA_STACK,
        *SOCKET_STACK,
        "courtlink.signaling",
        "courtlink.media",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    # Signaling never imports aiortc; media never imports socketio.
    "courtlink.signaling": (
        *MEDIA_STACK,
        "courtlink.media",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    "courtlink.media": (
        *SOCKET_STACK,
        *HTTP_STACK,
        "courtlink.signaling",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    "courtlink.papers": (
        *MEDIA_STACK,
        *SOCKET_STACK,
        "courtlink.signaling",
        "courtlink.media",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
    # The HTTP edge composes the server; the benchmark and the CLI sit outside it.
    "courtlink.web": ("courtlink.cli", "courtlink.bench"),
    "courtlink.config": (
        *MEDIA_STACK,
        *SOCKET_STACK,
        *HTTP_STACK,
        "courtlink.court",
        "courtlink.storage",
        "courtlink.live",
        "courtlink.signaling",
        "courtlink.media",
        "courtlink.web",
        "courtlink.cli",
        "courtlink.bench",
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module an import statement in ``path`` names (absolute imports only)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_rules_see_every_package() -> None:
    """A guard for the test itself: it reads the modules and finds their imports."""
    names = {module_name(path) for path in modules()}
    for package in NEVER:
        assert any(within(name, package) for name in names), package
    assert "courtlink.live.media_port" in names
    assert "aiortc" in set(imports_of(PACKAGE / "media" / "peer.py"))


@pytest.mark.parametrize("package", sorted(NEVER))
def test_a_package_imports_nothing_it_must_not(package: str) -> None:
    broken = [
        f"{module_name(path)} imports {imported}"
        for path in modules()
        if within(module_name(path), package)
        for imported in imports_of(path)
        if any(within(imported, forbidden) for forbidden in NEVER[package])
    ]
    assert not broken, "\n".join(broken)


def test_there_is_one_top_level_package() -> None:
    """Nothing of Courtlink is importable as ``config``, ``web``, ``media``... on its own."""
    root = PACKAGE.parent
    stray = [
        name
        for name in ("config", "rooms", "signaling", "media", "web", "cli", "bench")
        if (root / name / "__init__.py").exists()
    ]
    assert not stray
