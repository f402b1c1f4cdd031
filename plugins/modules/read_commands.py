#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: read_commands
short_description: Run several read-only commands on a host in one go and return each one's output by name
version_added: 0.1.0
description:
  - Runs every command of O(commands) in turn, without a shell, and returns its return code, standard
    output and standard error under its name, in one round trip to the host instead of one task (or one
    loop item) per command. The hardening role's audit reads its host this way.
  - A command whose O(commands[].binary) (by default the first word of O(commands[].argv)) is not on
    the host is not run; its result says C(skipped) and why.
  - Only for commands that change nothing. The module never reports a change and runs them in check mode
    too (what they read is what check mode needs).
  - A command that fails (non-zero return code) does not fail the task; its return code is in the result.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  commands:
    description: The commands, each with a unique name.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The key of the command's result in RV(outputs).
        type: str
        required: true
      argv:
        description: The command and its arguments (no shell; at least the command).
        type: list
        elements: str
        required: true
      binary:
        description: The path that must exist for the command to run (symbolic links followed); by default the
          first element of O(commands[].argv).
        type: str
"""

EXAMPLES = r"""
- name: Read the effective sshd and kernel settings
  gearlift.platform.read_commands:
    commands:
      - {name: sshd, argv: [/usr/sbin/sshd, -T]}
      - {name: sysctl, argv: [/usr/sbin/sysctl, -a]}
      - {name: apparmor, binary: /sys/module/apparmor/parameters/enabled,
         argv: [/usr/bin/cat, /sys/module/apparmor/parameters/enabled]}
  register: host_reads
"""

RETURN = r"""
outputs:
  description: Each command's result by name, shaped like a registered M(ansible.builtin.command) result (standard
    output without its trailing newlines); a command that was not run has C(skipped) and C(skip_reason) instead.
  returned: always
  type: dict
  sample:
    sshd: {"cmd": ["/usr/sbin/sshd", "-T"], "rc": 0, "stdout": "port 22\nciphers aes256-gcm@openssh.com", "stderr": ""}
    auditctl: {"skipped": true, "skip_reason": "/usr/sbin/auditctl is not on this host"}
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def plan(commands: list[dict[str, Any]]) -> list[tuple[str, list[str], str]]:
    """(name, argv, binary) of each command; ValueError naming the first bad one (nothing has run yet)."""
    seen: set[str] = set()
    out = []
    for index, command in enumerate(commands):
        name = str(command.get("name") or "")
        argv = [str(arg) for arg in command.get("argv") or []]
        if not name:
            raise ValueError(f"commands[{index}] has no name")
        if name in seen:
            raise ValueError(f"commands[{index}]: the name {name!r} is used twice (results are keyed by name)")
        if not argv or not argv[0]:
            raise ValueError(f"commands[{index}] ({name}): argv needs at least the command")
        seen.add(name)
        out.append((name, argv, str(command.get("binary") or argv[0])))
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            commands=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    argv=dict(type="list", elements="str", required=True),
                    binary=dict(type="str"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    try:
        commands = plan(module.params["commands"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    outputs: dict[str, dict[str, Any]] = {}
    for name, argv, binary in commands:
        if not os.path.exists(binary):
            outputs[name] = {"skipped": True, "skip_reason": f"{binary} is not on this host"}
            continue
        rc, stdout, stderr = module.run_command(argv, check_rc=False)
        outputs[name] = {"cmd": argv, "rc": rc, "stdout": stdout.rstrip("\r\n"), "stderr": stderr.rstrip("\r\n")}
    module.exit_json(changed=False, outputs=outputs)


if __name__ == "__main__":
    main()
