"""gearlift.platform.file_sync: its pure logic (module_utils/file_sync.py) on real trees under tmp_path,
and the module's main() through the harness."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from ansible_collections.gearlift.platform.plugins.module_utils import file_sync as fs
from ansible_collections.gearlift.platform.plugins.modules import file_sync as file_sync_module

from .module_harness import run_main

OLD = 1_700_000_000  # a fixed mtime in the past (whole seconds)


def write(path: Path, content: bytes | str, mtime: int | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every entry under root: content (or link target) and mtime, without following symlinks."""
    out: dict[str, tuple[bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            out[rel] = (os.readlink(path), st.st_mtime_ns)
        elif path.is_file():
            out[rel] = (path.read_bytes(), st.st_mtime_ns)
        else:
            out[rel] = ("<dir>", 0)
    return out


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "uploads"
    dest = tmp_path / "efs"
    write(src / "customer-1" / "logo.svg", "<svg>one</svg>")
    write(src / "customer-1" / "front.png", b"\x89PNG" + bytes(range(256)) * 40)
    write(src / "customer-2" / "deep" / "art.pdf", b"%PDF-1.7 " + b"x" * 5000)
    write(src / "readme.txt", "top level")
    dest.mkdir()
    return src, dest


SOURCE_FILES = ["customer-1/front.png", "customer-1/logo.svg", "customer-2/deep/art.pdf", "readme.txt"]


def source_bytes(src: Path) -> int:
    return sum((src / rel).stat().st_size for rel in SOURCE_FILES)


# ------------------------------------------------------------------ pure logic


def test_first_run_copies_everything_and_verify_passes(trees):
    src, dest = trees
    before = snapshot(src)
    result = fs.sync(str(src), str(dest))
    assert not result.failed, result.message()
    assert result.changed
    assert result.copied == 4
    assert result.copied_bytes == source_bytes(src)
    assert result.unchanged == 0
    assert result.verified == 4
    assert result.mismatched == []
    assert sorted(result.sample) == SOURCE_FILES
    for rel in SOURCE_FILES:
        copy, orig = dest / rel, src / rel
        assert copy.read_bytes() == orig.read_bytes()
        assert copy.stat().st_mtime_ns == orig.stat().st_mtime_ns
    # directories created with 0750, no temp files left behind
    assert (dest / "customer-2" / "deep").stat().st_mode & 0o7777 == 0o750
    assert not [p for p in dest.rglob(".gearlift-sync-*")]
    assert snapshot(src) == before  # nothing in src touched


def test_second_run_copies_nothing(trees):
    src, dest = trees
    fs.sync(str(src), str(dest))
    copies = snapshot(dest)
    again = fs.sync(str(src), str(dest))
    assert not again.changed
    assert again.copied == 0
    assert again.copied_bytes == 0
    assert again.unchanged == 4
    assert again.verified == 4
    assert snapshot(dest) == copies


def test_new_and_modified_files_are_copied_next_run(trees):
    src, dest = trees
    fs.sync(str(src), str(dest))
    write(src / "customer-3" / "new.svg", "<svg>new</svg>")
    write(src / "readme.txt", "top level, edited", mtime=OLD + 60)  # other size and mtime
    write(src / "customer-1" / "logo.svg", "<svg>ONE</svg>", mtime=OLD + 5)  # same size, other mtime
    result = fs.sync(str(src), str(dest))
    assert result.changed
    assert sorted(result.sample) == ["customer-1/logo.svg", "customer-3/new.svg", "readme.txt"]
    assert result.unchanged == 2
    assert (dest / "readme.txt").read_text() == "top level, edited"
    assert (dest / "customer-1" / "logo.svg").read_text() == "<svg>ONE</svg>"
    assert (dest / "customer-3" / "new.svg").read_text() == "<svg>new</svg>"
    assert not result.failed


def test_excluded_temp_files_are_not_copied(trees):
    src, dest = trees
    write(src / "customer-1" / ".logo.svg.tmp", "half")
    write(src / ".upload-8f3a", "in flight")
    write(src / "customer-2" / ".meta-art", "meta")
    write(src / "customer-2" / ".gearlift-sync-abc", "someone else's temp")
    result = fs.sync(str(src), str(dest))
    assert result.copied == 4
    assert result.excluded == 3
    names = {p.name for p in dest.rglob("*")}
    assert not {".logo.svg.tmp", ".upload-8f3a", ".meta-art", ".gearlift-sync-abc"} & names
    # a custom list replaces the defaults, but the module's own prefix stays excluded
    custom = fs.sync(str(src), str(dest), exclude=["*.pdf"])
    assert sorted(custom.sample) == [".upload-8f3a", "customer-1/.logo.svg.tmp", "customer-2/.meta-art"]
    assert not (dest / "customer-2" / ".gearlift-sync-abc").exists()


def test_dest_only_files_are_kept_and_nothing_is_deleted_from_src(trees):
    src, dest = trees
    fs.sync(str(src), str(dest))
    write(dest / "customer-9" / "from-new-fleet.svg", "new fleet")
    write(dest / "readme-new.txt", "new fleet too")
    write(dest / ".upload-inflight", "the new fleet's temp file")  # excluded: not counted
    src_before = snapshot(src)
    result = fs.sync(str(src), str(dest))
    assert result.dest_only == 2
    assert not result.changed
    assert (dest / "customer-9" / "from-new-fleet.svg").read_text() == "new fleet"
    assert (dest / "readme-new.txt").exists()
    assert (dest / ".upload-inflight").exists()
    assert snapshot(src) == src_before
    # dest_only files are not part of verify
    assert result.verified == 4


def test_verify_catches_corrupt_copy_and_checksum_repairs_it(trees):
    src, dest = trees
    fs.sync(str(src), str(dest))
    copy = dest / "customer-1" / "logo.svg"
    mtime = copy.stat().st_mtime_ns
    copy.write_text("<svg>bad</svg>")  # same length
    os.utime(copy, ns=(mtime, mtime))
    quick = fs.sync(str(src), str(dest))
    assert quick.copied == 0  # size and mtime match: not copied
    assert quick.mismatched == ["customer-1/logo.svg"]
    assert quick.verified == 3
    assert quick.failed
    assert "1 file(s) missing or different" in quick.message()
    assert "customer-1/logo.svg" in quick.message()

    repaired = fs.sync(str(src), str(dest), checksum=True)
    assert repaired.copied == 1
    assert repaired.sample == ["customer-1/logo.svg"]
    assert repaired.mismatched == []
    assert not repaired.failed
    assert copy.read_text() == "<svg>one</svg>"


def test_verify_off_reports_nothing(trees):
    src, dest = trees
    result = fs.sync(str(src), str(dest), verify=False)
    assert result.copied == 4
    assert result.verified == 0
    assert not result.failed


def test_copy_false_only_verifies(trees):
    src, dest = trees
    write(dest / "readme.txt", "top level")  # the only copy so far, same content
    write(dest / ".gearlift-sync-old", "leftover")
    before = snapshot(dest)
    result = fs.sync(str(src), str(dest), copy=False)
    assert not result.changed
    assert result.copied == 0
    assert result.removed_temp == 0
    assert result.verified == 1
    assert sorted(result.mismatched) == ["customer-1/front.png", "customer-1/logo.svg", "customer-2/deep/art.pdf"]
    assert result.failed
    assert snapshot(dest) == before


def test_check_mode_changes_nothing_and_reports_counts(trees):
    src, dest = trees
    write(dest / "customer-1" / ".gearlift-sync-old", "leftover", mtime=OLD)
    before = snapshot(dest)
    result = fs.sync(str(src), str(dest), check_mode=True)
    assert result.changed
    assert result.copied == 4
    assert result.copied_bytes == source_bytes(src)
    assert sorted(result.sample) == SOURCE_FILES
    assert result.removed_temp == 1  # would remove
    assert not result.failed
    assert result.diff(str(dest))["after"] == f"4 files, {source_bytes(src)} bytes\n"
    assert result.diff(str(dest))["before"] == "0 files, 0 bytes\n"
    assert snapshot(dest) == before


def test_check_mode_sample_is_capped(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    for i in range(30):
        write(src / f"f{i:02}.bin", str(i))
    dest.mkdir()
    result = fs.sync(str(src), str(dest), check_mode=True)
    assert result.copied == 30
    assert len(result.sample) == 20
    assert not list(dest.iterdir())


def test_symlinks_and_special_files_are_skipped(trees, tmp_path):
    src, dest = trees
    outside = write(tmp_path / "secret.txt", "outside src")
    (src / "customer-1" / "link.svg").symlink_to(src / "customer-1" / "logo.svg")
    (src / "escape").symlink_to(tmp_path)  # a directory symlink, never followed
    (src / "secret").symlink_to(outside)
    os.mkfifo(src / "customer-2" / "pipe")
    result = fs.sync(str(src), str(dest))
    assert sorted(result.skipped_symlinks) == ["customer-1/link.svg", "escape", "secret"]
    assert result.skipped_special == ["customer-2/pipe"]
    assert result.copied == 4
    for name in ("customer-1/link.svg", "escape", "secret", "customer-2/pipe"):
        assert not os.path.lexists(dest / name)


def test_dest_symlink_in_the_way_is_a_conflict_not_followed(trees, tmp_path):
    src, dest = trees
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "customer-1").symlink_to(elsewhere)  # never written through
    (dest / "readme.txt").mkdir()  # a directory where a file goes
    result = fs.sync(str(src), str(dest))
    assert sorted(result.conflicts) == ["customer-1/front.png", "customer-1/logo.svg", "readme.txt"]
    assert result.copied == 1
    assert list(elsewhere.iterdir()) == []
    assert sorted(result.mismatched) == ["customer-1/front.png", "customer-1/logo.svg", "readme.txt"]
    assert result.failed


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda s, d: (s / "missing", d), "does not exist"),
        (lambda s, d: (s / "readme.txt", d), "is not a directory"),
        (lambda s, d: (s, d / "missing"), "never creates it"),
        (lambda s, d: (s, write(d / "file", "x")), "dest .* is not a directory"),
        (lambda s, d: (s, s), "are the same directory"),
        (lambda s, d: (s, s / "customer-1"), "is inside src"),
        (lambda s, d: (s / "customer-1", s), "is inside dest"),
    ],
)
def test_bad_inputs_are_refused(trees, make, message):
    src, dest = trees
    bad_src, bad_dest = make(src, dest)
    with pytest.raises(fs.SyncError, match=message):
        fs.check_paths(str(bad_src), str(bad_dest))


