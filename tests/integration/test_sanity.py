"""`ansible-test sanity` passes for the collection's plugins.

ansible-test needs the collection at .../ansible_collections/<namespace>/<name>, so the checkout's
files (tracked and new, as git lists them) are copied to a temporary tree of that shape, next to
links to the collections of requirements.yml from the pinned `ansible` package (the plugins import
amazon.aws and containers.podman, and use amazon.aws's doc fragments). `--venv` with this Python's
version: ansible-test makes a virtual environment per test and installs each test's pinned
requirements (pylint, yamllint, voluptuous ...) from the package index. Its pip bootstrap script comes
from ci-files.testing.ansible.com, which is not reachable here: a stand-in in ansible-test's cache
(under a HOME of the test's own) installs the same pip version from the package index instead.
pslint (PowerShell) does not apply. Slow lane: the first run creates the environments (~3 minutes).
Accepted findings are in tests/sanity/ignore-2.19.txt, each with its reason.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pip
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUNDLE = Path(str(importlib.metadata.distribution("ansible").locate_file("ansible_collections")))
# Kept between runs (the per-test virtual environments); .cache/ is not tracked.
HOME = REPO / ".cache" / "ansible-test-home"

GET_PIP_STANDIN = """# Stand-in for ansible-test's pip bootstrap script (tests/integration/test_sanity.py):
# pip from a local copy installs the requested packages from the configured index.
import runpy
import sys

sys.path.insert(0, {source!r})
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = ["pip", "install", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"""


def _pip_bootstrap() -> None:
    """The stand-in for every pip version ansible-test may ask for (it names the file after it)."""
    source = HOME / "pip-source"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(Path(pip.__file__).parent, source / "pip", ignore=shutil.ignore_patterns("__pycache__"))
    from ansible_test._internal.python_requirements import get_venv_packages
    from ansible_test._internal.util import version_to_str

    class _Python:
        version = version_to_str(sys.version_info[:2])

    version = get_venv_packages(_Python())["pip"]  # type: ignore[arg-type]
    cache = HOME / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"get_pip_{version.replace('.', '_')}.py").write_text(GET_PIP_STANDIN.format(source=str(source)))


def _tree(root: Path) -> Path:
    """The checkout's files under root/ansible_collections/<namespace>/<name>, the dependencies beside."""
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    target = root / "ansible_collections" / galaxy["namespace"] / galaxy["name"]
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if name.startswith(".collections/") or not source.is_file() or source.is_symlink():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    for entry in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]:
        namespace, name = entry["name"].split(".")
        (root / "ansible_collections" / namespace).mkdir(parents=True, exist_ok=True)
        (root / "ansible_collections" / namespace / name).symlink_to(BUNDLE / namespace / name)
    return target


def test_ansible_test_sanity_passes_for_the_plugins(tmp_path: Path) -> None:
    _pip_bootstrap()
    collection = _tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(HOME), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = [str(BIN / "ansible-test"), "sanity", "--venv", "--python", python, "--color", "no"]
    argv += ["--skip-test", "pslint", "plugins/"]
    done = subprocess.run(argv, cwd=collection, env=env, capture_output=True, text=True, timeout=1800, check=False)
    out = done.stdout + done.stderr
    errors = [line for line in out.splitlines() if line.startswith(("ERROR:", "FATAL:"))]
    assert done.returncode == 0 and not errors, "\n".join(errors) or out[-4000:]
    ran = {line.split('"')[1] for line in out.splitlines() if line.startswith("Running sanity test ")}
    # the tests that read the plugins' code and documentation ran (none skipped for a missing tool)
    wanted = {"ansible-doc", "compile", "import", "pep8", "pylint", "validate-modules", "yamllint", "ignores"}
    assert wanted <= ran, f"did not run: {sorted(wanted - ran)}"
