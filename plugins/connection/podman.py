# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gearlift.platform.podman: containers.podman.podman with pipelining."""

from __future__ import annotations

DOCUMENTATION = r"""
name: podman
author: gearlift contributors (!UNKNOWN)
short_description: Run tasks in a running podman container, one C(podman exec) per module
description:
  - The C(containers.podman.podman) connection with pipelining. That plugin runs C(podman exec)
    without C(--interactive), so a module cannot be sent on standard input and every task costs
    four podman calls (mount, make the temporary directory, copy the module, run it and clean up).
    This plugin passes C(--interactive) whenever Ansible sends data on standard input, so with
    pipelining on, a module is one C(podman exec) (40 module runs took 41 s instead of 97 s
    on the project's 2-core test machine).
  - The container filesystem is mounted (C(podman mount)) only when a file has to be copied in
    or out, not for every task.
  - With O(podman_relay) on, commands go through a relay, one long-lived C(podman exec --interactive)
    per container and ansible-playbook run, which starts each command in the container as a
    child of that exec, like SSH's ControlPersist. A C(podman exec) of its own took 0.26-0.29 s
    per command on the project's loaded 2-core test machine before the command started. The
    relay exits when the run ends, after O(podman_relay_idle_timeout) idle seconds, or with the
    container. When it cannot start (no C(python3) in the container yet), the command runs with
    a C(podman exec) of its own, and the next command tries the relay again.
  - The C(reset_connection) meta task ends the relay, like the SSH control master (a command
    started by a new exec picks up, for example, the user's new groups).
  - Used for the systemd test hosts of the molecule scenarios and the rehearsal twin's instances;
    it needs the C(containers.podman) collection.
version_added: 0.1.0
options:
  remote_addr:
    description:
      - Name or ID of the container.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
  remote_user:
    description:
      - User (name or UID) the commands run as inside the container; the container's default
        user when unset.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description:
      - Extra arguments for every podman command line (before the subcommand's own arguments).
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description:
      - The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description:
      - Send modules on standard input instead of copying them into the container first.
      - On by default for this connection, which exists for it; set false to get the copy-based
        behaviour of C(containers.podman.podman).
    type: boolean
    default: true
    ini:
      - section: connection
        key: pipelining
    env:
      - name: ANSIBLE_PODMAN_PIPELINING
    vars:
      - name: ansible_pipelining
      - name: ansible_podman_pipelining
  podman_relay:
    description:
      - Run commands through one long-lived C(podman exec --interactive) per container and run
        (see the description); false runs one C(podman exec) per command.
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PODMAN_RELAY
    vars:
      - name: ansible_podman_relay
  podman_relay_idle_timeout:
    description:
      - Seconds without a command after which the relay ends.
    type: float
    default: 30
    env:
      - name: ANSIBLE_PODMAN_RELAY_IDLE_TIMEOUT
    vars:
      - name: ansible_podman_relay_idle_timeout
"""

EXAMPLES = r"""
# An inventory of test hosts that are podman containers
all:
  hosts:
    gl-golden:
      ansible_connection: gearlift.platform.podman
"""

import shlex

from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ensure_connect
from ansible.utils.display import Display
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection
from ansible_collections.gearlift.platform.plugins.plugin_utils import podman_relay

display = Display()


class Connection(PodmanConnection):
    """containers.podman.podman plus ``podman exec --interactive`` for pipelined modules."""

    transport = "gearlift.platform.podman"
    has_pipelining = True

    def _connect(self):
        # The parent mounts the container's filesystem on every connect (one podman call per
        # task); here that waits until a file is actually copied (_mounted below).
        if not self._connected:
            display.vvv("podman connection to %s (pipelined)" % self._container_id, host=self._container_id)
            self._connected = True
        return self

    def _mounted(self):
        if self._mount_point is None:
            super()._connect()
        return self

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        """Run cmd in the container; data for its standard input goes through --interactive."""
        # ConnectionBase.exec_command only logs; the parent's would run podman without -i.
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        if self.get_option("podman_relay"):
            done = self._relayed(argv, in_data)
            if done is not None:
                return done
        args = ["exec"]
        if in_data is not None:
            args.append("--interactive")
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, argv, in_data)

    def _relay_argv(self):
        """The relay's podman exec command line (without the command), as _podman would build it."""
        podman = get_bin_path(self.get_option("podman_executable"))
        argv = [podman]
        if self.get_option("podman_extra_args"):
            argv += shlex.split(to_native(self.get_option("podman_extra_args"), errors="surrogate_or_strict"))
        argv += ["exec", "--interactive"]
        if self.user:
            argv += ["--user", self.user]
        return [*argv, self._container_id]

    def _relayed(self, argv, in_data):
        """(rc, stdout, stderr) through the relay, or None when the command was not handed to it."""
        try:
            podman_argv = self._relay_argv()
        except ValueError as exc:
            raise AnsibleError("%s command not found in PATH" % self.get_option("podman_executable")) from exc
        data = None if in_data is None else to_bytes(in_data, errors="surrogate_or_strict")
        display.vvv("RELAY %s" % (argv,), host=self._container_id)
        try:
            done = podman_relay.run(
                C.DEFAULT_LOCAL_TMP, podman_argv, argv, data, float(self.get_option("podman_relay_idle_timeout"))
            )
        except podman_relay.RelayLost as exc:
            raise AnsibleConnectionFailure(
                "the podman exec relay to %s ended while a command ran: %s" % (self._container_id, exc)
            ) from exc
        if done is None:
            display.vvv("no relay to %s, one podman exec" % self._container_id, host=self._container_id)
        return done

    def reset(self):
        """End the relay (meta: reset_connection); the next command starts a new one."""
        if self.get_option("podman_relay"):
            try:
                podman_relay.stop(C.DEFAULT_LOCAL_TMP, self._relay_argv())
            except ValueError:
                pass
        self.close()

    def put_file(self, in_path, out_path):
        self._mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mounted()
        super().fetch_file(in_path, out_path)

    def close(self):
        super().close()
        self._mount_point = None
