"""A throwaway MariaDB server from the Debian packages, for tests (loopback only).

Started with its own datadir under a short temporary path, real users and passwords,
optionally TLS from a throwaway CA; stopped and removed by the caller's fixture.
"""

from __future__ import annotations

import contextlib
import getpass
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"


def which(name: str) -> str | None:
    # mariadbd and friends live in /usr/sbin, which is not always on PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


MARIADBD = which("mariadbd")
INSTALL_DB = which("mariadb-install-db")
MARIADB_CLI = which("mariadb")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.2) -> None:
    """Poll `check` until it is true; bounded in time and in attempts."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        if check():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclass
class TlsFiles:
    ca: Path  # CA that signed the server certificate
    other_ca: Path  # an unrelated CA: verification against it must fail
    cert: Path
    key: Path
    wrong_host_cert: Path  # same CA and key, but issued for another address


def make_tls(d: Path) -> TlsFiles | None:
    """A throwaway CA and a server certificate for IP 127.0.0.1 (None without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], capture_output=True, timeout=60, check=True)

    for name in ("ca", "other-ca"):
        run(
            "req",
            "-x509",
            *ec,
            "-days",
            "2",
            "-subj",
            f"/CN=gearlift test {name}",
            *ca_ext,
            "-keyout",
            str(d / f"{name}.key"),
            "-out",
            str(d / f"{name}.pem"),
        )
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", str(d / "server.key"))
    for name, addr in (("server", LOOPBACK), ("wrong-host", "127.0.0.2")):
        run("req", "-new", "-key", str(d / "server.key"), "-subj", f"/CN={addr}", "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(
            f"subjectAltName=IP:{addr}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        run(
            "x509",
            "-req",
            "-in",
            str(d / f"{name}.csr"),
            "-CA",
            str(d / "ca.pem"),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(d / f"{name}.ext"),
            "-out",
            str(d / f"{name}.pem"),
        )
    return TlsFiles(
        ca=d / "ca.pem",
        other_ca=d / "other-ca.pem",
        cert=d / "server.pem",
        key=d / "server.key",
        wrong_host_cert=d / "wrong-host.pem",
    )


@dataclass
class MariaDB:
    port: int
    socket: Path
    password: str
    proc: subprocess.Popen[bytes]
    tls: TlsFiles | None
    datadir: Path

    def sql(self, statements: str, database: str | None = None) -> list[list[str]]:
        """Run SQL as root over the unix socket; return rows (tab-separated, no header)."""
        assert MARIADB_CLI is not None
        cmd = [MARIADB_CLI, "--no-defaults", "--user=root", f"--socket={self.socket}"]
        cmd += ["--batch", "--skip-column-names", "--raw"]
        if database:
            cmd.append(database)
        out = subprocess.run(cmd, input=statements, capture_output=True, text=True, timeout=30, check=False)
        assert out.returncode == 0, out.stderr
        return [line.split("\t") for line in out.stdout.splitlines()]


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@contextlib.contextmanager
def start_mariadb(workdir: Path, *extra_args: str, with_tls: bool = True) -> Iterator[MariaDB]:
    """Install a datadir under workdir and run mariadbd on loopback; stop it on exit."""
    if MARIADBD is None or INSTALL_DB is None or MARIADB_CLI is None:
        pytest.skip("needs the MariaDB server package (mariadbd, mariadb-install-db, mariadb)")
    workdir.mkdir(parents=True, exist_ok=True)
    datadir = workdir / "data"
    sock = workdir / "mysqld.sock"
    port = free_port()
    user = getpass.getuser()
    tuning = ["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"]
    install = subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--user={user}",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *tuning,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    err_log = workdir / "mariadbd.err"
    tls = make_tls(workdir / "tls") if with_tls else None
    tls_args = [f"--ssl-ca={tls.ca}", f"--ssl-cert={tls.cert}", f"--ssl-key={tls.key}"] if tls else []
    proc = subprocess.Popen(
        [
            MARIADBD,
            "--no-defaults",
            f"--user={user}",
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--port={port}",
            f"--bind-address={LOOPBACK}",
            f"--pid-file={workdir / 'mariadbd.pid'}",
            f"--log-error={err_log}",
            "--skip-name-resolve",
            "--max-connections=30",
            *tuning,
            *tls_args,
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    password = f"gl#{secrets.token_urlsafe(16)}$"
    db = MariaDB(port=port, socket=sock, password=password, proc=proc, tls=tls, datadir=datadir)
    try:

        def up() -> bool:
            assert proc.poll() is None, err_log.read_text(errors="replace")
            if not sock.exists():
                return False
            ping = subprocess.run(
                [MARIADB_CLI, "--no-defaults", "-uroot", f"--socket={sock}", "-e", "SELECT 1"],
                capture_output=True,
                timeout=10,
                check=False,
            )
            return ping.returncode == 0

        wait_for("mariadbd to accept connections", up, timeout=60, interval=0.5)
        yield db
    finally:
        stop(proc, timeout=30)
