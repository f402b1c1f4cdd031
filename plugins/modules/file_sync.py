#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_sync
short_description: Copy uploaded files from a local directory to the shared EFS mount, re-runnably and verified
version_added: 0.1.0
description:
  - Copies the customers' uploaded design files from the app server's local upload directory I(src) to the
    shared EFS mount I(dest). Both are local paths on the host the module runs on (the source host).
    Made to be run again and again while the shop keeps writing new files - each run copies what is new or
    changed since the last one.
  - Walks I(src) recursively without following symlinks - symlinks are reported in RV(skipped_symlinks) and
    not copied, sockets, FIFOs and devices are skipped. Files whose base name matches I(exclude) (the app's
    in-flight temp files) are skipped. Missing directories are created in I(dest) as a file needs them, with
    I(dir_mode); empty source directories are not copied.
  - A file is copied when its copy in I(dest) is missing or differs in size or modification time (compared in
    whole seconds) or, with I(checksum=true), in sha256. Each copy is written to a temp file named
    C(.gearlift-sync-*) in the destination directory, fsynced, given the source's mode (or I(mode)), owner
    (I(owner)/I(group)) and times, then renamed onto the final name - a reader never sees half a file. A run
    that is interrupted leaves at most such temp files; the next run removes those older than itself.
  - Nothing is ever deleted from I(src) or I(dest) apart from the module's own temp files. Files only in
    I(dest) (written by the new fleet) are left alone and counted in RV(dest_only). A source file whose place
    in I(dest) is taken by a directory, symlink or special file is not copied and is reported in
    RV(conflicts).
  - Files that vanish from I(src) during the run are tolerated (RV(vanished)). A file that changes while it is
    copied (size or mtime before and after) is copied again once; if it changes again it is reported in
    RV(unstable) and left for the next run.
  - With I(verify=true) every source file found by the walk is then compared by sha256 with its copy; a
    missing or different copy is listed in RV(mismatched) and fails the module.
  - Refuses, before any change, a missing I(src) or I(dest), either not being a directory, I(src) and I(dest)
    being the same or one inside the other, and (with I(require_mount=true)) a I(dest) that is not a mount
    point. The module never creates I(dest) - writing into an unmounted mount point would hide the files
    under the later mount.
  - Supports check mode (reports what would be copied and changes nothing; verify then checks the files that
    would not be copied, and reports without failing) and diff mode (the number of files and bytes in
    I(dest) before and after).
author:
  - gearlift maintainers (!UNKNOWN)
