import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def drift_simulation() -> ModuleType:
    """The Monte Carlo helper, loaded by path (the suite runs with --import-mode=importlib)."""
    path = Path(__file__).with_name("drift_simulation.py")
    spec = importlib.util.spec_from_file_location("kubeloop_tests_drift_simulation", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
