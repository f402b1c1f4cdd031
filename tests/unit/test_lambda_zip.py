"""gearlift.platform.lambda_zip: the rotation function's package is reproducible and vendors its packages."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ansible_collections.gearlift.platform.plugins.module_utils.lambda_zip import (
    build_zip,
    check_arcname,
    code_sha256,
    package_entries,
)
from ansible_collections.gearlift.platform.plugins.modules import lambda_zip

from tests.unit.module_harness import REPO, run_main

HANDLER = REPO / "playbooks" / "files" / "secret_rotation" / "lambda_function.py"
LOGIC = REPO / "plugins" / "module_utils" / "secret_rotation.py"


def test_the_same_files_give_the_same_bytes_whatever_the_order() -> None:
    a = build_zip([("b.py", b"2"), ("a.py", b"1")])
    assert a == build_zip([("a.py", b"1"), ("b.py", b"2")])
    with zipfile.ZipFile(io.BytesIO(a)) as zf:
        assert zf.namelist() == ["a.py", "b.py"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {(i.external_attr >> 16) & 0o777 for i in zf.infolist()} == {0o644}
    assert code_sha256(a) != code_sha256(build_zip([("a.py", b"1")]))


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../b", "a\\b", "a//b"])
def test_bad_archive_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="bad path"):
        check_arcname(name)


def test_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="two files"):
        build_zip([("a.py", b"1"), ("a.py", b"2")])


def test_package_entries_leave_byte_code_behind(tmp_path: Path) -> None:
    (tmp_path / "sub" / "__pycache__").mkdir(parents=True)
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "sub" / "m.py").write_text("")
    (tmp_path / "sub" / "__pycache__" / "m.cpython-311.pyc").write_text("")
    (tmp_path / "x.pyc").write_text("")
    assert [a for a, _ in package_entries(str(tmp_path), "pkg")] == ["pkg/__init__.py", "pkg/sub/m.py"]


def module_args(dest: Path, packages: list[str]) -> dict[str, object]:
    return {
        "dest": str(dest),
        "files": [
            {"src": str(HANDLER), "name": "lambda_function.py"},
            {"src": str(LOGIC), "name": "secret_rotation.py"},
        ],
        "python_packages": packages,
    }


def test_the_module_writes_once_then_reports_unchanged_and_check_mode_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "rotation.zip"
    checked = run_main(lambda_zip.main, module_args(dest, ["yaml"]), check_mode=True)
    assert checked["changed"] and not dest.exists()
    first = run_main(lambda_zip.main, module_args(dest, ["yaml"]))
    assert first["changed"] and first["sha256"] == checked["sha256"]
    assert "lambda_function.py" in first["entries"] and "yaml/__init__.py" in first["entries"]
    again = run_main(lambda_zip.main, module_args(dest, ["yaml"]))
    assert not again["changed"] and again["code_sha256"] == first["code_sha256"]


def test_a_missing_package_fails_with_its_name(tmp_path: Path) -> None:
    result = run_main(lambda_zip.main, module_args(tmp_path / "r.zip", ["no_such_package_gl"]))
    assert result.failed and "no_such_package_gl" in result["msg"]
