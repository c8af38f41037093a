"""`kubeloop-operator`: run kopf with kubeloop's handlers, the metrics endpoint and the health endpoint."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # kopf logs every watch event and patch at DEBUG; keep them out unless asked for.
    logging.getLogger("kubernetes").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # every liveness probe


def main(argv: Sequence[str] | None = None) -> int:
    """Run the operator until SIGTERM/SIGINT. Configuration comes only from KUBELOOP_* variables."""
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("Settings: see docs/operator.md (env vars KUBELOOP_*).")
        return 0

    from kubeloop.settings import Settings

    try:
        settings = Settings()
    except ValidationError as e:
        print(f"kubeloop-operator: invalid settings:\n{e}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)

    import kopf

    import kubeloop.handlers  # noqa: F401  (registers every handler with kopf)
    from kubeloop import observability

    observability.start_metrics_server(settings.bind_address, settings.metrics_port)
    host = f"[{settings.bind_address}]" if ":" in settings.bind_address else settings.bind_address
    asyncio.run(
        kopf.operator(
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            liveness_endpoint=f"http://{host}:{settings.health_port}/healthz",
            memo=kopf.Memo(settings=settings),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
