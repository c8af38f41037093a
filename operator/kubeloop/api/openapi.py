"""From a pydantic model to a structural OpenAPI v3 schema, the kind a CRD accepts.

pydantic writes JSON Schema 2020-12; a CRD wants a structural subset of OpenAPI v3.0. The differences handled
here, and why:
- `$ref`/`$defs` are inlined: a CRD schema cannot refer to anything.
- `anyOf: [X, {type: null}]` becomes X: an optional field is simply not required (and `null` is not a value
  the API server would keep anyway).
- `exclusiveMinimum: x` becomes `minimum: x, exclusiveMinimum: true` (the v3.0 form).
- `const` becomes a one-value `enum`; `title`, `propertyNames` and `additionalProperties: false` are dropped
  (the first two do not exist in a CRD, the last is implied by structural pruning).
- Defaults made by a `default_factory` are written out: a nested object defaults to `{}` so that the API
  server fills its own defaults in, a non-empty list is written in full, and empty maps and lists stay unset.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from kubeloop.api.common import format_duration

_DROPPED_KEYS = {"title", "propertyNames", "$schema"}
# JSON Schema that a structural CRD schema cannot express; meeting one is a modelling error, not a warning.
_UNSUPPORTED_KEYS = {"patternProperties", "allOf", "oneOf", "not", "if", "then", "else", "prefixItems"}


class _CrdJsonSchema(GenerateJsonSchema):
    """pydantic's generator, with the defaults of `default_factory` fields made explicit."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = self.generate_inner(schema["schema"])
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            value = schema["default_factory"]()  # type: ignore[call-arg]
        elif "default" in schema:
            value = schema["default"]
        else:
            return json_schema
        if value is None:
            return json_schema
        encoded = _encode_default(value)
        if encoded is _UNSET:
            return json_schema
        return {**json_schema, "default": encoded}


_UNSET = object()


def _encode_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        # The nested schema carries its own defaults; `{}` lets the API server apply them.
        return {}
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list | tuple):
        if not value:
            return _UNSET
        return [_encode_item(v) for v in value]
    if isinstance(value, dict):
        return _UNSET if not value else {k: _encode_item(v) for k, v in value.items()}
    return value


def _encode_item(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, timedelta):
        return format_duration(value)
    return value


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, with every reference inlined."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_CrdJsonSchema)
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a `$ref`; the referring node's own keys (a field's description, default) win."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    target = copy.deepcopy(defs[name])
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return _resolve({**target, **siblings}, defs)


def _strip_null(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, null]` (an Optional) becomes X, keeping the outer description and default."""
    variants = node.get("anyOf")
    if not variants:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    if len(non_null) == len(variants):
        return node
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    if outer.get("default", _UNSET) is None:
        del outer["default"]
    if len(non_null) == 1:
        return {**non_null[0], **outer}
    return {**outer, "anyOf": non_null}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(_strip_null(_resolve(node, defs)), defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key in _UNSUPPORTED_KEYS:
            raise ValueError(f"{key} cannot be expressed in a structural CRD schema: {node}")
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _structural(value, defs)
            # `true` (any value) is expressed by x-kubernetes-preserve-unknown-fields, `false` by pruning.
        elif key == "anyOf":
            out[key] = [_structural(v, defs) for v in value]
        else:
            out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    # Keys in a fixed order (properties keep the models' field order) so the YAML diff stays readable.
    return dict(sorted(out.items()))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
