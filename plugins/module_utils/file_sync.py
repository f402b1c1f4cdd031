# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of gearlift.platform.file_sync: copy the customers' uploaded design files from a local
upload directory to the shared EFS mount, re-runnably, while the shop keeps writing.

Functions take paths, never an AnsibleModule: walk and plan (which files to copy), copy (temp file
in the destination directory, fsync, times, rename), verify (sha256 of both sides) and the JSON
record. Nothing is ever deleted from the source or the destination, apart from the module's own
temp files (C(.gearlift-sync-*)). Runs on the managed host, so it stays within what Python 3.8
offers. Unit-tested in tests/unit/test_file_sync.py.
"""

from __future__ import annotations

import errno
import fnmatch
import grp
import hashlib
import json
import os
import pwd
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: Name prefix of the module's temp files (in the destination directory of each copy, and next to
#: the state file). Always excluded, whatever ``exclude`` says; stale ones in dest are removed.
TEMP_PREFIX = ".gearlift-sync-"
#: The app's in-flight temp files, and the module's own.
DEFAULT_EXCLUDES = (".*.tmp", ".upload-*", ".meta-*", TEMP_PREFIX + "*")
#: Directories the module creates get this mode unless ``dir_mode`` says otherwise.
DEFAULT_DIR_MODE = 0o750
SAMPLE_LIMIT = 20
MISMATCH_LIMIT = 100
ERROR_LIMIT = 100
_CHUNK = 1024 * 1024
_NS = 1_000_000_000
#: Errors that will hit every further copy too: stop the run instead of listing each file.
_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class SyncError(ValueError):
    """Bad input, or a condition that stops the whole run (full or read-only destination)."""


class FileChangedError(OSError):
    """The source file changed (size or mtime) while it was being copied."""


class ConflictError(OSError):
    """Something that is not a plain directory is in the way in the destination."""


# ------------------------------------------------------------------ input


def check_paths(src: str, dest: str, require_mount: bool = False) -> tuple[str, str]:
    """Both directories, resolved; raises SyncError for anything the run must not start with."""
    if not os.path.exists(src):
        raise SyncError(f"src {src} does not exist.")
    if not os.path.isdir(src):
        raise SyncError(f"src {src} is not a directory.")
    if not os.path.exists(dest):
        raise SyncError(
            f"dest {dest} does not exist. The module never creates it: mount the share there first "
            "(files written into an unmounted mount point would be hidden under the later mount)."
        )
    if not os.path.isdir(dest):
        raise SyncError(f"dest {dest} is not a directory.")
    real_src = os.path.realpath(src)
    real_dest = os.path.realpath(dest)
    if real_src == real_dest:
        raise SyncError(f"src {src} and dest {dest} are the same directory ({real_src}).")
    common = os.path.commonpath([real_src, real_dest])
    if common == real_src:
        raise SyncError(f"dest {dest} ({real_dest}) is inside src {src} ({real_src}).")
    if common == real_dest:
        raise SyncError(f"src {src} ({real_src}) is inside dest {dest} ({real_dest}).")
    if require_mount and not os.path.ismount(dest):
        raise SyncError(f"dest {dest} is not a mount point (require_mount): is the share mounted?")
    return real_src, real_dest


def parse_mode(value: Any, what: str = "mode") -> int | None:
    """An octal mode (C('0640'), C('640'), C('0o640') or an int as YAML reads 0640); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SyncError(f"{what} {value!r} is not an octal mode.")
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip().lower()
        if text.startswith("0o"):
            text = text[2:]
        if not text or any(c not in "01234567" for c in text):
            raise SyncError(f"{what} {value!r} is not an octal mode such as '0640' (symbolic modes are not supported).")
        mode = int(text, 8)
    if not 0 <= mode <= 0o7777:
        raise SyncError(f"{what} {value!r} is out of range (0000-7777).")
    return mode


def resolve_owner(owner: str | None, group: str | None) -> tuple[int, int]:
    """uid and gid for os.chown (-1: leave as created); names or numbers."""

    def lookup(name: str | None, by_name: Callable[[str], Any], kind: str) -> int:
        if name is None or name == "":
            return -1
        if name.isdigit():
            return int(name)
        try:
            return int(by_name(name)[2])
        except KeyError:
            raise SyncError(f"{kind} {name} does not exist on this host.") from None

    return lookup(owner, pwd.getpwnam, "owner"), lookup(group, grp.getgrnam, "group")