def test_require_mount_and_modes(trees):
    src, dest = trees
    with pytest.raises(fs.SyncError, match="not a mount point"):
        fs.check_paths(str(src), str(dest), require_mount=True)
    if os.path.ismount("/proc"):  # a mount point that does not hold src (only checked, never written)
        assert fs.check_paths(str(src), "/proc", require_mount=True) == (str(src.resolve()), "/proc")
    with pytest.raises(fs.SyncError, match="is inside dest"):
        fs.check_paths(str(src), "/")
    assert fs.parse_mode("0640") == 0o640
    assert fs.parse_mode("0o750") == 0o750
    assert fs.parse_mode(0o640) == 0o640
    assert fs.parse_mode(None) is None
    with pytest.raises(fs.SyncError, match="symbolic modes are not supported"):
        fs.parse_mode("u=rw,g=r")
    with pytest.raises(fs.SyncError, match="does not exist on this host"):
        fs.resolve_owner("no-such-user-gearlift", None)
    assert fs.resolve_owner(None, None) == (-1, -1)
    assert fs.resolve_owner(str(os.getuid()), str(os.getgid())) == (os.getuid(), os.getgid())


def test_mode_owner_and_dir_mode_apply_to_copies(trees):
    src, dest = trees
    result = fs.sync(str(src), str(dest), mode=0o640, dir_mode=0o700, uid=os.getuid(), gid=os.getgid())
    assert result.copied == 4
    assert (dest / "readme.txt").stat().st_mode & 0o7777 == 0o640
    assert (dest / "customer-1").stat().st_mode & 0o7777 == 0o700
    assert (dest / "readme.txt").stat().st_uid == os.getuid()


