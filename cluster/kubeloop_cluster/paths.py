"""Where the local cluster keeps its builds and its state: outside the repository, under one cache root."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_SOURCES = REPO_ROOT / "cluster" / "tools"


def cache_root() -> Path:
    """`$KUBELOOP_CACHE`, else `$XDG_CACHE_HOME/kubeloop`, else `~/.cache/kubeloop`."""
    explicit = os.environ.get("KUBELOOP_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kubeloop"


def tools_root() -> Path:
    return cache_root() / "tools"


def cluster_dir(name: str) -> Path:
    return cache_root() / "clusters" / name