options:
  src:
    description: The source directory (the app's local upload directory).
    type: path
    required: true
  dest:
    description: The destination directory (the EFS mount or a directory in it). Must exist.
    type: path
    required: true
  exclude:
    description:
      - fnmatch patterns matched against each file's base name (case-sensitive); matching files are not copied,
        and matching files in I(dest) are not counted in RV(dest_only).
      - The module's own temp files (C(.gearlift-sync-*)) are always excluded, whatever this list says.
    type: list
    elements: str
    default: [".*.tmp", ".upload-*", ".meta-*", ".gearlift-sync-*"]
  checksum:
    description:
      - Also copy a file whose size and mtime match its copy but whose sha256 differs (reads both sides of
        every such file). Repairs a copy that I(verify) reported.
    type: bool
    default: false
  copy:
    description:
      - Copy the files. With C(false) the run only reads - nothing is copied and no temp file is removed -
        and I(verify) checks every source file (a verify-only pass, for example after the last copy).
    type: bool
    default: true
  verify:
    description:
      - After copying, compare every source file with its copy by sha256 (reads both sides of every file).
        Any missing or different copy fails the module, naming the count and the first paths (check mode only
        reports).
    type: bool
    default: true
  state_file:
    description:
      - A JSON record written atomically (temp file and rename) after the run, also when verify fails -
        start and end times, counts, bytes, the full list of mismatches, conflicts and errors. Paths and
        numbers only, never file contents. Its directory must exist. Not written in check mode.
    type: path
  owner:
    description:
      - Owner (name or uid) of the copies and of the directories the module creates. Default - as the
        process creates them (on EFS with an access point the server decides).
      - Applied to what the module writes; files already in sync are not changed.
    type: str
  group:
    description: Group (name or gid) of the copies and of the directories the module creates.
    type: str
  mode:
    description:
      - Octal mode of the copies (for example C('0640')); default - the source file's mode.
      - Applied to what the module writes; files already in sync are not changed.
    type: raw
  dir_mode:
    description: Octal mode of the directories the module creates in I(dest).
    type: raw
    default: "0750"
  require_mount:
    description: Fail unless I(dest) is a mount point - a guard against copying into an unmounted EFS mount point.
    type: bool
    default: false
notes:
  - Runs on the source host; needs read access to I(src), write access to I(dest) and, with I(owner)/I(group),
    the right to chown.
  - Full (out of space), over-quota or read-only destinations stop the run at once; other per-file errors are
    collected in RV(errors) and fail the module at the end.
  - I(verify) and I(checksum) read every file - on a large tree they dominate the run time.
"""

EXAMPLES = r"""
- name: Copy the designs to the shared EFS mount (run again until nothing is copied)
  gearlift.platform.file_sync:
    src: /var/lib/shop/uploads
    dest: /mnt/efs/designs
    require_mount: false
    state_file: /var/lib/gearlift/file_sync.json
  register: designs

- name: The EFS mount point itself, only when it is mounted, as the app's user
  gearlift.platform.file_sync:
    src: /var/lib/shop/uploads
    dest: /mnt/efs
    require_mount: true
    owner: shop
    group: shop
    mode: "0640"

- name: What would be copied
  gearlift.platform.file_sync:
    src: /var/lib/shop/uploads
    dest: /mnt/efs/designs
  check_mode: true
  diff: true

- name: Verify only - every file compared by sha256, nothing copied
  gearlift.platform.file_sync:
    src: /var/lib/shop/uploads
    dest: /mnt/efs/designs
    copy: false
    state_file: /var/lib/gearlift/file_sync-verify.json

- name: Repair copies that verify reported (same size and mtime, different content)
  gearlift.platform.file_sync:
    src: /var/lib/shop/uploads
    dest: /mnt/efs/designs
    checksum: true
"""

RETURN = r"""
changed:
  description: Whether a file was copied (in check mode - would be).
  returned: always
  type: bool
copied:
  description: Files copied (in check mode - that would be copied).
  returned: always
  type: int
  sample: 120
copied_bytes:
  description: Bytes copied (in check mode - the sizes of the files that would be copied).
  returned: always
  type: int
  sample: 52428800
unchanged:
  description: Files whose copy was already up to date.
  returned: always
  type: int
dest_only:
  description: Regular files only in I(dest) (not excluded), left alone.
  returned: always
  type: int
vanished:
  description: Source files that disappeared during the run.
  returned: always
  type: int
excluded:
  description: Source files skipped by I(exclude).
  returned: always
  type: int
skipped_symlinks:
  description: Symlinks in I(src) (relative paths), not copied.
  returned: always
  type: list
  elements: str
skipped_special:
  description: Sockets, FIFOs and devices in I(src) (relative paths), not copied.
  returned: always
  type: list
  elements: str
conflicts:
  description: Source files (relative paths, at most 100) whose place in I(dest) is taken by a directory, a
    symlink or a special file; not copied.
  returned: always
  type: list
  elements: str
unstable:
  description: Source files (relative paths, at most 100) that changed while being copied, twice; not copied.
  returned: always
  type: list
  elements: str
removed_temp:
  description: The module's stale temp files removed from I(dest) (in check mode - that would be removed).
  returned: always
  type: int
verified:
  description: Source files whose copy has the same sha256 (0 without I(verify)).
  returned: always
  type: int
mismatched:
  description: Source files (relative paths, at most 100) whose copy is missing or different after the run.
  returned: always
  type: list
  elements: str
  sample: ["customer-42/logo.svg"]
mismatched_count:
  description: How many files are mismatched (the full count).
  returned: always
  type: int
errors:
  description: Per-file errors (relative path and reason, at most 100).
  returned: always
  type: list
  elements: str
seconds:
  description: Duration of the run.
  returned: always
  type: float
  sample: 12.345
sample:
  description: Up to 20 relative paths copied (in check mode - that would be copied).
  returned: always
  type: list
  elements: str
  sample: ["customer-42/logo.svg", "customer-42/front.png"]
diff:
  description: In diff mode, the regular files in I(dest) before and after as C(N files, B bytes).
  returned: when diff mode is on
  type: dict
  sample: {"before": "10 files, 2048 bytes\n", "after": "12 files, 4096 bytes\n"}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gearlift.platform.plugins.module_utils import file_sync as sync


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            exclude=dict(type="list", elements="str", default=list(sync.DEFAULT_EXCLUDES)),
            checksum=dict(type="bool", default=False),
            verify=dict(type="bool", default=True),
            copy=dict(type="bool", default=True),
            state_file=dict(type="path"),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw"),
            dir_mode=dict(type="raw", default="0750"),
            require_mount=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    state_file: str | None = p["state_file"]
    try:
        src, dest = sync.check_paths(p["src"], p["dest"], p["require_mount"])
        mode = sync.parse_mode(p["mode"], "mode")
        dir_mode = sync.parse_mode(p["dir_mode"], "dir_mode")
        uid, gid = sync.resolve_owner(p["owner"], p["group"])
        if state_file and not os.path.isdir(os.path.dirname(os.path.abspath(state_file))):
            raise sync.SyncError(f"the directory of state_file {state_file} does not exist.")
        result = sync.sync(
            src,
            dest,
            exclude=p["exclude"],
            checksum=p["checksum"],
            verify=p["verify"],
            check_mode=module.check_mode,
            copy=p["copy"],
            mode=mode,
            dir_mode=sync.DEFAULT_DIR_MODE if dir_mode is None else dir_mode,
            uid=uid,
            gid=gid,
        )
    except sync.SyncError as e:
        module.fail_json(msg=f"file_sync: {e}", changed=False)
    except OSError as e:
        module.fail_json(msg=f"file_sync: {e}", changed=False)

    out = result.module_result()
    if module._diff:
        out["diff"] = result.diff(dest)
    if state_file and not module.check_mode:
        try:
            sync.write_record(state_file, sync.record(result, src, dest))
        except OSError as e:
            module.fail_json(msg=f"file_sync: could not write state_file {state_file}: {e}", **out)
    if result.unstable:
        module.warn(f"file_sync: {len(result.unstable)} file(s) kept changing while copied; the next run copies them")
    if result.conflicts:
        module.warn(f"file_sync: {len(result.conflicts)} file(s) not copied, something else is in their place in dest")
    if result.mismatched and module.check_mode and p["verify"]:
        module.warn(f"file_sync: {result.message()}")
    if result.failed:
        module.fail_json(msg=f"file_sync: {result.message()}", **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
