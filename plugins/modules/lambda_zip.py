#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lambda_zip
short_description: Build a reproducible Lambda deployment package (zip) from files and vendored Python packages
version_added: 0.1.0
description:
  - Writes O(dest), a zip holding O(files) and the Python packages O(python_packages) as the
    interpreter running the module has them installed (run it on the controller, for the
    controller's Python).
  - The zip is byte for byte reproducible (sorted entries, fixed dates and modes, no byte code), so
    its SHA-256 changes only when a file does, and a function deployed from it is only updated then.
  - O(dest) is rewritten only when its content differs. In check mode nothing is written.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  dest:
    description: Path of the zip to write (its directory must exist).
    type: path
    required: true
  files:
    description: Files to pack.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: Path of the file.
        type: path
        required: true
      name:
        description: Its path inside the zip (relative, no C(..)).
        type: str
        required: true
  python_packages:
    description:
      - Importable top-level package or module names to vendor (for example C(pymysql)); a missing
        one fails the task with the name of the package to install.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The rotation function's package
  gearlift.platform.lambda_zip:
    dest: /tmp/rotation.zip
    files:
      - {src: files/secret_rotation/lambda_function.py, name: lambda_function.py}
    python_packages: [pymysql]
  delegate_to: localhost
"""

RETURN = r"""
dest:
  description: The zip's path.
  returned: always
  type: str
sha256:
  description: Hex SHA-256 of the zip.
  returned: always
  type: str
code_sha256:
  description: Base64 SHA-256 of the zip, as Lambda reports it (C(CodeSha256)).
  returned: always
  type: str
entries:
  description: Paths inside the zip.
  returned: always
  type: list
  elements: str
"""

import hashlib
import importlib
import os
import sys
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gearlift.platform.plugins.module_utils.lambda_zip import (
    build_zip,
    code_sha256,
    package_entries,
)


def vendored(name):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        raise ValueError(f"Python package {name!r} is not installed for {sys.executable}; install it there") from None
    path = getattr(mod, "__file__", None)
    if not path:
        raise ValueError(f"{name!r} has no files to vendor")
    if os.path.basename(path) == "__init__.py":
        return package_entries(os.path.dirname(path), name)
    return [(os.path.basename(path), path)]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            files=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(src=dict(type="path", required=True), name=dict(type="str", required=True)),
            ),
            python_packages=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    sources = [(f["name"], f["src"]) for f in module.params["files"]]
    try:
        for name in module.params["python_packages"]:
            sources.extend(vendored(name))
        entries = []
        for arcname, path in sources:
            with open(path, "rb") as handle:
                entries.append((arcname, handle.read()))
        data = build_zip(entries)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    old = None
    if os.path.exists(dest):
        with open(dest, "rb") as handle:
            old = handle.read()
    changed = old != data
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest) or ".", prefix=".lambda-zip.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    module.exit_json(
        changed=changed,
        dest=dest,
        sha256=hashlib.sha256(data).hexdigest(),
        code_sha256=code_sha256(data),
        entries=sorted(entry[0] for entry in entries),
    )


if __name__ == "__main__":
    main()
