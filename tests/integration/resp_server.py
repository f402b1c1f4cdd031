"""A throw-away Redis stand-in for the integration tests when no redis-server is installed.

Speaks RESP2 over TLS (the test CA's server certificate) on loopback and implements only what the
shop's session stores send: AUTH (requirepass: every other command before it gets -NOAUTH), PING,
GET, GETEX key EX n, SET key value [EX n] [NX], EXPIRE, DEL, DBSIZE, with key expiry (TTL). It keeps
a log of the command names it served (never their arguments) so tests can check what was sent.
A real Redis (redis-server, or ElastiCache in the rehearsal twin) is the reference; this is enough to
check that sessions written through one server process are read through another.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .mariadb_server import LOOPBACK


class _Closed(Exception):
    pass


@dataclass
class RespServer:
    port: int
    token: str
    ca: Path
    data: dict[bytes, tuple[bytes, float | None]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    # True: every command after AUTH gets an error reply (a store that is loading or failing over).
    refuse: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self, prefix: bytes = b"") -> list[bytes]:
        with self.lock:
            self._purge()
            return sorted(k for k in self.data if k.startswith(prefix))

    def ttl(self, key: bytes) -> float | None:
        with self.lock:
            self._purge()
            item = self.data.get(key)
            return None if item is None or item[1] is None else item[1] - time.monotonic()

    def _purge(self) -> None:
        now = time.monotonic()
        for k in [k for k, (_, exp) in self.data.items() if exp is not None and exp <= now]:
            del self.data[k]

    # ------------------------------------------------------------------ protocol

    def handle(self, args: list[bytes], authed: bool) -> tuple[bytes, bool]:
        name = args[0].decode("ascii", "replace").upper() if args else ""
        self.commands.append(name)
        if name == "AUTH":
            if len(args) == 2 and args[1].decode() == self.token:
                return b"+OK\r\n", True
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n", False
        if not authed:
            return b"-NOAUTH Authentication required.\r\n", False
        if self.refuse:
            return b"-LOADING Redis is loading the dataset in memory\r\n", True
        with self.lock:
            self._purge()
            return self._command(name, args[1:]), True

    def _command(self, name: str, a: list[bytes]) -> bytes:
        now = time.monotonic()
        if name == "PING":
            return b"+PONG\r\n"
        if name == "DBSIZE":
            return b":%d\r\n" % len(self.data)
        if name == "GET" and len(a) == 1:
            return _bulk(self.data.get(a[0], (None, None))[0])
        if name == "GETEX" and len(a) == 3 and a[1].upper() == b"EX":
            item = self.data.get(a[0])
            if item is None:
                return _bulk(None)
            self.data[a[0]] = (item[0], now + int(a[2]))
            return _bulk(item[0])
        if name == "SET" and len(a) >= 2:
            opts = [o.upper() for o in a[2:]]
            expire: float | None = None
            if b"EX" in opts:
                seconds = int(a[2 + opts.index(b"EX") + 1])
                if seconds <= 0:
                    return b"-ERR invalid expire time in 'set' command\r\n"
                expire = now + seconds
            if b"NX" in opts and a[0] in self.data:
                return _bulk(None)
            self.data[a[0]] = (a[1], expire)
            return b"+OK\r\n"
        if name == "EXPIRE" and len(a) == 2:
            item = self.data.get(a[0])
            if item is None:
                return b":0\r\n"
            self.data[a[0]] = (item[0], now + int(a[1]))
            return b":1\r\n"
        if name == "DEL":
            n = sum(1 for k in a if self.data.pop(k, None) is not None)
            return b":%d\r\n" % n
        return b"-ERR unknown command or wrong number of arguments\r\n"


def _bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


def _line(f: socket.SocketIO | object) -> bytes:
    line = f.readline()  # type: ignore[attr-defined]
    if not line:
        raise _Closed
    return bytes(line).rstrip(b"\r\n")


def _read_command(f: object) -> list[bytes]:
    head = _line(f)
    if not head.startswith(b"*"):
        raise _Closed
    args = []
    for _ in range(int(head[1:])):
        size = _line(f)
        if not size.startswith(b"$"):
            raise _Closed
        n = int(size[1:])
        data = f.read(n + 2)  # type: ignore[attr-defined]
        if len(data) != n + 2:
            raise _Closed
        args.append(bytes(data[:n]))
    return args


@contextlib.contextmanager
def start_resp_server(cert: Path, key: Path, ca: Path, token: str) -> Iterator[RespServer]:
    """A TLS RESP server on 127.0.0.1 (free port) until the block ends."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(64)
    server = RespServer(port=listener.getsockname()[1], token=token, ca=ca)
    stopping = threading.Event()
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        authed = False
        with (
            contextlib.suppress(OSError, ssl.SSLError, _Closed, ValueError),
            ctx.wrap_socket(conn, server_side=True) as tls,
        ):
            conns.append(tls)
            f = tls.makefile("rwb")
            while not stopping.is_set():
                reply, authed = server.handle(_read_command(f), authed)
                f.write(reply)
                f.flush()
        with contextlib.suppress(OSError):
            conn.close()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()
        thread.join(timeout=5)
