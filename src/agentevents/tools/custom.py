"""User-defined tools: a JSON definition with a text ``template`` or a calculator ``expression``.

A definition may also declare ``result_schema`` (a JSON Schema): the dispatcher then checks each
result against it and reports a result that does not match as status error / ``invalid_result``.

Placeholders are ``{param}`` (a bare parameter name: no attribute access, indexing, format spec
or conversion, so a template can never reach Python objects). Expressions are evaluated with the
calculator's safe evaluator, parameters bound as numeric variables.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import jsonschema

from agentevents.tools.base import ToolContext, ToolError, ToolResult
from agentevents.tools.calculator import MAX_EXPRESSION_LENGTH, evaluate, parse_expression

NAME_PATTERN = re.compile(r"^custom\.[a-z0-9_]{1,40}$")
_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_TEMPLATE_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 500
_VARIABLE_PREFIX = "__p_"

Segment = tuple[str, str | None]  # (literal text, placeholder name or None)


def _invalid(reason: str) -> ToolError:
    return ToolError("invalid_tool_definition", reason, details={"reason": reason})


def parse_placeholders(text: str, properties: dict[str, Any], what: str) -> list[Segment]:
    """Split ``text`` into literal/placeholder segments; every placeholder must be a declared parameter."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise _invalid(f"{what} is malformed: {exc}") from None
    segments: list[Segment] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            segments.append((literal, None))
            continue
        if not _PLACEHOLDER.fullmatch(field) or spec or conversion:
            raise _invalid(f"placeholder {{{field}}} in {what} must be a bare parameter name")
        if field not in properties:
            raise _invalid(f"placeholder {{{field}}} in {what} is not a declared parameter")
        segments.append((literal, field))
    return segments


def _check_schema(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise _invalid("parameters must be a JSON Schema with type 'object'")
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict):
        raise _invalid("parameters.properties must be an object")
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.exceptions.SchemaError as exc:
        raise _invalid(f"parameters is not a valid JSON Schema: {exc.message}") from None
    return properties


def _check_result_schema(schema: Any) -> dict[str, Any] | None:
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise _invalid("result_schema must be a JSON Schema object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise _invalid(f"result_schema is not a valid JSON Schema: {exc.message}") from None
    return schema


def _expression_source(segments: list[Segment]) -> str:
    return "".join(lit + (f" {_VARIABLE_PREFIX}{field} " if field else "") for lit, field in segments)


def _check_expression(segments: list[Segment], properties: dict[str, Any]) -> str:
    source = _expression_source(segments)
    fields = {field for _, field in segments if field}
    for field in fields:
        declared = properties[field].get("type") if isinstance(properties[field], dict) else None
        if declared is not None and declared not in ("number", "integer"):
            raise _invalid(f"expression parameter {field!r} must be of type number or integer")
    try:
        parse_expression(source, frozenset(_VARIABLE_PREFIX + f for f in fields))
    except ToolError as exc:
        raise _invalid(f"expression is invalid: {exc.message}") from None
    return source


def _text_field(defn: dict[str, Any], key: str, limit: int) -> str:
    value = defn.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{key} must be a non-empty string")
    if len(value) > limit:
        raise _invalid(f"{key} longer than {limit} characters")
    return value


def _render_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class CustomTool:
    """A tool built from a user definition; see :meth:`from_definition`."""

    permission: str | None = None
    timeout_s = 5.0
    category = "custom"

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        *,
        template: str | None = None,
        expression: str | None = None,
        result_schema: dict[str, Any] | None = None,
    ) -> None:
        properties = _check_schema(parameters)
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise _invalid("name must match ^custom\\.[a-z0-9_]{1,40}$")
        if (template is None) == (expression is None):
            raise _invalid("exactly one of template or expression is required")
        self.name, self.description, self.parameters = name, description, parameters
        self.template, self.expression = template, expression
        # Read by the dispatcher (``getattr(tool, "result_schema", None)``).
        self.result_schema = _check_result_schema(result_schema)
        text, what = (template, "template") if template is not None else (expression, "expression")
        self._segments = parse_placeholders(text or "", properties, what)
        self._source = _check_expression(self._segments, properties) if expression is not None else None

    @classmethod
    def from_definition(cls, defn: Any) -> CustomTool:
        """Validate a definition dict; raise ToolError("invalid_tool_definition") when it is not usable."""
        if not isinstance(defn, dict):
            raise _invalid("definition must be an object")
        if not isinstance(defn.get("name"), str) or not NAME_PATTERN.fullmatch(defn["name"]):
            raise _invalid("name must match ^custom\\.[a-z0-9_]{1,40}$")
        description = _text_field(defn, "description", MAX_DESCRIPTION_LENGTH)
        has_template, has_expression = defn.get("template") is not None, defn.get("expression") is not None
        if has_template == has_expression:
            raise _invalid("exactly one of template or expression is required")
        result_schema = defn.get("result_schema")
        if has_template:
            template = _text_field(defn, "template", MAX_TEMPLATE_LENGTH)
            return cls(defn["name"], description, defn.get("parameters"), template=template,
                       result_schema=result_schema)
        expression = _text_field(defn, "expression", MAX_EXPRESSION_LENGTH)
        return cls(defn["name"], description, defn.get("parameters"), expression=expression,
                   result_schema=result_schema)

    def to_definition(self) -> dict[str, Any]:
        body = {"template": self.template} if self.template is not None else {"expression": self.expression}
        if self.result_schema is not None:
            body["result_schema"] = self.result_schema
        return {"name": self.name, "description": self.description, "parameters": self.parameters, **body}

    def _value(self, params: dict[str, Any], field: str) -> Any:
        if field in params:
            return params[field]
        spec = self.parameters.get("properties", {}).get(field)
        return spec.get("default") if isinstance(spec, dict) else None

    def _render(self, params: dict[str, Any]) -> str:
        out = []
        for literal, field in self._segments:
            out.append(literal)
            if field is not None:
                value = self._value(params, field)
                out.append("" if value is None else _render_value(value))
        return "".join(out)

    def _evaluate(self, params: dict[str, Any]) -> int | float:
        variables: dict[str, int | float] = {}
        for field in {f for _, f in self._segments if f}:
            value = self._value(params, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ToolError("invalid_params", f"parameter {field!r} must be a number")
            variables[_VARIABLE_PREFIX + field] = value
        assert self._source is not None
        return evaluate(self._source, variables)

    async def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if self.expression is not None:
            result: Any = self._evaluate(params)
            fmt = "number"
        else:
            result, fmt = self._render(params), "text"
        metadata = {"custom": True, "owner": "user", "definition": self.name, "format": fmt}
        return ToolResult(result=result, metadata=metadata)
