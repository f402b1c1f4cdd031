# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A relay that runs commands in a container through one long-lived ``podman exec -i``.

Every ``podman exec`` starts the podman client, conmon and ``runc exec``: 0.26-0.29 s per command
on the project's loaded 2-core test machine, before the command starts. The relay pays that once
per container and ansible-playbook run, like SSH's ControlPersist:

* The relay daemon (``main`` below, started by the gearlift.platform.podman connection as
  ``python podman_relay.py SOCKET IDLE PODMAN-ARGV...``) runs ``podman exec -i <container> python3
  -c SERVER`` and serves requests on a unix socket. It outlives the connection objects (Ansible
  makes one per task, in a forked worker) and exits when it has been idle for IDLE seconds, when
  its socket is removed (the socket lives in ansible-playbook's local temporary directory, which
  is removed when the run ends) or when the exec ends (the container stopped).
* ``SERVER`` runs in the container. It starts each command with ``subprocess`` as a child of the
  exec'd process, so the command has what ``podman exec`` gives it (namespaces, cgroup, user,
  capabilities, environment, working directory); its standard input is the data sent or
  /dev/null, as with ``podman exec`` without and with ``--interactive``. Commands run
  concurrently; each answer carries the command's exit status (128+N for signal N) and output.
* ``run`` is the client side. It answers None whenever the command was certainly not handed to
  the container (no relay, it could not start, it is gone), and the connection then runs the
  command with a one-shot ``podman exec``. Once a command was handed over, a lost relay is an
  error, never a second run.

The wire format on both hops: frames of an 8-byte big-endian length and the bytes; a request is
a JSON header frame (argv, whether standard input follows) and the data frame.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

# Runs in the container under its python3 (3.6 or later), started by podman exec -i.
SERVER = r"""
import json, os, struct, subprocess, sys, threading
inp, out = sys.stdin.buffer, sys.stdout.buffer
lock = threading.Lock()
# The environment podman exec gave this process, before Python's locale coercion (PEP 538) set
# LC_CTYPE in os.environ: commands get what a podman exec of their own would give them.
with open('/proc/self/environ', 'rb') as f:
    env = dict(item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item)
def read(n):
    data = b''
    while len(data) < n:
        chunk = inp.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
def frame():
    return read(struct.unpack('>Q', read(8))[0])
def send(*parts):
    with lock:
        for part in parts:
            out.write(struct.pack('>Q', len(part)) + part)
        out.flush()
def run(ident, argv, data):
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)
    except OSError as exc:
        rc, stdout, stderr = 127 if isinstance(exc, FileNotFoundError) else 126, b'', str(exc).encode()
    else:
        stdout, stderr = proc.communicate(data)
        rc = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    send(json.dumps({'id': ident, 'rc': rc}).encode(), stdout, stderr)
send(json.dumps({'ready': os.getpid()}).encode())
while True:
    try:
        head = json.loads(frame())
        data = frame() if head['stdin'] else None
    except EOFError:
        break
    threading.Thread(target=run, args=(head['id'], head['argv'], data), daemon=True).start()
"""

# Seconds the relay may take to start (podman exec and python3 under load).
START_TIMEOUT = 60.0
# Unix socket paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 100


class RelayLost(Exception):
    """The relay ended after a command was handed to it: the command may or may not have run."""