# ------------------------------------------------------------------ walk


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int

    @property
    def mtime_s(self) -> int:
        """mtime in whole seconds (destinations may keep less than nanoseconds)."""
        return self.mtime_ns // _NS


@dataclass
class Tree:
    """The regular files under a root, by relative path, and what was passed over."""

    files: dict[str, FileStat] = field(default_factory=dict)
    symlinks: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    excluded: int = 0
    vanished: int = 0
    #: The module's own temp files: relative path -> ctime (seconds).
    temp: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files.values())


def is_excluded(name: str, patterns: Iterable[str]) -> bool:
    """Whether a base name matches one of the fnmatch patterns (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def scan(root: str, exclude: Sequence[str] = DEFAULT_EXCLUDES) -> Tree:
    """Every regular file under ``root`` (os.scandir, symlinks never followed), excluded base names
    skipped; files and directories that vanish meanwhile are tolerated."""
    tree = Tree()
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            if not rel_dir:
                raise
            continue  # a directory removed during the walk
        except NotADirectoryError:
            continue  # replaced by something else during the walk
        except PermissionError as e:
            if not rel_dir:
                raise SyncError(f"cannot read {root}: {e.strerror}") from None
            tree.errors.append(f"{rel_dir}: {e.strerror}")
            continue
        subdirs = []
        for entry in entries:
            rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                tree.vanished += 1
                continue
            if stat.S_ISLNK(st.st_mode):
                tree.symlinks.append(rel)
            elif stat.S_ISDIR(st.st_mode):
                subdirs.append(rel)
            elif not stat.S_ISREG(st.st_mode):
                tree.special.append(rel)
            elif entry.name.startswith(TEMP_PREFIX):
                tree.temp[rel] = st.st_ctime
            elif is_excluded(entry.name, exclude):
                tree.excluded += 1
            else:
                tree.files[rel] = FileStat(st.st_size, st.st_mtime_ns)
        pending.extend(reversed(subdirs))
    return tree


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Action:
    rel: str
    size: int
    #: Size of the copy it replaces; None for a new file.
    dest_size: int | None
    reason: str  # new, size, mtime, checksum


@dataclass
class Plan:
    source: Tree
    dest: Tree
    copy: list[Action] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Source files whose destination path is taken by a directory, symlink or special file.
    conflicts: list[str] = field(default_factory=list)
    dest_only: list[str] = field(default_factory=list)
    #: The module's temp files in dest older than the run (an interrupted run's).
    stale_temp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    vanished: set[str] = field(default_factory=set)

    @property
    def copy_bytes(self) -> int:
        return sum(a.size for a in self.copy)


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's content (a symlink as last component is refused)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _dir_state(dest: str, rel_dir: str, cache: dict[str, str]) -> str:
    """``ok`` (a real directory), ``missing`` or ``conflict`` (a file or symlink in the way),
    for a directory of dest and every parent up to dest; symlinks are never followed."""
    if not rel_dir:
        return "ok"
    if rel_dir in cache:
        return cache[rel_dir]
    parent = _dir_state(dest, os.path.dirname(rel_dir), cache)
    if parent != "ok":
        state = parent
    else:
        try:
            st = os.lstat(os.path.join(dest, rel_dir))
        except FileNotFoundError:
            state = "missing"
        else:
            state = "ok" if stat.S_ISDIR(st.st_mode) else "conflict"
    cache[rel_dir] = state
    return state


def plan_sync(
    src: str,
    dest: str,
    exclude: Sequence[str] = DEFAULT_EXCLUDES,
    checksum: bool = False,
    run_started: float | None = None,
) -> Plan:
    """Which source files to copy: the copy is missing or differs in size or mtime (whole seconds),
    or - with ``checksum`` - in sha256. Reads only."""
    started = time.time() if run_started is None else run_started
    plan = Plan(source=scan(src, exclude), dest=scan(dest, exclude))
    plan.errors.extend(plan.source.errors)
    plan.errors.extend(f"dest {e}" for e in plan.dest.errors)
    plan.stale_temp = sorted(rel for rel, ctime in plan.dest.temp.items() if ctime < started)
    plan.dest_only = sorted(set(plan.dest.files) - set(plan.source.files))
    dirs: dict[str, str] = {}
    for rel, info in plan.source.files.items():
        state = _dir_state(dest, os.path.dirname(rel), dirs)
        if state == "conflict":
            plan.conflicts.append(rel)
            continue
        target = os.path.join(dest, rel)
        current = None
        if state == "ok":
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISREG(st.st_mode):
                    plan.conflicts.append(rel)
                    continue
                current = FileStat(st.st_size, st.st_mtime_ns)
        if current is None:
            plan.copy.append(Action(rel, info.size, None, "new"))
        elif current.size != info.size:
            plan.copy.append(Action(rel, info.size, current.size, "size"))
        elif current.mtime_s != info.mtime_s:
            plan.copy.append(Action(rel, info.size, current.size, "mtime"))
        elif checksum:
            try:
                src_digest = sha256_file(os.path.join(src, rel))
            except FileNotFoundError:
                plan.vanished.add(rel)
                continue
            except OSError as e:
                plan.errors.append(f"{rel}: {e.strerror}")
                continue
            try:
                same = sha256_file(target) == src_digest
            except FileNotFoundError:
                same = False
            except OSError as e:
                plan.errors.append(f"dest {rel}: {e.strerror}")
                continue
            if same:
                plan.unchanged.append(rel)
            else:
                plan.copy.append(Action(rel, info.size, current.size, "checksum"))
        else:
            plan.unchanged.append(rel)
    return plan


# ------------------------------------------------------------------ copy


def _copy_stream(src_fd: int, dst_fd: int) -> int:
    """Copy everything from one descriptor to the other; the byte count."""
    total = 0
    while True:
        chunk = os.read(src_fd, _CHUNK)
        if not chunk:
            return total
        view = memoryview(chunk)
        while view:
            written = os.write(dst_fd, view)
            view = view[written:]
        total += len(chunk)


def _discard(path: str) -> None:
    """Remove a temporary file of a failed write; it may already be gone."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system syncs directories
    finally:
        os.close(fd)


