"""The golden image's input hash: changes exactly when an input's content changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.gearlift.platform.plugins.lookup.content_hash import LookupModule
from ansible_collections.gearlift.platform.plugins.module_utils.content_hash import ContentHashError, content_hash


def _tree(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    (root / "tasks" / "main.yml").write_text("- name: x\n", encoding="utf-8")
    (root / "files").mkdir()
    (root / "files" / "tool.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    (root / "files" / "tool.sh").chmod(0o755)
    return root


def _hash(root: Path, *values: str) -> str:
    return content_hash([(str(root), "roles/r")], values)


def test_same_content_elsewhere_gives_the_same_hash_and_mtimes_do_not_count(tmp_path: Path) -> None:
    one = _tree(tmp_path / "a" / "r")
    two = tmp_path / "b" / "r"
    shutil.copytree(one, two)
    os.utime(two / "tasks" / "main.yml", (1, 1))
    assert _hash(one) == _hash(two)
    assert len(_hash(one)) == 64


@pytest.mark.parametrize(
    "change",
    ["edit", "add", "remove", "rename", "mode", "value"],
)
def test_every_kind_of_change_changes_the_hash(tmp_path: Path, change: str) -> None:
    root = _tree(tmp_path / "r")
    before = _hash(root, "ami-0123456789abcdef0")
    value = "ami-0123456789abcdef0"
    if change == "edit":
        (root / "tasks" / "main.yml").write_text("- name: y\n", encoding="utf-8")
    elif change == "add":
        (root / "tasks" / "more.yml").write_text("", encoding="utf-8")
    elif change == "remove":
        (root / "files" / "tool.sh").unlink()
    elif change == "rename":
        (root / "tasks" / "main.yml").rename(root / "tasks" / "other.yml")
    elif change == "mode":
        (root / "files" / "tool.sh").chmod(0o644)
    else:
        value = "ami-0fedcba9876543210"
    assert _hash(root, value) != before


def test_caches_are_not_inputs(tmp_path: Path) -> None:
    root = _tree(tmp_path / "r")
    before = _hash(root)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "files" / "y.pyc").write_bytes(b"\0")
    assert _hash(root) == before


def test_a_missing_input_and_a_shared_label_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ContentHashError, match="neither a file nor a directory"):
        content_hash([(str(tmp_path / "nope"), "x")])
    root = _tree(tmp_path / "r")
    with pytest.raises(ContentHashError, match="share the label"):
        content_hash([(str(root), "x"), (str(root / "tasks"), "x")])


def test_lookup_labels_inputs_relative_to_base_and_refuses_paths_outside(tmp_path: Path) -> None:
    base = tmp_path / "collection"
    _tree(base / "roles" / "r")
    (base / "app.jar").write_bytes(b"PK")
    lookup = LookupModule()
    got = lookup.run(["roles/r", "app.jar"], {}, base=str(base), values=["ami-1"])
    moved = tmp_path / "elsewhere"
    shutil.copytree(base, moved)
    assert lookup.run(["roles/r", "app.jar"], {}, base=str(moved), values=["ami-1"]) == got
    assert lookup.run(["roles/r"], {}, base=str(base), values=["ami-1"]) != got
    with pytest.raises(AnsibleLookupError, match="is not under"):
        lookup.run(["../outside"], {}, base=str(base))
    with pytest.raises(AnsibleLookupError, match="neither a file nor a directory"):
        lookup.run(["roles/missing"], {}, base=str(base))
    with pytest.raises(AnsibleLookupError, match=r"base .* is required"):
        lookup.run(["roles/r"], {})
    with pytest.raises(AnsibleLookupError, match="values must be a list"):
        lookup.run(["roles/r"], {}, base=str(base), values="ami-1")
    with pytest.raises(AnsibleLookupError, match="unknown option"):
        lookup.run(["roles/r"], {}, base=str(base), exclude=["x"])
