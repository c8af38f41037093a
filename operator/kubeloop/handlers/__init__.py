"""Every handler module, imported so that kopf registers its decorators. One line per module."""

from kubeloop.handlers import (
    driftmonitor,  # noqa: F401
    modelversion,  # noqa: F401
    rollout,  # noqa: F401
    startup,  # noqa: F401  (the one startup handler)
    trainingrun,  # noqa: F401
)
