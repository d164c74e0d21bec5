"""Helpers shared by the web tests: HTTP clients with a cookie jar, logins, problem checks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from courtlink.web.keys import SERVICES
from courtlink.web.services import Services
from tests.helpers import PASSWORD

__all__ = [
    "PROBLEM_KEYS",
    "Node",
    "assert_problem",
    "case_number",
    "login",
    "new_client",
    "parse_html",
    "path_of",
    "services_of",
]

PROBLEM_KEYS = {"type", "title", "status", "code", "detail"}
_serial = itertools.count(5000)


def services_of(app: web.Application) -> Services:
    return app[SERVICES]


def new_client(base_url: str, **headers: str) -> aiohttp.ClientSession:
    """A client with its own cookie jar; ``unsafe`` so that cookies of 127.0.0.1 are kept."""
    return aiohttp.ClientSession(
        base_url=base_url,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        headers=headers or None,
        timeout=aiohttp.ClientTimeout(total=15),
    )


async def login(client: aiohttp.ClientSession, username: str, password: str = PASSWORD) -> str:
    """Log in through the API; returns the login's CSRF token."""
    async with client.post("/api/login", json={"username": username, "password": password}) as r:
        body = await r.json()
        assert r.status == 200, body
    csrf = body["csrf"]
    assert isinstance(csrf, str)
    assert len(csrf) >= 16
    return csrf


async def assert_problem(
    response: aiohttp.ClientResponse, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with ``status`` (and ``code``); returns the body."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json", (response.content_type, text)
    body = await response.json(content_type=None)
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["type"].endswith("/" + body["code"])
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in text
    return body  # type: ignore[no-any-return]


def case_number() -> str:
    """A fresh, valid case number (案号)."""
    return f"(2024)苏0903执{next(_serial)}号"


def path_of(url: str) -> str:
    """The path (and query) of a link the server handed out, to open it on the test server."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# A small HTML tree (the standard library's parser), enough to look into our own pages. -------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text inside, with runs of white space folded to one space."""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def find_all(
        self, tag: str | None = None, *, cls: str | None = None, **attrs: str
    ) -> list[Node]:
        """Descendants with this tag, class and attributes (``data_seats`` means data-seats)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (
                (tag is None or child.tag == tag)
                and (cls is None or cls in child.classes)
                and all(child.attrs.get(k) == v for k, v in wanted.items())
            ):
                found.append(child)
            found.extend(child.find_all(tag, cls=cls, **attrs))
        return found

    def find(self, tag: str | None = None, *, cls: str | None = None, **attrs: str) -> Node:
        """The first such descendant; fails the test when there is none."""
        found = self.find_all(tag, cls=cls, **attrs)
        assert found, f"no <{tag or '*'}> with class={cls} {attrs}"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root
