"""The README's rehearsal command and the harness's answers to bad ground."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gearlift.twin import images, podman
from gearlift.twin.errors import TwinError
from gearlift.twin.twin import Twin, TwinConfig

from .conftest import REPO, leftovers

pytestmark = pytest.mark.slow
GEARLIFT = [sys.executable, "-m", "gearlift.cli"]


CLI_STATE = REPO / ".twin"  # the state dir of `gearlift rehearse` (TwinConfig's default)


def _assert_nothing_left(prefix: str, state_dir: Path = CLI_STATE) -> None:
    assert leftovers(prefix, state_dir) == []


def test_rehearse_runs_site_yml_and_leaves_nothing() -> None:
    proc = subprocess.run(
        [*GEARLIFT, "rehearse", "--playbook", "site.yml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "PLAY Preflight | inventory settings and AWS account" in out
    assert "== rehearsal summary ==" in out
    assert "result   : PASSED" in out
    assert "failed=0" in out
    _assert_nothing_left("gearlift-twin")


def test_rehearse_fails_loudly_when_a_play_fails(tmp_path: Path) -> None:
    play = tmp_path / "fails.yml"
    play.write_text(
        "- name: A play that fails\n  hosts: controller\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail on purpose\n      ansible.builtin.fail:\n        msg: injected failure\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [*GEARLIFT, "rehearse", "--playbook", str(play)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1
    assert "injected failure" in proc.stdout
    assert "result   : FAILED" in proc.stdout
    _assert_nothing_left("gearlift-twin")


def test_ctrl_c_tears_everything_down(tmp_path: Path) -> None:
    play = tmp_path / "slow.yml"
    play.write_text(
        "- name: A long play\n  hosts: controller\n  gather_facts: false\n  tasks:\n"
        "    - name: Wait\n      ansible.builtin.pause:\n        seconds: 120\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [*GEARLIFT, "rehearse", "--playbook", str(play)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "PLAY A long play" in line or not line:
            break
    assert "PLAY A long play" in seen, seen
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, seen + rest
    assert "interrupted" in rest
    _assert_nothing_left("gearlift-twin")
    # ansible-runner's child is stopped too, not orphaned.
    ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True, check=True).stdout
    assert str(play) not in ps


def test_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        twin = Twin(TwinConfig(prefix="glbad", subnet="10.89.79.0/24", state_dir=tmp_path, moto_port=port))
        with pytest.raises(TwinError, match=rf"port {port} on 127.0.0.1 is already in use"):
            twin.up()
    _assert_nothing_left("glbad", tmp_path)


def test_missing_podman_is_named(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent)  # python, but no podman
    proc = subprocess.run(
        [*GEARLIFT, "rehearse"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert proc.returncode == 2
    assert "podman is not installed" in proc.stdout + proc.stderr
    _assert_nothing_left("gearlift-twin")


def test_stale_container_is_refused_and_clean_removes_it(tmp_path: Path) -> None:
    images.ensure_base_image()
    podman.run(
        "run",
        "-d",
        "--name",
        "glbad-i-stale",
        "--label",
        "gearlift.twin=glbad",
        *podman.RUN_FIX_ARGS,
        images.BASE_IMAGE,
        "sleep",
        "300",
    )
    try:
        twin = Twin(TwinConfig(prefix="glbad", subnet="10.89.79.0/24", state_dir=tmp_path))
        with pytest.raises(TwinError, match=r"containers of an earlier twin 'glbad' are still there.*glbad-i-stale"):
            twin.up()
        assert not podman.network_exists("glbad"), "refused start must not create the network"
        proc = subprocess.run(
            [*GEARLIFT, "twin", "clean", "--prefix", "glbad"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0
        assert "removed container glbad-i-stale" in proc.stdout
    finally:
        podman.remove("glbad-i-stale", stop_timeout=0)
    _assert_nothing_left("glbad", tmp_path)


def test_stale_network_is_refused(tmp_path: Path) -> None:
    podman.run("network", "create", "--subnet", "10.89.79.0/24", "glbad")
    try:
        twin = Twin(TwinConfig(prefix="glbad", subnet="10.89.79.0/24", state_dir=tmp_path))
        with pytest.raises(TwinError, match="podman network named glbad already exists"):
            twin.up()
        assert podman.list_containers("gearlift.twin=glbad") == []
    finally:
        podman.run("network", "rm", "-f", "glbad", check=False)
    _assert_nothing_left("glbad", tmp_path)
