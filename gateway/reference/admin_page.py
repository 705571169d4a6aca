"""`docs/admin-api.md`: the admin API as its OpenAPI document states it (the document is made of
the models that validate the requests, so this page is too)."""

from __future__ import annotations

from typing import Any

from gateway.admin.openapi import STATUS_TEXT, document
from gateway.reference.markdown import GENERATED, code, table

SCHEMA_PREFIX = "#/components/schemas/"


def kind(schema: dict[str, Any]) -> str:
    """A schema in a few words: its rule when it states one, else its shape."""
    if "x-rule" in schema:
        return str(schema["x-rule"])
    if "$ref" in schema:
        return str(schema["$ref"]).removeprefix(SCHEMA_PREFIX)
    if "anyOf" in schema:
        return " or ".join(kind(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f"always {schema['const']}"
    shape = schema.get("type", "any")
    if shape == "array":
        return "list of " + kind(schema.get("items", {}))
    if shape == "object" and "additionalProperties" in schema:
        return "object of " + kind(schema["additionalProperties"])
    if shape == "null":
        return "null"
    return str(schema.get("format", shape))


def _fields(schema: dict[str, Any], schemas: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    if "$ref" in schema:
        schema = schemas[schema["$ref"].removeprefix(SCHEMA_PREFIX)]
    rows: list[tuple[str, str, str, str]] = []
    for part in schema.get("allOf", ()):
        if "properties" in part or "$ref" in part:
            rows += _fields(part, schemas)
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        rows.append((code(name), "yes" if name in required else "", kind(prop), prop.get("description", "")))
    return rows


def _operation(method: str, path: str, op: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", op["summary"] + ".", ""]
    query = [p for p in op.get("parameters", ()) if p["in"] == "query"]
    if query:
        lines += ["Query parameters (any other is a 422):", ""]
        lines += table(("name", "value", "default", "meaning"),
                       [(code(p["name"]), kind(p["schema"]), code(str(p["schema"].get("default", "")))
                         if p["schema"].get("default") not in (None, "") else "", p.get("description", ""))
                        for p in query])
        lines.append("")
    body = op.get("requestBody")
    if body:
        ref = body["content"]["application/json"]["schema"]
        name = ref["$ref"].removeprefix(SCHEMA_PREFIX)
        strict = " (an unknown field is a 422)" if name.endswith(("Input", "Patch")) else ""
        lines += [f"Body: `{name}`{strict}", ""]
        lines += table(("field", "required", "value", "meaning"), _fields(ref, schemas))
        lines.append("")
    answers = []
    for status, response in op["responses"].items():
        content = response.get("content", {}).get("application/json", {}).get("schema")
        shape = kind(content) if content else "no body"
        answers.append(f"`{status}` {shape}")
    lines += ["Answers: " + ", ".join(answers) + ".", ""]
    return lines


def render() -> str:
    doc = document()
    schemas = doc["components"]["schemas"]
    lines = [
        "# Admin API",
        "",
        GENERATED,
        "",
        "On the admin listener (`admin.host`:`admin.port`, plain HTTP, loopback by default), every",
        "path below needs `Authorization: Bearer <the token in admin.token_env>`. JSON in and out;",
        "refusals are the contract's JSON errors ([errors.md](errors.md)). The running gateway serves",
        "this as an OpenAPI 3.1 document at `GET /admin/openapi.json` (with the running configuration's",
        "plans and key validity bounds, and the token exchange) and as an interactive page at",
        "`GET /admin/docs`. Lists with `page`/`per_page` answer `{\"data\": [...], \"meta\": {\"total\",",
        "\"page\", \"per_page\", \"total_pages\"}}`; the audit trail, call log and delivery logs answer",
        "`{\"data\": [...], \"next_cursor\"}`. Unauthenticated on the same listener: `GET /metrics`",
        "([metrics.md](metrics.md)), `GET /healthz`, `GET /readyz`, and the console at `GET /admin/`.",
        "The token exchange is on the proxy listener (HTTPS), at `tokens.path` (its default below), with",
        "no admin token: the API key is the credential.",
        "",
        "What each error status means here: " + "; ".join(f"`{s}` {t}" for s, t in STATUS_TEXT.items()) + ".",
        "",
    ]
    for path, operations in doc["paths"].items():
        lines += [f"## {path}", ""]
        for method, op in operations.items():
            lines += _operation(method, path, op, schemas)
    lines += ["## Answer shapes", ""]
    for name in schemas:
        rows = _fields({"$ref": SCHEMA_PREFIX + name}, schemas)
        if rows and not name.endswith(("Input", "Patch")):
            lines += [f"### {name}", "", *table(("field", "always there", "value", "meaning"), rows), ""]
    return "\n".join(lines)
