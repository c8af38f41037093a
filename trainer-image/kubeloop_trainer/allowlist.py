"""The allow-list of Python packages that names from outside may point into.

Two names come from outside the image: the estimator class path in a TrainingRun, and the types a saved
model file references. Either could otherwise make the trainer or the server import and run arbitrary
code. Both are checked against module prefixes before anything is imported; a model file's types must
also be on the explicit list of ``trusted_types``. The default is scikit-learn only (``sklearn.``); a
platform admin can change it for a whole deployment with ``KUBELOOP_ALLOWED_MODULES`` (comma separated,
e.g. ``sklearn.,lightgbm.``). The value is read from the pod environment, which the operator's settings
control; a TrainingRun cannot set it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ALLOWED_MODULES_ENV = "KUBELOOP_ALLOWED_MODULES"
DEFAULT_ALLOWED_MODULES: tuple[str, ...] = ("sklearn.",)


def allowed_modules(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The configured prefixes, each ending in a dot; the default when unset or empty."""
    env = os.environ if env is None else env
    prefixes = [p.strip() for p in env.get(ALLOWED_MODULES_ENV, "").split(",") if p.strip()]
    # A prefix ends at a package boundary, so "sklearn" can never admit a package called "sklearn_evil".
    return tuple(p if p.endswith(".") else p + "." for p in prefixes) or DEFAULT_ALLOWED_MODULES


def is_allowed(dotted: str, allowed: tuple[str, ...]) -> bool:
    """Whether the dotted module (or module.attribute) name lies inside an allowed package."""
    return any((dotted + ".").startswith(prefix) for prefix in allowed)
