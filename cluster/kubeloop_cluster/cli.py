"""`kubeloop-cluster up|down|status|build|env`: the local cluster from the command line.

Every setup problem ends in one line naming the cause and the fix, and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from kubeloop_cluster import hostpackages, images, toolchain
from kubeloop_cluster.cluster import LocalCluster
from kubeloop_cluster.errors import SetupError


def _port(env_var: str) -> int | None:
    value = os.environ.get(env_var)
    if value is None:
        return None
    if not value.isdigit():
        raise SetupError(f"{env_var}={value!r} is not a port number")
    return int(value)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeloop-cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "build", "env"])
    parser.add_argument("--name", default=os.environ.get("KUBELOOP_CLUSTER", "kubeloop"))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            started = time.monotonic()
            binaries = toolchain.ensure_all()
            for binary, path in binaries.items():
                print(f"{binary}: {path}")
            hostpackages.ensure(log)
            for name, image in images.ensure_all(log).items():
                print(f"image {name}: {image.reference}")
            print(f"tools ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
            return 0
        cluster = LocalCluster(
            args.name, apiserver_port=_port("KUBELOOP_APISERVER_PORT"), s3_port=_port("KUBELOOP_S3_PORT")
        )
        if args.command == "up":
            cluster.up()
            print(cluster.kubeconfig)
        elif args.command == "down":
            cluster.down()
        elif args.command == "status":
            up = cluster.is_up()
            print(f"cluster {args.name!r}: {'up' if up else 'down'}; kubeconfig {cluster.kubeconfig}")
            return 0 if up else 1
        elif args.command == "env":
            for key, value in cluster.env().items():
                print(f"export {key}={value}")
        return 0
    except SetupError as error:
        print(f"kubeloop-cluster: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kubeloop-cluster: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
