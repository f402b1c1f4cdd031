"""roles/efs_mount/files/gearlift-efs-mount: the boot-time mount, with mount(8) and mountpoint stubbed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "efs_mount" / "files" / "gearlift-efs-mount"
FS = "fs-0123456789abcdef0"
AP = "fsap-0123456789abcdef0"


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A bin dir whose mount logs its arguments and fails while FAIL_MOUNTS > attempts so far."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mount").write_text(
        '#!/bin/sh\necho "$*" >> "$STUB_LOG"\nn=$(wc -l < "$STUB_LOG")\n[ "$n" -gt "${FAIL_MOUNTS:-0}" ]\n'
    )
    (bin_dir / "mountpoint").write_text('#!/bin/sh\n[ -n "${ALREADY_MOUNTED:-}" ]\n')
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def run(stubs: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "STUB_LOG": str(stubs / "calls.log"),
        "GEARLIFT_EFS_FILE_SYSTEM_ID": FS,
        "GEARLIFT_EFS_ACCESS_POINT_ID": AP,
        **env,
    }
    return subprocess.run(["sh", str(SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=30)


def calls(stubs: Path) -> list[str]:
    log = stubs / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_mounts_with_tls_the_access_point_and_iam(stubs: Path, tmp_path: Path) -> None:
    target = tmp_path / "designs"
    result = run(stubs, "mount", str(target), "3", "1", "1")
    assert result.returncode == 0, result.stderr
    assert calls(stubs) == [f"-t efs -o tls,accesspoint={AP},_netdev,iam {FS}:/ {target}"]
    assert target.is_dir()


def test_retries_a_bounded_number_of_times_then_fails(stubs: Path, tmp_path: Path) -> None:
    flaky = run(stubs, "mount", str(tmp_path / "d"), "3", "1", "0", FAIL_MOUNTS="2")
    assert flaky.returncode == 0
    assert len(calls(stubs)) == 3
    assert "iam" not in calls(stubs)[-1]
    (stubs / "calls.log").unlink()
    down = run(stubs, "mount", str(tmp_path / "d"), "3", "1", "0", FAIL_MOUNTS="99")
    assert down.returncode == 1
    assert len(calls(stubs)) == 3
    assert "after 3 attempt(s)" in down.stderr


def test_an_existing_mount_is_left_alone(stubs: Path, tmp_path: Path) -> None:
    result = run(stubs, "mount", str(tmp_path / "d"), "3", "1", "1", ALREADY_MOUNTED="1")
    assert result.returncode == 0
    assert "already mounted" in result.stderr
    assert calls(stubs) == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("mount", "relative", "3", "1", "1"), {}, "PATH must be an absolute directory"),
        (("mount", "/", "3", "1", "1"), {}, "PATH must be an absolute directory"),
        (("mount", "/srv/d", "x", "1", "1"), {}, "ATTEMPTS and DELAY must be numbers"),
        (("mount", "/srv/d", "3", "1", "1"), {"GEARLIFT_EFS_FILE_SYSTEM_ID": "fs-x; rm -rf /"}, "not a file system id"),
        (("mount", "/srv/d", "3", "1", "1"), {"GEARLIFT_EFS_ACCESS_POINT_ID": ""}, "not an access point id"),
        (("remount", "/srv/d"), {}, "unknown action"),
    ],
)
def test_bad_input_is_refused_before_any_mount(
    stubs: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run(stubs, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert calls(stubs) == []