def make_dirs(dest: str, rel_dir: str, mode: int = DEFAULT_DIR_MODE, uid: int = -1, gid: int = -1) -> int:
    """Create the missing directories of ``rel_dir`` under dest (``mode``, owner); how many.
    Raises ConflictError when a file or symlink is in the way (never followed)."""
    created = 0
    path = dest
    for part in [p for p in rel_dir.split(os.sep) if p]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkdir(path, mode)
            except FileExistsError:  # another writer was quicker
                st = os.lstat(path)
            else:
                os.chmod(path, mode)  # mkdir's mode is masked by the umask
                if uid != -1 or gid != -1:
                    os.chown(path, uid, gid)
                created += 1
                continue
        if not stat.S_ISDIR(st.st_mode):
            raise ConflictError(errno.ENOTDIR, "not a directory in the destination", path)
    return created


def copy_file(src_path: str, dest_path: str, mode: int | None = None, uid: int = -1, gid: int = -1) -> int:
    """Copy one regular file atomically: a temp file (TEMP_PREFIX) in the destination directory,
    fsync, mode/owner, the source's times, then rename onto the final name - a reader never sees
    half a file. Raises FileChangedError if the source changed meanwhile (the temp file is removed),
    FileNotFoundError if it is gone. The bytes copied."""
    src_fd = os.open(src_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        before = os.fstat(src_fd)
        if not stat.S_ISREG(before.st_mode):
            raise FileChangedError(errno.EINVAL, "no longer a regular file", src_path)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(dest_path))
        try:
            try:
                copied = _copy_stream(src_fd, fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            after = os.fstat(src_fd)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or copied != after.st_size:
                raise FileChangedError(errno.EAGAIN, "changed while being copied", src_path)
            os.chmod(tmp, stat.S_IMODE(before.st_mode) if mode is None else mode)
            if uid != -1 or gid != -1:
                os.chown(tmp, uid, gid)
            os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.replace(tmp, dest_path)
        except BaseException:
            _discard(tmp)
            raise
    finally:
        os.close(src_fd)
    _fsync_dir(os.path.dirname(dest_path))
    return copied


# ------------------------------------------------------------------ verify


@dataclass
class Verification:
    verified: int = 0
    mismatched: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)


