"""A syslog sink on loopback: datagrams in, lines appended to a file, bounded in size.

HAProxy (the ALB stand-in) runs daemonised, its standard output closed, so its request log has
nowhere to go unless something listens: this is that listener. One sink per log file; the file
is what the load balancer's access log is to an ALB (a line per request with the chosen target,
timers and termination state), kept under the twin's state dir for reading after a run.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

#: A file the sink stops growing at (a note line says so): a long run cannot fill the disk.
MAX_BYTES = 64 * 1024 * 1024


def _strip_priority(data: bytes) -> bytes:
    """'<134>message' -> 'message' (HAProxy's raw format carries no header; rfc3164 would)."""
    if data.startswith(b"<"):
        end = data.find(b">", 1, 6)
        if end > 0 and data[1:end].isdigit():
            return data[end + 1 :]
    return data


class LineSink:
    """UDP on 127.0.0.1 (a free port), each datagram one line of ``path``; a thread of its own."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.5)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"logsink-{path.name}", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LineSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        written = self.path.stat().st_size if self.path.exists() else 0
        with self.path.open("ab", buffering=0) as out:
            while not self._stop.is_set():
                try:
                    data = self._sock.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return  # closed
                if written >= self.max_bytes:
                    continue
                line = _strip_priority(data).rstrip(b"\n") + b"\n"
                if written + len(line) >= self.max_bytes:
                    line = f"# log sink: {self.max_bytes} bytes reached, later lines dropped\n".encode()
                    written = self.max_bytes
                else:
                    written += len(line)
                out.write(line)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._sock.close()
