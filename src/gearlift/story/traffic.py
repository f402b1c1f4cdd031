"""The story's customer traffic, on loopback only and bounded: an order loop and an ALB probe.

``OrderLoop`` places orders (POST /orders) through the shop's front door of the moment - the
legacy shop until the cutover, the ALB's HTTPS listener after it (``switch``) - in a thread that
keeps running across phases. An order counts as confirmed when the shop answered 201 (its id is
kept) or 409 to a retry of the same order_ref (an earlier attempt was stored). A 503 (read-only
during the cutover) or no answer is retried with the same order_ref, bounded. Every request that
did not get 201/409 is a failed request of the phase running at the time (``phase``).

``Probe`` asks GET /health through the ALB in a loop during a phase and counts the requests
that fail after the ALB first answered 200 (before that the fleet does not serve the shop yet).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SKU = "HOODIE-NVY-XL"


@dataclass(frozen=True)
class Target:
    """A front door on loopback: http(s)://127.0.0.1:<port>, HTTPS verified against ``cafile``."""

    url: str
    cafile: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"story traffic only goes to http(s)://127.0.0.1:<port>, not {self.url!r}")

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[str, bytes]:
        """(status or exception name, body) of one JSON request on a new connection."""
        reply = self.exchange(method, path, body, timeout=timeout)
        return reply.status, reply.body

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
        max_bytes: int = 16384,
    ) -> Reply:
        """One request on a new connection: the status (or the exception's name), at most ``max_bytes`` of
        the body, and the response headers (lower-case names; Set-Cookie values joined by newlines)."""
        parts = urlsplit(self.url)
        assert parts.port is not None
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.cafile)
            conn = http.client.HTTPSConnection("127.0.0.1", parts.port, timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
        sent = {"Connection": "close", "Host": "localhost", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            got: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                got[key] = f"{got[key]}\n{value}" if key in got else value
            return Reply(str(response.status), response.read(max_bytes), got, self.url)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return Reply(type(exc).__name__, b"", {}, self.url)
        finally:
            conn.close()


@dataclass(frozen=True)
class Reply:
    status: str
    body: bytes
    headers: dict[str, str]
    site: str = ""  # the front door that answered (its URL), '' when none did


class FrontDoor:
    """Where the customers go: one fixed front door (``switch``), or wherever the shop's name resolves,
    asked again for every request as a browser does once its DNS cache expired (``follow``).

    A name that does not resolve to a known front door is a failed request (``ResolveError``).
    """

    def __init__(self, target: Target) -> None:
        self._target = target
        self._resolve: Callable[[], Target] | None = None
        self._lock = threading.Lock()

    def switch(self, target: Target) -> None:
        with self._lock:
            self._target, self._resolve = target, None

    def follow(self, resolve: Callable[[], Target]) -> None:
        with self._lock:
            self._resolve = resolve

    def current(self) -> Target:
        """The front door of this request (LookupError, OSError or ValueError when the name does not lead to one)."""
        with self._lock:
            target, resolve = self._target, self._resolve
        return resolve() if resolve is not None else target

    def exchange(self, method: str, path: str, body: bytes | None = None, **kwargs: Any) -> Reply:
        try:
            target = self.current()
        except (LookupError, OSError, ValueError) as exc:
            return Reply("ResolveError", str(exc).encode()[:200], {})
        return target.exchange(method, path, body, **kwargs)

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[str, bytes]:
        reply = self.exchange(method, path, body, timeout=timeout)
        return reply.status, reply.body


@dataclass
class PhaseTraffic:
    sent: int = 0
    failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


class OrderLoop:
    def __init__(
        self,
        target: Target,
        prefix: str = "story",
        interval: float = 0.2,
        max_orders: int = 20000,
        max_seconds: float = 3600.0,
        retries: int = 240,
        retry_pause: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self.interval = interval
        self.max_orders = max_orders
        self.max_seconds = max_seconds
        self.retries = retries
        self.retry_pause = retry_pause
        self.phase = "estate"
        self.confirmed: dict[str, int | None] = {}  # order_ref -> id the shop answered (None: 409 on a retry)
        self.unconfirmed: list[str] = []  # never confirmed within the retries: not sold, so not lost
        self.by_phase: dict[str, PhaseTraffic] = {}
        self.failures: list[str] = []
        self.door = FrontDoor(target)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="story-orders", daemon=True)
        self.seconds = 0.0

    # --------------------------------------------------------------- control
    @property
    def target(self) -> FrontDoor:
        return self.door

    def switch(self, target: Target) -> None:
        """From now on, orders go through ``target``."""
        self.door.switch(target)

    def follow(self, resolve: Callable[[], Target]) -> None:
        """From now on, each order goes where the shop's name leads (the DNS cutover, as customers see it)."""
        self.door.follow(resolve)

    def start(self) -> OrderLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def failed(self, phase: str) -> int | None:
        traffic = self.by_phase.get(phase)
        return traffic.failed if traffic is not None else None

    # ------------------------------------------------------------------ loop
    def _count(self, status: str, body: bytes) -> None:
        traffic = self.by_phase.setdefault(self.phase, PhaseTraffic())
        traffic.sent += 1
        traffic.statuses[status] += 1
        if status not in ("201", "409"):
            traffic.failed += 1
            if len(self.failures) < 100:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {self.phase} {status} {body[:120]!r}")

    def place(self, ref: str) -> bool:
        """One order, retried with the same ref until confirmed (bounded); True when confirmed."""
        payload = json.dumps({"order_ref": ref, "sku": SKU, "qty": 1}).encode()
        for attempt in range(self.retries):
            if self._stop.is_set() and attempt:
                break
            status, body = self.target.request("POST", "/orders", payload)
            self._count(status, body)
            if status == "201":
                try:
                    self.confirmed[ref] = int(json.loads(body)["id"])
                except (ValueError, KeyError, TypeError):
                    self.confirmed[ref] = None
                return True
            if status == "409" and attempt:  # a retry: the earlier attempt was stored
                self.confirmed[ref] = None
                return True
            if status == "409":  # the first attempt of a fresh ref: someone else's order, not ours
                return False
            self._stop.wait(self.retry_pause)
        self.unconfirmed.append(ref)
        return False

    def _run(self) -> None:
        start = time.monotonic()
        try:
            for n in range(self.max_orders):
                if self._stop.is_set() or time.monotonic() - start > self.max_seconds:
                    return
                self.place(f"{self.prefix}-{n:06d}")
                self._stop.wait(self.interval)
        finally:
            self.seconds = time.monotonic() - start


class Probe:
    """GET /health through ``target`` until stopped (bounded), counting failures after the first 200."""

    def __init__(self, target: Target, interval: float = 0.1, max_requests: int = 30000) -> None:
        self.target = target
        self.interval = interval
        self.max_requests = max_requests
        self.sent = 0
        self.before_first_ok = 0
        self.failed = 0
        self.statuses: Counter[str] = Counter()
        self.failures: list[str] = []
        self._serving = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="story-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < self.max_requests:
            status, body = self.target.request("GET", "/health", timeout=5.0)
            self.sent += 1
            self.statuses[status] += 1
            if status == "200":
                self._serving = True
            elif not self._serving:
                self.before_first_ok += 1
            else:
                self.failed += 1
                if len(self.failures) < 50:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {status} {body[:120]!r}")
            self._stop.wait(self.interval)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
