"""The twin's certificate authority and the server certificates it issues (openssl, one place).

The CA stands in for RDS's CA bundle, the ALB's certificate chain and the site's own CA: one CA per
state dir that outlives a run (a golden image baked earlier ships it and must still verify later
rehearsals), server certificates issued for two days on every start. Every openssl failure raises
TwinError with openssl's own message.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from gearlift.twin.errors import TwinError

CA_DAYS = "90"
SERVER_DAYS = "2"
RENEW_WITHIN_S = 7 * 86400


def openssl(*args: str) -> None:
    """Run ``openssl args...``; a failure raises TwinError naming the subcommand and openssl's message."""
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TwinError(f"openssl {args[0]} failed: {(proc.stderr or proc.stdout).strip()}")


def ensure_ca(ca_dir: Path, common_name: str = "gearlift-twin-ca") -> bool:
    """ca.key / ca.crt in ``ca_dir`` (0700, the key 0600): made when missing or expiring within a week.

    Returns True when a new CA was made.
    """
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key, crt = ca_dir / "ca.key", ca_dir / "ca.crt"
    if key.exists() and crt.exists():
        check = subprocess.run(
            ["openssl", "x509", "-checkend", str(RENEW_WITHIN_S), "-noout", "-in", str(crt)],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            return False
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", CA_DAYS,
        "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(crt),
    )  # fmt: skip
    key.chmod(0o600)
    return True


def issue_certificate(ca_dir: Path, out_dir: Path, stem: str, common_name: str, alt_names: Sequence[str]) -> Path:
    """``<stem>.key`` / ``<stem>.crt`` in ``out_dir`` for ``common_name``, signed by the CA in ``ca_dir``.

    ``alt_names`` are subjectAltName entries as openssl spells them (``DNS:name``, ``IP:address``). The
    CA's certificate is copied beside them as ``ca.crt``; the key is 0600 (callers loosen it for a
    server that reads it as another user). Returns the certificate's path.
    """
    if not alt_names:
        raise TwinError(f"certificate {stem}: no subjectAltName given")
    out_dir.mkdir(parents=True, exist_ok=True)
    key, csr, crt = out_dir / f"{stem}.key", out_dir / f"{stem}.csr", out_dir / f"{stem}.crt"
    ext, serial = out_dir / f"{stem}.ext", out_dir / f"{stem}.srl"
    subject = f"/CN={common_name}"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=" + ",".join(alt_names) + "\n", encoding="utf-8")
    try:
        openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"), "-CAkey", str(ca_dir / "ca.key"),
            "-CAserial", str(serial), "-CAcreateserial", "-days", SERVER_DAYS, "-out", str(crt), "-extfile", str(ext),
        )  # fmt: skip
    finally:
        csr.unlink(missing_ok=True)
        serial.unlink(missing_ok=True)
    key.chmod(0o600)
    (out_dir / "ca.crt").write_bytes((ca_dir / "ca.crt").read_bytes())
    return crt
