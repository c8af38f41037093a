import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_NAME = "kubeloop_tests_crafted_models"


def _load() -> ModuleType:
    if _NAME in sys.modules:  # once per session: it installs an audit hook
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("crafted_models.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def crafted() -> ModuleType:
    """Hostile model files made in code, and the side-effect recorder (see crafted_models.py)."""
    return _load()
