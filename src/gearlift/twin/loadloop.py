"""A steady request loop against the twin's load balancer, on loopback only, bounded.

Used by the image lifecycle tests and ``scripts/bench-image-lifecycle`` to
count the requests that fail through HAProxy while hosts are replaced or
patched. Every request opens a new connection (no keep-alive to race a
reload), a request fails when it gets no answer within the timeout or an
answer other than 200. HTTPS is verified against the given CA (the twin's).
The loop refuses any host but 127.0.0.1 and stops by itself after
``max_requests`` requests or ``max_seconds`` seconds.

With ``resolve`` (a callable returning a loopback URL, e.g. ``lambda: resolver.url(name)`` with a
``gearlift.twin.dataplane.route53.NameResolver``), every request first asks where the shop's name
leads, as a customer's browser does after its DNS cache expired: the requests follow a DNS cutover,
a weighted canary spreads them by weight, and ``LoadResult.doors`` counts the front doors used.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    hosts: Counter[str] = field(default_factory=Counter)
    doors: Counter[str] = field(default_factory=Counter)  # front door (URL) -> requests sent there
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.sent} requests in {self.seconds:.0f} s, {self.failed} failed "
            f"({dict(self.statuses)}), served by {len(self.hosts)} host(s)"
        )


class LoadLoop:
    def __init__(
        self,
        url: str,
        interval: float = 0.1,
        timeout: float = 5.0,
        max_requests: int = 20000,
        max_seconds: float = 1800.0,
        cafile: str | None = None,
        resolve: Callable[[], str] | None = None,
    ) -> None:
        parts = _loopback(url)
        self.cafile = cafile
        self.context = ssl.create_default_context(cafile=cafile) if parts.scheme == "https" else None
        self.scheme = parts.scheme
        self.port = parts.port
        self.path = parts.path or "/"
        self.resolve = resolve
        self.interval = interval
        self.timeout = timeout
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-loop", daemon=True)

    def _door(self) -> tuple[str, int, ssl.SSLContext | None] | str:
        """(scheme, port, TLS context) of the front door for this request, or why there is none."""
        if self.resolve is None:
            return self.scheme, self.port, self.context
        try:
            parts = _loopback(self.resolve())
        except (LookupError, OSError, ValueError) as exc:
            return f"resolve: {exc}"
        context = ssl.create_default_context(cafile=self.cafile) if parts.scheme == "https" else None
        return parts.scheme, parts.port, context

    def _one(self) -> None:
        door = self._door()
        if isinstance(door, str):
            self._record("ResolveError", door.encode())
            return
        scheme, port, context = door
        self.result.doors[f"{scheme}://127.0.0.1:{port}"] += 1
        conn: http.client.HTTPConnection
        if context is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        else:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=self.timeout, context=context)
        try:
            conn.request("GET", self.path, headers={"Connection": "close", "Host": "localhost"})
            response = conn.getresponse()
            body = response.read(4096)
            status = str(response.status)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            status, body = type(exc).__name__, b""
        finally:
            conn.close()
        self._record(status, body)

    def _record(self, status: str, body: bytes) -> None:
        result = self.result
        result.sent += 1
        result.statuses[status] += 1
        if status == "200":
            result.ok += 1
            marker = b'"host":"'
            if marker in body:
                result.hosts[body.split(marker, 1)[1].split(b'"', 1)[0].decode(errors="replace")] += 1
        else:
            result.failed += 1
            if len(result.failures) < 50:
                result.failures.append(f"{time.strftime('%H:%M:%S')} {status} {body[:120]!r}")

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            if self.result.sent >= self.max_requests or time.monotonic() - start >= self.max_seconds:
                break
            self._one()
            self._stop.wait(self.interval)
        self.result.seconds = time.monotonic() - start

    def __enter__(self) -> LoadLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        return self.result


class _Loopback(NamedTuple):
    scheme: str
    port: int
    path: str


def _loopback(url: str) -> _Loopback:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"the load loop only sends to http(s)://127.0.0.1:<port>/..., not {url!r}")
    return _Loopback(parts.scheme, parts.port, parts.path)