def verify_files(src: str, dest: str, rels: Iterable[str]) -> Verification:
    """Compare each source file with its destination copy by sha256. A missing, non-regular or
    different copy is a mismatch; a source file gone meanwhile is counted as vanished."""
    result = Verification()
    dirs: dict[str, str] = {}
    for rel in sorted(rels):
        try:
            src_digest = sha256_file(os.path.join(src, rel))
        except FileNotFoundError:
            result.vanished.append(rel)
            continue
        except OSError:
            result.mismatched.append(rel)
            continue
        target = os.path.join(dest, rel)
        try:
            ok = _dir_state(dest, os.path.dirname(rel), dirs) == "ok" and stat.S_ISREG(os.lstat(target).st_mode)
            same = ok and sha256_file(target) == src_digest
        except OSError:
            same = False
        if same:
            result.verified += 1
        else:
            result.mismatched.append(rel)
    return result


# ------------------------------------------------------------------ the run


@dataclass
class SyncResult:
    changed: bool = False
    copied: int = 0
    copied_bytes: int = 0
    unchanged: int = 0
    dest_only: int = 0
    vanished: int = 0
    excluded: int = 0
    skipped_symlinks: list[str] = field(default_factory=list)
    skipped_special: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: Changed again on the retry: not copied this run.
    unstable: list[str] = field(default_factory=list)
    removed_temp: int = 0
    verified: int = 0
    mismatched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)
    seconds: float = 0.0
    started: str = ""
    finished: str = ""
    check_mode: bool = False
    verify: bool = True
    #: Regular files and bytes in dest (not excluded) before and after the run.
    dest_before: tuple[int, int] = (0, 0)
    dest_after: tuple[int, int] = (0, 0)

    @property
    def failed(self) -> bool:
        """Errors, or (not in check mode) a verify that found a difference."""
        return bool(self.errors) or (self.verify and not self.check_mode and bool(self.mismatched))

    def message(self) -> str:
        parts = []
        if self.mismatched:
            first = ", ".join(self.mismatched[:5])
            more = f" and {len(self.mismatched) - 5} more" if len(self.mismatched) > 5 else ""
            parts.append(
                f"{len(self.mismatched)} file(s) missing or different in dest after the copy (sha256 verify): "
                f"{first}{more}"
            )
        if self.errors:
            first = "; ".join(self.errors[:5])
            more = f" and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
            parts.append(f"{len(self.errors)} error(s): {first}{more}")
        return ". ".join(parts) if parts else f"{self.copied} file(s) copied, {self.unchanged} unchanged"

    def module_result(self) -> dict[str, Any]:
        """The module's return values (lists capped)."""
        return {
            "changed": self.changed,
            "copied": self.copied,
            "copied_bytes": self.copied_bytes,
            "unchanged": self.unchanged,
            "dest_only": self.dest_only,
            "vanished": self.vanished,
            "excluded": self.excluded,
            "skipped_symlinks": list(self.skipped_symlinks),
            "skipped_special": list(self.skipped_special),
            "conflicts": self.conflicts[:MISMATCH_LIMIT],
            "unstable": self.unstable[:MISMATCH_LIMIT],
            "removed_temp": self.removed_temp,
            "verified": self.verified,
            "mismatched": self.mismatched[:MISMATCH_LIMIT],
            "mismatched_count": len(self.mismatched),
            "errors": self.errors[:ERROR_LIMIT],
            "seconds": self.seconds,
            "sample": list(self.sample),
        }

    def diff(self, dest: str) -> dict[str, str]:
        """Ansible's diff: dest's regular files before and after, as summary lines."""
        return {
            "before_header": dest,
            "after_header": dest,
            "before": f"{self.dest_before[0]} files, {self.dest_before[1]} bytes\n",
            "after": f"{self.dest_after[0]} files, {self.dest_after[1]} bytes\n",
        }


