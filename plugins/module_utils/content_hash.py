# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A content hash of files and directory trees: what an image pipeline compares to decide a rebuild.

Pure code (no Ansible): the digest covers each file's path relative to the root it was given
under, its bytes and whether it is executable, in a sorted order, so it changes exactly when a
file is added, removed, renamed, edited or made (non-)executable, and not with mtimes, the
checkout's location or the order the file system lists entries. Caches and build output
(``EXCLUDED``) are left out.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable

EXCLUDED: tuple[str, ...] = ("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".molecule")
CHUNK = 1 << 20


class ContentHashError(ValueError):
    """A path that cannot be hashed (missing, unreadable, not a file or directory)."""


def _excluded(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ContentHashError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def entries(root: str, label: str, exclude: Iterable[str] = EXCLUDED) -> list[tuple[str, str, bool]]:
    """(label/relative path, sha256 of the bytes, executable) of every file under ``root`` (or ``root`` itself)."""
    patterns = tuple(exclude)
    if os.path.isfile(root):
        return [(label, _file_digest(root), os.access(root, os.X_OK))]
    if not os.path.isdir(root):
        raise ContentHashError(f"{root} is neither a file nor a directory")
    found: list[tuple[str, str, bool]] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not _excluded(d, patterns)]
        for name in files:
            if _excluded(name, patterns):
                continue
            path = os.path.join(current, name)
            if not os.path.isfile(path):
                continue  # a dangling link or a socket: not content
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            found.append((f"{label}/{relative}", _file_digest(path), os.access(path, os.X_OK)))
    return found


def content_hash(roots: Iterable[tuple[str, str]], extra: Iterable[str] = (), exclude: Iterable[str] = EXCLUDED) -> str:
    """sha256 over (label, path) roots' files and ``extra`` strings (e.g. a source image id), order-independent.

    ``roots`` pairs a file system path with the label it is hashed under (so the digest does not
    depend on where the checkout lives); two roots with the same label are refused.
    """
    labels: set[str] = set()
    lines: list[str] = []
    for path, label in roots:
        if label in labels:
            raise ContentHashError(f"two inputs share the label {label!r}")
        labels.add(label)
        lines += [
            f"file {name} {sha} {'x' if executable else '-'}" for name, sha, executable in entries(path, label, exclude)
        ]
    lines += [f"value {value}" for value in extra]
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()
