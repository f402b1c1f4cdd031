"""gearlift.platform.podman: modules go to the container on stdin, one podman exec each or all
through the relay's one podman exec (plugins/plugin_utils/podman_relay.py).

A stand-in `podman` executable (podman_executable) records every call and runs
`exec` commands on this machine with the container's root at "/", so real
ansible-playbook runs show which podman calls the connection makes without a
container. The connection against real containers is exercised by every
molecule scenario and the twin's tests.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

FAKE_PODMAN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_PODMAN_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[0] == "mount":
        print("/")
        sys.exit(0)
    if args[0] == "exec":
        rest = args[1:]
        interactive = False
        while rest[0].startswith("-"):
            if rest[0] in ("-i", "--interactive"):
                interactive = True
            rest = rest[2:] if rest[0] == "--user" else rest[1:]
        command = rest[1:]  # rest[0] is the container
        if not interactive:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        # the command becomes this process: input and output stream as through podman exec
        os.execvp(command[0], command)
    sys.exit("fake podman: unexpected " + " ".join(args))
    """
)

PLAY = [
    {
        "name": "Two modules and a file transfer",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Run a command",
                "ansible.builtin.command": "echo from-inside",
                "register": "out",
                "changed_when": False,
            },
            {"name": "Stat a file", "ansible.builtin.stat": {"path": "/etc/hostname"}},
            {"name": "Check the command's output", "ansible.builtin.assert": {"that": ["out.stdout == 'from-inside'"]}},
        ],
    }
]


@pytest.fixture
def fake(tmp_path):
    podman = tmp_path / "podman"
    podman.write_text(FAKE_PODMAN.format(python=sys.executable), encoding="utf-8")
    podman.chmod(0o755)
    play = tmp_path / "play.yml"
    play.write_text(json.dumps(PLAY), encoding="utf-8")
    log = tmp_path / "calls.log"
    return podman, play, log


def _run(fake, *extra):
    podman, play, log = fake
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "FAKE_PODMAN_LOG": str(log),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_REMOTE_TMP": str(play.parent / "remote-tmp"),
    }
    done = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "ctr1,",
            "-c",
            "gearlift.platform.podman",
            "-e",
            f"ansible_podman_executable={podman}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            *extra,
            str(play),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_pipelined_module_is_one_interactive_exec_and_nothing_is_copied(fake):
    calls = _run(fake, "-e", "ansible_podman_relay=false")
    execs = [c for c in calls if c[0] == "exec"]
    # command + stat: one exec each, with the module on stdin; no mount, no cp, no temp dir.
    assert len(execs) == 2, calls
    assert all(c[1] == "--interactive" and c[2] == "ctr1" for c in execs), execs
    assert not [c for c in calls if c[0] in ("mount", "cp")], calls
    assert not any("mkdir" in " ".join(c) for c in calls), calls


def test_pipelining_off_copies_the_module_through_the_mount(fake):
    calls = _run(fake, "-e", "ansible_pipelining=false", "-e", "ansible_podman_relay=false")
    assert ["mount", "ctr1"] in calls, calls
    execs = [c for c in calls if c[0] == "exec"]
    # per module: make the temp dir, chmod + run + clean up; never --interactive without stdin
    assert len(execs) > 2, calls
    assert not [c for c in execs if "--interactive" in c], execs
    assert any("mkdir" in " ".join(c) for c in execs), execs


def test_the_relay_is_on_by_default(fake):
    execs = [c for c in _run(fake) if c[0] == "exec"]
    assert len(execs) == 1 and "--interactive" in execs[0], execs


def test_relay_runs_every_command_through_one_exec_and_ends_with_the_run(fake):
    calls = _run(fake, "-e", "ansible_podman_relay=true")
    execs = [c for c in calls if c[0] == "exec"]
    # one podman exec -i for the run: the relay's server, which runs the command and the stat
    assert len(execs) == 1, calls
    assert execs[0][1:5] == ["--interactive", "ctr1", "python3", "-c"], execs
    assert not [c for c in calls if c[0] in ("mount", "cp")], calls


def test_relay_with_pipelining_off(fake):
    calls = _run(fake, "-e", "ansible_pipelining=false", "-e", "ansible_podman_relay=true")
    # the module is copied through the mount; the temp dir, chmod, run and clean-up go through the relay
    assert ["mount", "ctr1"] in calls, calls
    assert len([c for c in calls if c[0] == "exec"]) == 1, calls