def _now_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def sync(
    src: str,
    dest: str,
    exclude: Sequence[str] = DEFAULT_EXCLUDES,
    checksum: bool = False,
    verify: bool = True,
    check_mode: bool = False,
    copy: bool = True,
    mode: int | None = None,
    dir_mode: int = DEFAULT_DIR_MODE,
    uid: int = -1,
    gid: int = -1,
) -> SyncResult:
    """One run: plan, remove stale temp files, copy, verify. In check mode it only reads: the
    counts say what would be copied, and verify checks the files that would not be copied.
    Without ``copy`` it only reads too (a verify-only run): nothing copied, every file verified."""
    started = time.time()
    clock = time.monotonic()
    plan = plan_sync(src, dest, exclude, checksum, started)
    result = SyncResult(
        started=_now_iso(started),
        check_mode=check_mode,
        verify=verify,
        unchanged=len(plan.unchanged),
        dest_only=len(plan.dest_only),
        excluded=plan.source.excluded,
        skipped_symlinks=list(plan.source.symlinks),
        skipped_special=list(plan.source.special),
        conflicts=list(plan.conflicts),
        errors=list(plan.errors),
        dest_before=(len(plan.dest.files), plan.dest.bytes),
    )
    vanished = set(plan.vanished)
    extra_vanished = plan.source.vanished
    copied: list[str] = []
    after_files, after_bytes = result.dest_before

    if not copy:
        pass  # verify only
    elif check_mode:
        result.removed_temp = len(plan.stale_temp)  # would remove
        for action in plan.copy:
            copied.append(action.rel)
            result.copied_bytes += action.size
            after_files += int(action.dest_size is None)
            after_bytes += action.size - (action.dest_size or 0)
    else:
        for rel in plan.stale_temp:
            try:
                os.unlink(os.path.join(dest, rel))
                result.removed_temp += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                result.errors.append(f"dest {rel}: cannot remove the stale temp file: {e.strerror}")
        for action in plan.copy:
            src_path = os.path.join(src, action.rel)
            dest_path = os.path.join(dest, action.rel)
            try:
                make_dirs(dest, os.path.dirname(action.rel), dir_mode, uid, gid)
                for attempt in (1, 2):
                    try:
                        size = copy_file(src_path, dest_path, mode, uid, gid)
                        break
                    except FileChangedError:
                        if attempt == 2:
                            raise
            except FileNotFoundError as e:
                if e.filename == src_path or not os.path.lexists(src_path):
                    vanished.add(action.rel)
                else:
                    result.errors.append(f"{action.rel}: {e.strerror}")
                continue
            except FileChangedError:
                result.unstable.append(action.rel)
                continue
            except ConflictError:
                result.conflicts.append(action.rel)
                continue
            except OSError as e:
                if e.errno in _FATAL_ERRNOS:
                    raise SyncError(f"copying {action.rel} to {dest}: {e.strerror}") from e
                result.errors.append(f"{action.rel}: {e.strerror or e}")
                continue
            copied.append(action.rel)
            result.copied_bytes += size
            after_files += int(action.dest_size is None)
            after_bytes += size - (action.dest_size or 0)

    result.copied = len(copied)
    result.changed = bool(copied)
    result.sample = copied[:SAMPLE_LIMIT]
    result.dest_after = (after_files, after_bytes)
    if verify:
        if check_mode and copy:
            to_verify: Iterable[str] = plan.unchanged
        else:
            to_verify = [rel for rel in plan.source.files if rel not in vanished]
        checked = verify_files(src, dest, to_verify)
        result.verified = checked.verified
        result.mismatched = checked.mismatched
        vanished.update(checked.vanished)
    result.vanished = extra_vanished + len(vanished)
    finished = time.time()
    result.finished = _now_iso(finished)
    result.seconds = round(time.monotonic() - clock, 3)
    return result


# ------------------------------------------------------------------ record


def record(result: SyncResult, src: str, dest: str) -> dict[str, Any]:
    """The state file's content: counts, bytes, times and the full list of mismatches - paths
    and numbers only, never file contents."""
    return {
        "version": 1,
        "src": src,
        "dest": dest,
        "started": result.started,
        "finished": result.finished,
        "seconds": result.seconds,
        "check_mode": result.check_mode,
        "failed": result.failed,
        "copied": result.copied,
        "copied_bytes": result.copied_bytes,
        "unchanged": result.unchanged,
        "dest_only": result.dest_only,
        "vanished": result.vanished,
        "excluded": result.excluded,
        "removed_temp": result.removed_temp,
        "verify": result.verify,
        "verified": result.verified,
        "mismatched_count": len(result.mismatched),
        "mismatched": list(result.mismatched),
        "skipped_symlinks": list(result.skipped_symlinks),
        "skipped_special": list(result.skipped_special),
        "conflicts": list(result.conflicts),
        "unstable": list(result.unstable),
        "errors": list(result.errors),
        "dest_files": result.dest_after[0],
        "dest_bytes": result.dest_after[1],
    }


def write_record(path: str, data: Mapping[str, Any]) -> None:
    """Write JSON atomically: a temp file next to ``path`` (TEMP_PREFIX), fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(directory)
