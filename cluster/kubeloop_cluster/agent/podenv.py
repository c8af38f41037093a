"""Resolve a container's environment as the kubelet would: plain values, ConfigMap and Secret references,
`envFrom`, the downward API and `$(VAR)` expansion. Pure: lookups of ConfigMaps and Secrets are passed in."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

Lookup = Callable[[str, str], Mapping[str, str] | None]  # (kind, name) -> data, or None if it does not exist

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(ValueError):
    """A reference the container needs cannot be resolved (the kubelet reports CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` becomes the value of VAR if defined, else stays as it is; `$$` escapes a dollar."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(replace, text)


def _field(pod: Mapping, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if keyed:
        return (meta.get(keyed.group(1)) or {}).get(keyed.group(2), "")
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", ""),
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(ip["ip"] for ip in status.get("podIPs") or []),
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{key}="{value}"' for key, value in sorted(items.items()))
    raise EnvError(f"unsupported downward API field {path!r}")


_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "m": 1e-3,
}


def quantity(value: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    if not match:
        raise EnvError(f"cannot parse resource quantity {value!r}")
    return float(match.group(1)) * _SUFFIX.get(match.group(2), 1)


def _resource(container: Mapping, ref: Mapping) -> str:
    kind, _, name = ref["resource"].partition(".")
    amount = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if amount is None:
        return "0"
    divisor = quantity(ref.get("divisor", "1"))
    return str(math.ceil(quantity(amount) / divisor))


def _reference(kind: str, ref: Mapping, lookup: Lookup, what: str) -> str | None:
    data = lookup(kind, ref["name"])
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise EnvError(f"{what}: {kind} {ref['name']!r} has no key {ref['key']!r}")
    return data[ref["key"]]


def resolve(pod: Mapping, container: Mapping, lookup: Lookup, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    for source in container.get("envFrom") or []:
        kind = "configmap" if "configMapRef" in source else "secret"
        ref = source.get("configMapRef") or source.get("secretRef")
        data = lookup(kind, ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise EnvError(f"envFrom: {kind} {ref['name']!r} not found")
        env.update({source.get("prefix", "") + key: value for key, value in data.items()})
    for var in container.get("env") or []:
        name, source = var["name"], var.get("valueFrom")
        if source is None:
            env[name] = expand(var.get("value", ""), env)
        elif "fieldRef" in source:
            env[name] = _field(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = _resource(container, source["resourceFieldRef"])
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configmap" if "configMapKeyRef" in source else "secret"
            value = _reference(kind, source.get("configMapKeyRef") or source["secretKeyRef"], lookup, name)
            if value is not None:
                env[name] = value
    return env


def command(container: Mapping, env: Mapping[str, str], entrypoints: Mapping[str, list[str]]) -> list[str]:
    """The argv to run: the container's command and args, or the image's entrypoint from the table."""
    argv = list(container.get("command") or [])
    if not argv:
        image = container.get("image", "")
        repository = image.rsplit("@", 1)[0]
        repository = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
        if repository not in entrypoints:
            raise EnvError(
                f"image {image!r} has no command and is not in the agent's image table "
                f"({', '.join(sorted(entrypoints))}): give the container an explicit command"
            )
        argv = list(entrypoints[repository])
    return [expand(part, env) for part in [*argv, *(container.get("args") or [])]]
