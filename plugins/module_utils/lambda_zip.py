# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.lambda_zip``: a Lambda deployment package, byte for byte reproducible.

Lambda compares a function's code by its SHA-256 (``CodeSha256``); a zip that differs only in
entry dates or order would make every playbook run update the function. Entries are sorted, dated
1980-01-01, mode 0644, deflated at a fixed level; Python packages vendored from the running
interpreter leave their byte code (``__pycache__``, ``*.pyc``) behind.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from typing import Iterable, List, Tuple

EPOCH = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = frozenset({"__pycache__"})
SKIP_SUFFIXES = (".pyc", ".pyo")


def check_arcname(name: str) -> str:
    """A relative, normalised archive path (no '..', no absolute path, no backslash)."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad path inside the package: {name!r}")
    return name


def package_entries(directory: str, top: str) -> List[Tuple[str, str]]:
    """(archive name, file path) of every file of a Python package directory, under ``top/``."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        rel = os.path.relpath(root, directory)
        for name in sorted(files):
            if name.endswith(SKIP_SUFFIXES):
                continue
            arc = top if rel == "." else top + "/" + rel.replace(os.sep, "/")
            out.append((arc + "/" + name, os.path.join(root, name)))
    return out


def build_zip(entries: Iterable[Tuple[str, bytes]]) -> bytes:
    """The zip of (archive name, content) entries, reproducible; duplicate names refused."""
    seen = {}
    for name, data in entries:
        name = check_arcname(name)
        if name in seen:
            raise ValueError(f"two files for {name!r} in the package")
        seen[name] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(seen):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            zf.writestr(info, seen[name], compresslevel=9)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256 of a package: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