def test_interrupted_copy_leftovers_are_cleaned(trees):
    src, dest = trees
    fs.sync(str(src), str(dest))
    stale = write(dest / "customer-1" / ".gearlift-sync-k2j3h4", "half a copy")
    stale_top = write(dest / ".gearlift-sync-zz", "another", mtime=None)
    time.sleep(0.05)
    result = fs.sync(str(src), str(dest))
    assert result.removed_temp == 2
    assert not stale.exists()
    assert not stale_top.exists()
    assert result.dest_only == 0  # the temp files were never counted as the new fleet's


def test_vanished_and_changing_files(trees, monkeypatch):
    src, dest = trees
    real_copy_stream = fs._copy_stream
    calls = {"front": 0, "art": 0}

    def racing(src_fd, dst_fd):
        name = os.readlink(f"/proc/self/fd/{src_fd}")
        if name.endswith("readme.txt"):
            os.unlink(name)  # gone after being opened: still copied from the open descriptor
        if name.endswith("front.png"):
            calls["front"] += 1
            if calls["front"] == 1:  # changes once: the retry copies it
                with open(name, "ab") as f:
                    f.write(b"more")
        if name.endswith("art.pdf"):
            calls["art"] += 1  # keeps changing: reported
            with open(name, "ab") as f:
                f.write(b"more")
        return real_copy_stream(src_fd, dst_fd)

    monkeypatch.setattr(fs, "_copy_stream", racing)
    (src / "customer-1" / "logo.svg").unlink()
    plan = fs.plan_sync(str(src), str(dest))
    assert len(plan.copy) == 3
    result = fs.sync(str(src), str(dest))
    assert calls == {"front": 2, "art": 2}
    assert result.unstable == ["customer-2/deep/art.pdf"]
    assert (dest / "customer-1" / "front.png").read_bytes() == (src / "customer-1" / "front.png").read_bytes()
    assert not (dest / "customer-2" / "deep" / "art.pdf").exists()
    assert not [p for p in dest.rglob(".gearlift-sync-*")]
    # readme.txt was copied, then vanished from src before verify: tolerated, not a mismatch
    assert result.vanished == 1
    assert result.mismatched == ["customer-2/deep/art.pdf"]