def _pack(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> bytes:
    return _recv_exact(sock, struct.unpack(">Q", _recv_exact(sock, 8))[0])


def socket_path(directory: str, podman_argv: list[str]) -> str:
    """The relay's socket for one podman command prefix (executable, extra args, exec options, container)."""
    digest = hashlib.sha256("\0".join(podman_argv).encode()).hexdigest()[:20]
    return os.path.join(directory, "podman-relay-%s.sock" % digest)


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _start(path: str, podman_argv: list[str], idle: float) -> socket.socket | None:
    """Connect to the relay at path, starting it first if none runs; None when it cannot start."""
    with open(path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sock = _connect(path)
        if sock is not None:
            return sock
        daemon = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), path, str(idle), *podman_argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(path):
                return _connect(path)
            if daemon.poll() is not None:
                return None
            time.sleep(0.02)
        daemon.kill()
        daemon.wait()
        return None


def run(
    directory: str, podman_argv: list[str], argv: list[str], in_data: bytes | None, idle: float
) -> tuple[int, bytes, bytes] | None:
    """Run argv through the relay for podman_argv; None when it was not handed over (run it yourself)."""
    path = socket_path(directory, podman_argv)
    if len(path) > MAX_SOCKET_PATH or not os.path.isdir(directory):
        return None
    sock = _connect(path) or _start(path, podman_argv, idle)
    if sock is None:
        return None
    with sock:
        head = json.dumps({"argv": argv, "stdin": in_data is not None}).encode()
        try:
            sock.sendall(_pack(head) + (b"" if in_data is None else _pack(in_data)))
            # The relay says "sent" before it hands the command to the container.
            state = json.loads(_recv_frame(sock))
        except (OSError, EOFError, ValueError):
            return None
        if not state.get("sent"):
            return None
        try:
            answer = json.loads(_recv_frame(sock))
            if "rc" not in answer:
                raise RelayLost(answer.get("error", "the relay ended"))
            return answer["rc"], _recv_frame(sock), _recv_frame(sock)
        except (OSError, EOFError, ValueError) as exc:
            raise RelayLost(str(exc)) from exc


def stop(directory: str, podman_argv: list[str]) -> None:
    """Make the relay for podman_argv exit (its socket is removed; it notices within a second)."""
    path = socket_path(directory, podman_argv)
    try:
        os.unlink(path)
    except OSError:
        pass


class _Daemon:
    """The controller side of one relay: a podman exec -i running SERVER, and the socket."""

    def __init__(self, path: str, idle: float, podman_argv: list[str]) -> None:
        self.path = path
        self.idle = idle
        self.podman_argv = podman_argv
        self.lock = threading.Lock()  # ids, pending, active, alive
        self.write_lock = threading.Lock()
        self.pending: dict[int, list] = {}
        self.next_id = 0
        self.active = 0
        self.last = time.monotonic()
        self.alive = True
        self.proc: subprocess.Popen | None = None

    def _read(self, size: int) -> bytes:
        data = self.proc.stdout.read(size)
        if len(data) != size:
            raise EOFError
        return data

    def _frame(self) -> bytes:
        return self._read(struct.unpack(">Q", self._read(8))[0])

    def start(self) -> bool:
        self.proc = subprocess.Popen(
            [*self.podman_argv, "python3", "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        ready = select.select([self.proc.stdout], [], [], START_TIMEOUT)[0]
        try:
            return bool(ready) and "ready" in json.loads(self._frame())
        except (EOFError, ValueError):
            return False

    def reader(self) -> None:
        """Hand each answer from the container to the request waiting for it."""
        try:
            while True:
                head = json.loads(self._frame())
                stdout, stderr = self._frame(), self._frame()
                with self.lock:
                    slot = self.pending.pop(head["id"], None)
                if slot is not None:
                    slot[1] = (head["rc"], stdout, stderr)
                    slot[0].set()
        except (EOFError, ValueError, OSError):
            pass
        with self.lock:
            self.alive = False
            lost = list(self.pending.values())
            self.pending.clear()
        for slot in lost:
            slot[0].set()

    def serve(self, client: socket.socket) -> None:
        with client:
            try:
                head = json.loads(_recv_frame(client))
                data = _recv_frame(client) if head["stdin"] else None
            except (OSError, EOFError, ValueError):
                return
            slot: list = [threading.Event(), None]
            with self.lock:
                if not self.alive:
                    return  # closed without "sent": the client runs the command itself
                ident = self.next_id
                self.next_id += 1
                self.pending[ident] = slot
                self.active += 1
            try:
                try:
                    client.sendall(_pack(json.dumps({"sent": True}).encode()))
                except OSError:
                    with self.lock:
                        self.pending.pop(ident, None)
                    return
                request = json.dumps({"id": ident, "argv": head["argv"], "stdin": data is not None}).encode()
                try:
                    with self.write_lock:
                        self.proc.stdin.write(_pack(request) + (b"" if data is None else _pack(data)))
                        self.proc.stdin.flush()
                except OSError:
                    pass  # the reader sees the exec end and wakes the slot
                slot[0].wait()
                try:
                    result = slot[1]
                    if not isinstance(result, tuple):
                        client.sendall(_pack(json.dumps({"error": "the podman exec relay ended"}).encode()))
                    else:
                        client.sendall(
                            _pack(json.dumps({"rc": result[0]}).encode()) + _pack(result[1]) + _pack(result[2])
                        )
                except OSError:
                    pass  # the task is gone (timeout, interrupt); so is its answer
            finally:
                with self.lock:
                    self.active -= 1
                    self.last = time.monotonic()

    def run(self) -> int:
        if not self.start():
            self.stop_exec()
            return 1
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = "%s.%d" % (self.path, os.getpid())
        listener.bind(staging)
        listener.listen(64)
        os.rename(staging, self.path)  # clients see the socket only once the relay is ready
        inode = os.stat(self.path).st_ino
        listener.settimeout(0.5)
        threading.Thread(target=self.reader, daemon=True).start()
        while True:
            try:
                client = listener.accept()[0]
            except socket.timeout:
                client = None
            if client is not None:
                client.settimeout(None)
                threading.Thread(target=self.serve, args=(client,), daemon=True).start()
                continue
            with self.lock:
                idle = self.active == 0 and time.monotonic() - self.last > self.idle
                if not self.alive or idle or not _same_socket(self.path, inode):
                    self.alive = False  # new requests now get no "sent": they run elsewhere
                    break
        if _same_socket(self.path, inode):
            os.unlink(self.path)
        listener.close()
        while True:
            with self.lock:
                if self.active == 0:
                    break
            time.sleep(0.05)
        self.stop_exec()
        return 0

    def stop_exec(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _same_socket(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def main(args: list[str]) -> int:
    """python podman_relay.py SOCKET IDLE-SECONDS PODMAN-ARGV..."""
    path, idle, podman_argv = args[0], float(args[1]), args[2:]
    return _Daemon(path, idle, podman_argv).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
