"""plugins/plugin_utils/podman_relay.py: commands through one long-lived podman exec -i.

A stand-in `podman` records each call and, for `exec`, becomes the command on this machine
(os.execvp: standard input and output stream as through a real `podman exec -i`), so the
relay's daemon and its in-container server run for real, without a container.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.gearlift.platform.plugins.plugin_utils import podman_relay

FAKE_PODMAN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open({log!r}, "a") as log:
        log.write(json.dumps({{"pid": os.getpid(), "args": args}}) + "\\n")
    assert args[0] == "exec", args
    rest = args[1:]
    interactive = False
    while rest[0].startswith("-"):
        interactive = interactive or rest[0] in ("-i", "--interactive")
        rest = rest[2:] if rest[0] == "--user" else rest[1:]
    command = rest[1:]  # rest[0] is the container
    if command[0] == "python3" and os.environ.get("FAKE_NO_PYTHON"):
        sys.exit(127)
    if not interactive:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
    os.execvp(command[0], command)
    """
)


@pytest.fixture
def relay(tmp_path):
    """(directory, podman argv, log of podman calls); stops the relay afterwards."""
    # short: unix socket paths are limited to 107 bytes (the relay declines longer ones)
    directory = Path(tempfile.mkdtemp(prefix="relay-"))
    log = tmp_path / "podman.log"
    podman = tmp_path / "podman"
    podman.write_text(FAKE_PODMAN.format(python=sys.executable, log=str(log)), encoding="utf-8")
    podman.chmod(0o755)
    argv = [str(podman), "exec", "--interactive", "ctr1"]
    yield str(directory), argv, log
    path = podman_relay.socket_path(str(directory), argv)
    podman_relay.stop(str(directory), argv)
    _wait(lambda: not any(_alive(c["pid"]) for c in _calls(log)))
    assert not os.path.exists(path)
    shutil.rmtree(directory)


def _calls(log):
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        return stat.read().split()[2] != "Z"


def _wait(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_commands_run_through_one_podman_exec(relay):
    directory, argv, log = relay
    assert podman_relay.run(directory, argv, ["echo", "one"], None, 30) == (0, b"one\n", b"")
    assert podman_relay.run(directory, argv, ["sh", "-c", "echo err >&2; exit 3"], None, 30) == (3, b"", b"err\n")
    assert podman_relay.run(directory, argv, ["cat"], b"module on stdin", 30) == (0, b"module on stdin", b"")
    calls = _calls(log)
    assert len(calls) == 1, calls
    assert calls[0]["args"][:5] == ["exec", "--interactive", "ctr1", "python3", "-c"]


def test_standard_input_is_empty_without_data(relay):
    directory, argv, _ = relay
    # as podman exec without --interactive: /dev/null, never the relay's own channel
    assert podman_relay.run(directory, argv, ["cat"], None, 30) == (0, b"", b"")


def test_exit_status_as_podman_exec_reports_it(relay):
    directory, argv, _ = relay
    rc, _, _ = podman_relay.run(directory, argv, ["sh", "-c", "kill -TERM $$"], None, 30)
    assert rc == 128 + signal.SIGTERM
    rc, _, err = podman_relay.run(directory, argv, ["no-such-command-here"], None, 30)
    assert rc == 127 and b"no-such-command-here" in err


def test_large_output_and_input(relay):
    directory, argv, _ = relay
    data = os.urandom(3 << 20)
    rc, out, _ = podman_relay.run(directory, argv, ["cat"], data, 30)
    assert rc == 0 and out == data


def test_commands_run_concurrently(relay):
    directory, argv, _ = relay
    podman_relay.run(directory, argv, ["true"], None, 30)  # started
    results = []

    def one(i):
        results.append(podman_relay.run(directory, argv, ["sh", "-c", f"sleep 1; echo {i}"], None, 30))

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 4
    assert sorted(results) == [(0, f"{i}\n".encode(), b"") for i in range(5)]


def test_no_relay_without_python_in_the_container(relay, monkeypatch):
    directory, argv, log = relay
    monkeypatch.setenv("FAKE_NO_PYTHON", "1")
    assert podman_relay.run(directory, argv, ["echo", "one"], None, 30) is None
    assert not os.path.exists(podman_relay.socket_path(directory, argv))
    assert len(_calls(log)) == 1


def test_no_relay_for_a_socket_path_too_long(relay, tmp_path):
    _, argv, log = relay
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    assert podman_relay.run(str(deep), argv, ["echo", "one"], None, 30) is None
    assert not _calls(log)


def test_no_relay_without_its_directory(relay):
    directory, argv, log = relay
    assert podman_relay.run(directory + "-gone", argv, ["echo", "one"], None, 30) is None
    assert not _calls(log)


def test_stop_ends_the_relay_and_the_next_command_starts_one(relay):
    directory, argv, log = relay
    podman_relay.run(directory, argv, ["true"], None, 30)
    first = _calls(log)[0]["pid"]
    podman_relay.stop(directory, argv)
    assert _wait(lambda: not _alive(first))
    assert podman_relay.run(directory, argv, ["echo", "again"], None, 30) == (0, b"again\n", b"")
    assert len(_calls(log)) == 2


def test_idle_relay_ends(relay):
    directory, argv, log = relay
    podman_relay.run(directory, argv, ["true"], None, 0.5)
    pid = _calls(log)[0]["pid"]
    assert _wait(lambda: not _alive(pid))
    assert not os.path.exists(podman_relay.socket_path(directory, argv))


def test_a_command_is_never_run_twice_when_the_relay_dies(relay, tmp_path):
    directory, argv, log = relay
    podman_relay.run(directory, argv, ["true"], None, 30)
    exec_pid = _calls(log)[0]["pid"]
    marker = tmp_path / "ran"
    threading.Timer(1.0, os.kill, (exec_pid, signal.SIGKILL)).start()
    with pytest.raises(podman_relay.RelayLost):
        podman_relay.run(directory, argv, ["sh", "-c", f"echo x >> {marker}; sleep 5"], None, 30)
    assert marker.read_text() == "x\n"
    # the relay is gone; the next command gets a new one
    assert _wait(lambda: not os.path.exists(podman_relay.socket_path(directory, argv)))
    assert podman_relay.run(directory, argv, ["echo", "new"], None, 30) == (0, b"new\n", b"")
