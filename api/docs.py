"""The API's reference page, read from its OpenAPI schema and rendered on the server.

Swagger UI and Redoc run scripts from a CDN, or from drf-spectacular-sidecar's copies,
which this project does not install; the site's CSP forbids both external scripts and
inline ones. So the page is plain HTML made from the same schema as /api/v1/schema/:
every operation with its parameters, body, answers and errors, and every schema.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")
# `code` in the schema's descriptions (Markdown's inline code), and ``code`` (reST's,
# from the serializers' docstrings).
_CODE = re.compile(r"``?([^`]+)``?")


def prose(text: str) -> SafeString:
    """A description as HTML: escaped, its inline code spans in <code>."""
    return mark_safe(_CODE.sub(r"<code>\1</code>", escape(text)))  # escaped first


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str = ""
    where: str = ""


@dataclass(frozen=True)
class ResponseDoc:
    status: str
    description: str
    schema: str


@dataclass(frozen=True)
class OperationDoc:
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    parameters: list[FieldDoc]
    body: str
    responses: list[ResponseDoc]


@dataclass(frozen=True)
class SchemaDoc:
    name: str
    description: str
    fields: list[FieldDoc]


@dataclass(frozen=True)
class ApiReference:
    title: str
    version: str
    description: str
    security: str
    tags: list[tuple[str, list[OperationDoc]]]
    schemas: list[SchemaDoc] = field(default_factory=list)


@functools.cache
def api_schema() -> dict[str, Any]:
    """The API's OpenAPI schema, as /api/v1/schema/ serves it (made once per process:
    it depends on the code only)."""
    schema: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return schema


def type_text(schema: dict[str, Any]) -> str:
    """A schema's type in words: "integer", "array of Card", "string or null"."""
    if "$ref" in schema:
        text = schema["$ref"].rsplit("/", 1)[-1]
    elif "anyOf" in schema or "oneOf" in schema:
        parts = schema.get("anyOf") or schema.get("oneOf") or []
        text = " or ".join(type_text(part) for part in parts)
    elif "allOf" in schema:
        text = " and ".join(type_text(part) for part in schema["allOf"])
    elif schema.get("type") == "array":
        text = f"array of {type_text(schema.get('items', {}))}"
    elif "enum" in schema:
        text = "one of " + ", ".join(str(value) for value in schema["enum"] if value is not None)
    else:
        text = str(schema.get("type", "any"))
        if "format" in schema:
            text += f" ({schema['format']})"
    if schema.get("nullable"):
        text += " or null"
    return text


def _fields(schema: dict[str, Any]) -> list[FieldDoc]:
    required = set(schema.get("required", ()))
    return [
        FieldDoc(
            name=name,
            type=type_text(prop),
            required=name in required,
            description=prose(prop.get("description", "")),
        )
        for name, prop in schema.get("properties", {}).items()
    ]


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    json_body = content.get("application/json")
    return type_text(json_body["schema"]) if json_body else ""


def _responses(operation: dict[str, Any]) -> list[ResponseDoc]:
    documented = []
    for status, response in operation.get("responses", {}).items():
        json_body = response.get("content", {}).get("application/json")
        documented.append(
            ResponseDoc(
                status=status,
                description=prose(response.get("description", "")),
                schema=type_text(json_body["schema"]) if json_body else "",
            )
        )
    return documented


def api_reference() -> ApiReference:
    """The reference page's contents, from ``api_schema()``."""
    schema = api_schema()
    by_tag: dict[str, list[OperationDoc]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = [
                FieldDoc(
                    name=parameter["name"],
                    type=type_text(parameter.get("schema", {})),
                    required=parameter.get("required", False),
                    description=prose(parameter.get("description", "")),
                    where=parameter["in"],
                )
                for parameter in operation.get("parameters", [])
            ]
            tag = (operation.get("tags") or ["API"])[0]
            by_tag.setdefault(tag, []).append(
                OperationDoc(
                    method=method.upper(),
                    path=path,
                    operation_id=operation.get("operationId", ""),
                    summary=operation.get("summary", ""),
                    description=prose(operation.get("description", "")),
                    parameters=parameters,
                    body=_body(operation),
                    responses=_responses(operation),
                )
            )
    components = schema.get("components", {})
    schemes = components.get("securitySchemes", {})
    return ApiReference(
        title=schema["info"]["title"],
        version=schema["info"]["version"],
        description=prose(schema["info"].get("description", "")),
        security=prose(" ".join(scheme.get("description", "") for scheme in schemes.values())),
        tags=list(by_tag.items()),
        schemas=[
            SchemaDoc(
                name=name, description=prose(body.get("description", "")), fields=_fields(body)
            )
            for name, body in sorted(components.get("schemas", {}).items())
        ],
    )
