"""A small route table that validates bodies with pydantic and describes itself as OpenAPI 3.1.

Why not a framework: Courtlink's API is a few dozen routes on plain aiohttp; declaring each
route's request and response model once gives validation, serialization and the OpenAPI
document from the same source.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from courtlink.errors import InvalidInput
from courtlink.web.auth import account_principal

__all__ = ["Api", "ApiRoute", "Problem"]

Auth = Literal["account", "any", "none"]
Body = BaseModel | None
Handler = Callable[[web.Request, Any], Awaitable[Any]]


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every API error."""

    type: str
    title: str
    status: int
    code: str
    detail: str


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None
    response: Any
    status: int
    auth: Auth
    tag: str


class Api:
    def __init__(self, title: str, version: str) -> None:
        self.title = title
        self.version = version
        self.routes: list[ApiRoute] = []

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        auth: Auth = "account",
        tag: str = "",
    ) -> None:
        self.routes.append(
            ApiRoute(method, path, handler, summary, body, response, status, auth, tag)
        )

    def register(self, app: web.Application) -> None:
        for route in self.routes:
            if route.method == "GET":
                app.router.add_get(route.path, self._endpoint(route))  # and HEAD
            else:
                app.router.add_route(route.method, route.path, self._endpoint(route))

    def _endpoint(self, route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        adapter = TypeAdapter(route.response) if route.response is not None else None

        async def endpoint(request: web.Request) -> web.StreamResponse:
            if route.auth == "account":
                # Who asks comes before what they sent: 401, not 422, for a bad body from nobody.
                await account_principal(request)
            body: Body = None
            if route.body is not None:
                body = await parse_body(request, route.body)
            result = await route.handler(request, body)
            if isinstance(result, web.StreamResponse):
                return result
            payload = result
            if adapter is not None:
                # Handlers may return plain dicts shaped like the response model.
                if isinstance(result, dict | list):
                    result = adapter.validate_python(result)
                payload = adapter.dump_python(result, mode="json")
            return web.Response(
                status=route.status,
                text=json.dumps(payload, ensure_ascii=False),
                content_type="application/json",
                charset="utf-8",
            )

        return endpoint

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document."""
        models: list[tuple[Any, Literal["validation", "serialization"]]] = [
            (Problem, "serialization")
        ]
        for route in self.routes:
            if route.body is not None:
                models.append((route.body, "validation"))
        _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
        schemas: dict[str, Any] = dict(defs.get("$defs", {}))
        paths: dict[str, Any] = {}
        for route in self.routes:
            op: dict[str, Any] = {"summary": route.summary, "operationId": route.handler.__name__}
            if route.tag:
                op["tags"] = [route.tag]
            params = [
                {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                for part in route.path.split("/")
                if part.startswith("{")
            ]
            if params:
                op["parameters"] = params
            if route.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{route.body.__name__}"}
                        }
                    },
                }
            ok: dict[str, Any] = {"description": "OK"}
            if route.response is not None:
                schema = TypeAdapter(route.response).json_schema(
                    ref_template="#/components/schemas/{model}", mode="serialization"
                )
                schemas.update(schema.pop("$defs", {}))
                ok["content"] = {"application/json": {"schema": schema}}
            problem_ref = {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
            op["responses"] = {
                str(route.status): ok,
                "default": {"description": "An error, as problem+json", "content": problem_ref},
            }
            if route.auth == "account":
                op["security"] = [{"session": []}]
            elif route.auth == "any":
                op["security"] = [{"session": []}, {"invite": []}, {"terminal": []}]
            paths.setdefault(route.path, {})[route.method.lower()] = op
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "session": {"type": "apiKey", "in": "cookie", "name": "cl_session"},
                    "invite": {"type": "apiKey", "in": "cookie", "name": "cl_invite"},
                    "terminal": {"type": "apiKey", "in": "cookie", "name": "cl_terminal"},
                },
            },
        }


async def parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise InvalidInput("send the body as application/json")
    try:
        raw = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise InvalidInput("body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(f"{where}: {reason}") from None
