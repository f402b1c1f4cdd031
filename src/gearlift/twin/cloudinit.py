"""What cloud-init does with an EC2 instance's user data, for the twin's container hosts.

The twin's hosts boot local images without cloud-init, so the data plane
plays its part for the common user data forms: ``#cloud-config`` with
``write_files`` (written early in boot, in cloud-init's *init* stage, before
the network is online and before services that wait for it; ``defer: true``
files in the *final* stage) and ``runcmd`` (final stage), and ``#!`` scripts
(final stage, after multi-user.target, as cloud-final runs them). Each stage
runs once per instance (a semaphore under /var/lib/cloud/instances/<id>/sem,
where cloud-init keeps its own). Other forms (MIME multi-part, include files,
other cloud-config modules) are reported, not run.

The files reach a container read-only: the instance's rendered stages in
``/etc/gearlift-twin/instance`` and a systemd generator that wires them into
the boot.
"""

from __future__ import annotations

import base64
import shlex
from pathlib import Path
from typing import Any

import yaml

INSTANCE_DIR = "/etc/gearlift-twin/instance"
GENERATOR_PATH = "/etc/systemd/system-generators/gearlift-twin-cloud-init"
SUPPORTED_KEYS = frozenset({"write_files", "runcmd"})

GENERATOR = f"""#!/bin/sh
# gearlift twin: plays cloud-init's part for EC2 user data (the twin's images
# have no cloud-init). Mounted read-only by the twin; not part of any image.
dir={INSTANCE_DIR}
out="$1"
[ -n "$out" ] && [ -s "$dir/instance-id" ] || exit 0
iid=$(cat "$dir/instance-id")
sem=/var/lib/cloud/instances/$iid/sem
for stage in init final; do
    [ -s "$dir/$stage.sh" ] || continue
    unit="gearlift-twin-cloud-$stage.service"
    if [ "$stage" = init ]; then
        order="DefaultDependencies=no
After=local-fs.target systemd-tmpfiles-setup.service
Before=sysinit.target network-pre.target network-online.target"
        target=sysinit.target
    else
        order="After=multi-user.target network-online.target
Wants=network-online.target"
        target=multi-user.target
    fi
    cat > "$out/$unit" <<UNIT
[Unit]
Description=gearlift twin: user data, cloud-init $stage stage
$order
ConditionPathExists=!$sem/gearlift-twin-$stage

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'sh $dir/$stage.sh && mkdir -p $sem && touch $sem/gearlift-twin-$stage'
UNIT
    mkdir -p "$out/$target.wants"
    ln -sf "../$unit" "$out/$target.wants/$unit"
done
"""


class UserDataError(ValueError):
    """User data the stand-in cannot play (it says what instead)."""


def _write_file(entry: dict[str, Any]) -> list[str]:
    path = str(entry.get("path") or "")
    if not path.startswith("/"):
        raise UserDataError(f"write_files entry without an absolute path: {path!r}")
    content = entry.get("content", "")
    encoding = str(entry.get("encoding") or "text/plain").lower()
    if encoding in ("b64", "base64"):
        data = base64.b64decode(str(content))
    elif encoding in ("text/plain", ""):
        data = str(content).encode()
    else:
        raise UserDataError(f"write_files encoding {encoding!r} is not supported by the twin (b64 or plain)")
    mode = str(entry.get("permissions") or "0644")
    owner = str(entry.get("owner") or "root:root")
    redirect = ">>" if entry.get("append") else ">"
    encoded = base64.b64encode(data).decode()
    quoted = shlex.quote(path)
    return [
        f'mkdir -p "$(dirname {quoted})"',
        f"printf '%s' {shlex.quote(encoded)} | base64 -d {redirect} {quoted}",
        f"chmod {shlex.quote(mode)} {quoted}",
        f"chown {shlex.quote(owner)} {quoted}",
    ]


def render(user_data: bytes) -> dict[str, str]:
    """The init and final stage scripts ({"init.sh": ..., "final.sh": ...}) for user data."""
    text = user_data.decode("utf-8", errors="replace")
    if not text.strip():
        return {}
    if text.startswith("#cloud-config"):
        config = yaml.safe_load(text) or {}
        if not isinstance(config, dict):
            raise UserDataError("#cloud-config user data is not a mapping")
        unknown = sorted(set(config) - SUPPORTED_KEYS)
        if unknown:
            raise UserDataError(
                f"cloud-config keys {', '.join(unknown)} are not played by the twin "
                f"(it plays {', '.join(sorted(SUPPORTED_KEYS))})"
            )
        init: list[str] = []
        final: list[str] = []
        for entry in config.get("write_files") or []:
            (final if entry.get("defer") else init).extend(_write_file(dict(entry)))
        for command in config.get("runcmd") or []:
            if isinstance(command, list):
                final.append(" ".join(shlex.quote(str(part)) for part in command))
            else:
                final.append(str(command))
        stages = {}
        if init:
            stages["init.sh"] = "set -eu\n" + "\n".join(init) + "\n"
        if final:
            stages["final.sh"] = "set -eu\n" + "\n".join(final) + "\n"
        return stages
    if text.startswith("#!"):
        return {"user-script": text, "final.sh": f"exec {INSTANCE_DIR}/user-script\n"}
    raise UserDataError("user data is neither #cloud-config nor a #! script (MIME multi-part is not played)")


def prepare(instance_dir: Path, instance_id: str, user_data: bytes) -> bool:
    """Write an instance's stages for the container; False when there is nothing to run."""
    stages = render(user_data)
    if not stages:
        return False
    instance_dir.mkdir(parents=True, exist_ok=True)
    (instance_dir / "instance-id").write_text(instance_id + "\n", encoding="utf-8")
    for name, body in stages.items():
        path = instance_dir / name
        path.write_text(body, encoding="utf-8")
        path.chmod(0o755 if name == "user-script" else 0o644)
    return True


def write_generator(path: Path) -> Path:
    path.write_text(GENERATOR, encoding="utf-8")
    path.chmod(0o755)
    return path
