"""An open-loop HTTP/1.1 load generator for one fixed request, on loopback only, bounded in time.

Requests are released on a fixed schedule (``rate`` per second) whatever the server does, onto a pool of
keep-alive connections; a request waits for a free connection if all are busy. Latency is measured from
the moment a request is written to the moment its whole response is read. A run only counts as
sustaining its rate if it completed at least 97% of the scheduled requests in time and the backlog did
not grow, so a saturated server shows up as a failed rate, not as a low latency.

Run as a script; prints one JSON object. Standard library plus uvloop, so it costs the server little.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np


def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") and not (parts.hostname or "").startswith("127."):
        raise SystemExit("the load generator only targets loopback addresses")
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return parts.hostname, parts.port, head + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    else:
        raise RuntimeError("response without Content-Length")
    await reader.readexactly(length)
    return status


async def run(url: str, body: bytes, rate: float, duration: float, connections: int, warmup: float) -> dict:
    host, port, request = build_request(url, body)
    total = int(rate * (duration + warmup))
    n_warm = int(rate * warmup)
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    latencies = np.full(total, np.nan)
    statuses = np.zeros(total, dtype=np.int32)
    done_at = np.full(total, np.nan)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (i := await queue.get()) is not None:
                sent = time.perf_counter()
                try:
                    statuses[i] = await _exchange(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError):
                    statuses[i] = -1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                now = time.perf_counter()
                latencies[i] = now - sent
                done_at[i] = now
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter()
    released = 0
    max_backlog_late = 0
    while released < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while released < due:
            queue.put_nowait(released)
            released += 1
        if released > n_warm:
            max_backlog_late = max(max_backlog_late, queue.qsize())
        await asyncio.sleep(0.0005)
    end_schedule = start + total / rate
    for _ in workers:
        queue.put_nowait(None)
    # Give stragglers a bounded grace period, then stop.
    try:
        await asyncio.wait_for(asyncio.gather(*workers), timeout=5.0)
    except TimeoutError:
        for w in workers:
            w.cancel()
    measured = slice(n_warm, total)
    lat = latencies[measured]
    ok = (statuses[measured] == 200) & np.isfinite(lat)
    # "in time": finished within 1 s of the end of the schedule
    in_time = np.isfinite(done_at[measured]) & (done_at[measured] <= end_schedule + 1.0)
    window = (total - n_warm) / rate
    lat_ok = lat[ok] * 1000.0
    return {
        "rate": rate,
        "scheduled": total - n_warm,
        "completed": int(np.sum(ok)),
        "errors": int(np.sum(statuses[measured] != 200)),
        "achieved_rps": float(np.sum(ok & in_time) / window),
        "sustained": bool(np.sum(ok & in_time) >= 0.97 * (total - n_warm) and max_backlog_late < connections),
        "max_backlog": int(max_backlog_late),
        "p50_ms": float(np.percentile(lat_ok, 50)) if lat_ok.size else None,
        "p90_ms": float(np.percentile(lat_ok, 90)) if lat_ok.size else None,
        "p99_ms": float(np.percentile(lat_ok, 99)) if lat_ok.size else None,
        "max_ms": float(lat_ok.max()) if lat_ok.size else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--connections", type=int, default=32)
    a = p.parse_args()
    if a.duration > 60 or a.rate * (a.duration + a.warmup) > 2_000_000:
        raise SystemExit("refusing an unbounded run: keep duration <= 60 s and requests <= 2M")
    with open(a.body_file, "rb") as f:
        body = f.read()
    coro = run(a.url, body, a.rate, a.duration, a.connections, a.warmup)
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
