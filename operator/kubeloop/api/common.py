"""Building blocks shared by the three kinds: the model base, names, durations, quantities and resources.

Every field carries a description because the descriptions become the CRD schema, and `kubectl explain`
is how users read the API.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from kubeloop.api.cel import rules_of

GROUP = "kubeloop.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class _CelSchemaMixin:
    """Puts the CEL rules declared with `@cel` on a class into that class's JSON schema."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = super().__get_pydantic_json_schema__(core_schema, handler)  # type: ignore[misc]
        rules = rules_of(cls)
        if rules:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [r.to_openapi() for r in rules]
        return schema


class ApiModel(_CelSchemaMixin, BaseModel):
    """Base of every user-facing shape: snake_case in Python, camelCase on the wire, unknown keys refused.

    Refusing unknown keys catches typos in task documents and templates; the API server prunes unknown
    fields before the operator sees an object, so this never rejects a stored resource.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class StatusModel(_CelSchemaMixin, BaseModel):
    """Base of status shapes. Unknown keys are ignored: kopf and older operators may leave their own."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )


# A DNS-1123 label: the registry model name ends up in object names and label values.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=52,
        pattern=DNS_LABEL_PATTERN,
        description=(
            "Registry model name: a DNS-1123 label of at most 52 characters (lower case letters, digits "
            "and '-'), short enough to prefix the names of the objects that serve it."
        ),
    ),
]

# An object name in the same namespace (DNS-1123 subdomain).
ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    ),
]

# Go-style durations as Kubernetes users write them (`30s`, `5m`, `1h30m`); CEL's duration() reads them too.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse `1h30m`, `45s` or `500ms` (or plain seconds) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if not isinstance(value, str) or not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest `1h2m3s` form of a timedelta; sub-second values keep milliseconds."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32}),
]

# A Kubernetes resource quantity (`500m`, `1Gi`, `2`): written as int or string, kept as string in Python.
_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^(\+|-)?{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"


def _quantity_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    Field(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class ResourceRequirements(ApiModel):
    """Compute resources of a container, in the shape of the core/v1 ResourceRequirements."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Minimum resources the container is guaranteed, e.g. {cpu: 500m, memory: 512Mi}.",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Maximum resources the container may use, e.g. {cpu: '2', memory: 2Gi}.",
    )


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z and whole seconds: the metav1.Time wire form."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(value: Any) -> Any:
    # A naive time from a task document or a test means UTC, as everywhere in Kubernetes.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_aware),
    PlainSerializer(format_time, return_type=str, when_used="json-unless-none"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
