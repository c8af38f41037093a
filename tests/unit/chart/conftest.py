"""The helm binary for chart tests: $KUBELOOP_HELM, else the one the local-cluster toolchain builds and caches.

Chart tests only render templates (`helm template`, `helm lint`); they need no cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "kubeloop"


@pytest.fixture(scope="session")
def helm() -> Path:
    if os.environ.get("KUBELOOP_HELM"):
        return Path(os.environ["KUBELOOP_HELM"])
    from kubeloop_cluster import toolchain

    return toolchain.binary("helm")


class Helm:
    def __init__(self, binary: Path):
        self.binary = binary

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *sets: str, namespace: str = "kubeloop", check: bool = True):
        args = ["template", "kl", str(CHART), "--namespace", namespace]
        for s in sets:
            args += ["--set", s]
        return self.run(*args, check=check)

    def objects(self, *sets: str, namespace: str = "kubeloop") -> list[dict]:
        text = self.template(*sets, namespace=namespace).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def chart(helm) -> Helm:
    return Helm(helm)
