"""Small network helpers: free loopback ports, port checks, HTTP waits (bounded)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from gearlift.twin.errors import TwinError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    if not port_is_free(port, host):
        raise TwinError(
            f"port {port} on {host} is already in use, so the {what} cannot start there. "
            f"Stop whatever listens on it (`ss -ltnp 'sport = :{port}'`) or choose another port."
        )


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - loopback/twin URLs only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


def wait_http(url: str, timeout: float = 30.0, expect: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = http_get(url, timeout=2.0)
            if status == expect:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TwinError(f"{url} did not answer {expect} within {timeout:.0f} s (last: {last})")
