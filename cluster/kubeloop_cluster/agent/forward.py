"""Forward TCP from the node's address to services bound to the host's loopback (API server, S3 store).

Pods live in the pod network namespace and cannot see the host's 127.0.0.1; the control plane stays bound to
loopback. A byte-for-byte relay keeps TLS end to end (the API server's certificate names the node address).
"""

from __future__ import annotations

import asyncio
import threading


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def _handler(target_host: str, target_port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return handle


def start(listen_host: str, routes: dict[int, tuple[str, int]]) -> threading.Thread:
    """Serve `listen_host:port -> target` for each route, on a daemon thread; returns once listening."""
    ready = threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            servers = [
                await asyncio.start_server(_handler(*target), listen_host, port)
                for port, target in routes.items()
            ]
        except OSError as error:
            failure.append(error)
            ready.set()
            return
        ready.set()
        await asyncio.gather(*(server.serve_forever() for server in servers))

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True, name="forwarder")
    thread.start()
    ready.wait(10)
    if failure:
        raise failure[0]
    return thread