def test_file_vanishing_before_copy_is_tolerated(trees, monkeypatch):
    src, dest = trees
    real_plan = fs.plan_sync

    def plan_then_delete(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        (src / "readme.txt").unlink()
        return plan

    monkeypatch.setattr(fs, "plan_sync", plan_then_delete)
    result = fs.sync(str(src), str(dest))
    assert result.vanished == 1
    assert result.copied == 3
    assert not result.failed


def test_state_file_is_written_atomically_with_counts(trees, tmp_path):
    src, dest = trees
    result = fs.sync(str(src), str(dest))
    state = tmp_path / "state" / "file_sync.json"
    state.parent.mkdir()
    fs.write_record(str(state), fs.record(result, str(src), str(dest)))
    data = json.loads(state.read_text())
    assert data["copied"] == 4
    assert data["copied_bytes"] == source_bytes(src)
    assert data["verified"] == 4
    assert data["mismatched"] == []
    assert data["started"] and data["finished"]
    assert list(state.parent.iterdir()) == [state]  # no temp file left
    assert "<svg>one</svg>" not in state.read_text()


# ------------------------------------------------------------------ the module


def args(src: Path, dest: Path, **extra):
    return {"src": str(src), "dest": str(dest), **extra}


def test_module_copies_then_is_idempotent_and_writes_state(trees, tmp_path):
    src, dest = trees
    state = tmp_path / "file_sync.json"
    first = run_main(file_sync_module.main, args(src, dest, state_file=str(state)), diff=True)
    assert not first.failed, first.data
    assert first["changed"]
    assert first["copied"] == 4
    assert first["verified"] == 4
    assert first["mismatched_count"] == 0
    assert first["diff"]["before"] == "0 files, 0 bytes\n"
    assert first["diff"]["after"] == f"4 files, {source_bytes(src)} bytes\n"
    assert json.loads(state.read_text())["copied"] == 4

    second = run_main(file_sync_module.main, args(src, dest, state_file=str(state)))
    assert not second.failed
    assert not second["changed"]
    assert second["copied"] == 0
    assert second["unchanged"] == 4
    assert json.loads(state.read_text())["unchanged"] == 4


def test_module_check_mode(trees, tmp_path):
    src, dest = trees
    state = tmp_path / "file_sync.json"
    result = run_main(file_sync_module.main, args(src, dest, state_file=str(state)), check_mode=True)
    assert not result.failed
    assert result["changed"]
    assert result["copied"] == 4
    assert result["copied_bytes"] == source_bytes(src)
    assert list(dest.iterdir()) == []
    assert not state.exists()


def test_module_fails_on_mismatch_and_records_it(trees, tmp_path):
    src, dest = trees
    assert not run_main(file_sync_module.main, args(src, dest)).failed
    copy = dest / "readme.txt"
    mtime = copy.stat().st_mtime_ns
    copy.write_text("top LEVEL")
    os.utime(copy, ns=(mtime, mtime))
    state = tmp_path / "file_sync.json"
    failed = run_main(file_sync_module.main, args(src, dest, state_file=str(state)))
    assert failed.failed
    assert "1 file(s) missing or different" in failed["msg"]
    assert "readme.txt" in failed["msg"]
    assert failed["mismatched"] == ["readme.txt"]
    assert json.loads(state.read_text())["mismatched"] == ["readme.txt"]
    # check mode only reports
    checked = run_main(file_sync_module.main, args(src, dest), check_mode=True)
    assert not checked.failed
    assert checked["mismatched"] == ["readme.txt"]
    # a verify-only pass fails the same way and copies nothing
    verify_only = run_main(file_sync_module.main, args(src, dest, copy=False))
    assert verify_only.failed
    assert verify_only["copied"] == 0
    assert verify_only["verified"] == 3
    assert copy.read_text() == "top LEVEL"
    # checksum repairs it
    fixed = run_main(file_sync_module.main, args(src, dest, checksum=True))
    assert not fixed.failed
    assert fixed["copied"] == 1
    assert copy.read_text() == "top level"


def test_module_refuses_bad_input_before_any_change(trees, tmp_path):
    src, dest = trees
    missing = run_main(file_sync_module.main, args(src, dest / "mnt"))
    assert missing.failed
    assert "never creates it" in missing["msg"]
    assert not (dest / "mnt").exists()
    inside = run_main(file_sync_module.main, args(src, src / "customer-1"))
    assert inside.failed
    assert "inside src" in inside["msg"]
    unmounted = run_main(file_sync_module.main, args(src, dest, require_mount=True))
    assert unmounted.failed
    assert "not a mount point" in unmounted["msg"]
    bad_mode = run_main(file_sync_module.main, args(src, dest, mode="rw"))
    assert bad_mode.failed
    assert "not an octal mode" in bad_mode["msg"]
    no_dir = run_main(file_sync_module.main, args(src, dest, state_file=str(tmp_path / "nope" / "s.json")))
    assert no_dir.failed
    assert "state_file" in no_dir["msg"]
    assert list(dest.iterdir()) == []
