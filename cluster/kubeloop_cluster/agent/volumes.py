"""Materialise a pod's volumes as directories on the host, one per volume, before its containers start.

emptyDir is a fresh directory; configMap, secret, downwardAPI and projected volumes (including the
service-account token the ServiceAccount admission plugin injects, obtained through the TokenRequest API) are
written as files; hostPath is used as it is. Other volume types are refused with a message naming them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from kubeloop_cluster.agent.podenv import EnvError, _field

Lookup = Callable[[str, str], Mapping[str, str] | None]
TokenFetcher = Callable[[Mapping, Mapping], str]  # (pod, serviceAccountToken source) -> token


def _write(directory: Path, files: Mapping[str, bytes], mode: int) -> None:
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)


def _keyed(kind: str, source: Mapping, lookup: Lookup) -> dict[str, bytes]:
    name = source.get("name") or source.get("secretName")
    data = lookup(kind, name)
    if data is None:
        if source.get("optional"):
            return {}
        raise EnvError(f"{kind} {name!r} not found")
    as_bytes = {key: value.encode() if isinstance(value, str) else value for key, value in data.items()}
    items = source.get("items")
    if not items:
        return as_bytes
    return {item["path"]: as_bytes[item["key"]] for item in items if item["key"] in as_bytes}


def _downward(pod: Mapping, source: Mapping) -> dict[str, bytes]:
    files = {}
    for item in source.get("items") or []:
        if "fieldRef" in item:
            files[item["path"]] = _field(pod, item["fieldRef"]["fieldPath"]).encode()
    return files


def _projected(pod: Mapping, source: Mapping, lookup: Lookup, token: TokenFetcher) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for projection in source.get("sources") or []:
        if "serviceAccountToken" in projection:
            sa_token = projection["serviceAccountToken"]
            files[sa_token["path"]] = token(pod, sa_token).encode()
        elif "configMap" in projection:
            files.update(_keyed("configmap", projection["configMap"], lookup))
        elif "secret" in projection:
            files.update(_keyed("secret", projection["secret"], lookup))
        elif "downwardAPI" in projection:
            files.update(_downward(pod, projection["downwardAPI"]))
    return files


def materialise(pod: Mapping, root: Path, lookup: Lookup, token: TokenFetcher) -> dict[str, Path]:
    """Create every volume of the pod under `root`; returns volume name -> host directory."""
    paths: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        if "hostPath" in volume:
            paths[name] = Path(volume["hostPath"]["path"])
            continue
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        if "emptyDir" in volume:
            pass
        elif "configMap" in volume:
            _write(directory, _keyed("configmap", volume["configMap"], lookup), 0o644)
        elif "secret" in volume:
            _write(directory, _keyed("secret", volume["secret"], lookup), 0o600)
        elif "downwardAPI" in volume:
            _write(directory, _downward(pod, volume["downwardAPI"]), 0o644)
        elif "projected" in volume:
            _write(directory, _projected(pod, volume["projected"], lookup, token), 0o600)
        else:
            kinds = sorted(set(volume) - {"name"})
            raise EnvError(
                f"volume {name!r} of type {', '.join(kinds)} is not supported by the local node agent"
            )
        paths[name] = directory
    return paths


def mounts(container: Mapping, volumes: Mapping[str, Path], termination_log: Path) -> list[dict]:
    result = []
    for mount in container.get("volumeMounts") or []:
        source = volumes[mount["name"]]
        if mount.get("subPath"):
            source = source / mount["subPath"]
            if not source.exists():
                source.mkdir(parents=True)
        result.append(
            {"source": str(source), "target": mount["mountPath"], "readOnly": bool(mount.get("readOnly"))}
        )
    target = container.get("terminationMessagePath") or "/dev/termination-log"
    result.append({"source": str(termination_log), "target": target, "readOnly": False})
    return result


def ensure_private(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
