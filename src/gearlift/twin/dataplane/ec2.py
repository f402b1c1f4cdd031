"""EC2: every pending/running instance is a systemd container named by its instance id.

Booted from the local image its AMI is tagged with (`gearlift:local-image`); stopped
instances are stopped containers, terminated ones are removed. The instance's user data runs
as cloud-init would run it (gearlift.twin.cloudinit). An image created from an instance
(CreateImage) is the instance's container committed into a local image (the twin's mount
points removed first); the AMI is tagged with it and becomes available. When the image's
snapshot is deleted, the local image goes too.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gearlift.twin import channel, cloudinit, images, podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.dataplane.amis import AMI_IMAGE_REPO, LOCAL_IMAGE_TAG, kept_local_images
from gearlift.twin.errors import TwinError
from gearlift.twin.layout import TwinLayout
from gearlift.twin.sizing import InstanceSizes, run_limits

Log = Callable[[str], None]


SNAPSHOT_LABEL = "gearlift.snapshot"


class Ec2Reconciler:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self._warned: set[str] = set()
        self.launched_at: dict[str, float] = {}
        self.generator = cloudinit.write_generator(layout.state_dir / "cloud-init-generator")
        # Called with the container's name right after it starts (the firewall seals it).
        self.on_start: Callable[[str], None] | None = None
        # More mounts every instance gets (gearlift.twin.dataplane.efs: the mount helper, staging).
        self.extra_mounts: Callable[[str], list[str]] | None = None
        self.extra_mount_points: list[str] = []
        # Hosts sized like their instance types (gearlift.twin.sizing; 0: unsized).
        self.cpu_factor = 0.0
        self.sizes = InstanceSizes(lambda: self.clients("ec2"))

    def _instances(self) -> dict[str, dict[str, Any]]:
        reservations = paginate(self.clients("ec2"), "describe_instances", "Reservations")
        return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}

    def local_image_for(self, ami_id: str) -> str | None:
        found = self.clients("ec2").describe_images(ImageIds=[ami_id]).get("Images", [])
        if not found:
            return None
        tags = {t["Key"]: t["Value"] for t in found[0].get("Tags", [])}
        return tags.get(LOCAL_IMAGE_TAG)

    def containers(self) -> dict[str, podman.Container]:
        return {
            c.labels.get("gearlift.instance-id", c.name): c
            for c in podman.list_containers(self.layout.label)
            if c.labels.get("gearlift.kind") == "ec2"
        }

    def reconcile(self, round_: Round) -> None:
        round_.instances = self.sync()
        round_.addresses = self.addresses()
        round_.launched_at = self.launched_at

    def addresses(self) -> dict[str, str]:
        """Instance id -> address on the twin network, for every running instance container."""
        out: dict[str, str] = {}
        for container in podman.list_containers(self.layout.label):
            iid = container.labels.get("gearlift.instance-id")
            if iid and container.state == "running":
                ip = podman.container_ip(container.name, self.layout.network)
                if ip:
                    out[iid] = ip
        return out

    def sync(self) -> dict[str, dict[str, Any]]:
        """Containers for the instances the emulator lists; their DescribeInstances items."""
        instances = self._instances()
        containers = self.containers()
        for iid, container in containers.items():
            state = instances.get(iid, {}).get("State", {}).get("Name", "terminated")
            if state in ("terminated", "shutting-down"):
                self.log(f"ec2: {iid} {state} -> removing its container")
                podman.remove(container.name)
            elif state in ("stopping", "stopped") and container.state == "running":
                self.log(f"ec2: {iid} {state} -> stopping its container")
                podman.run("stop", "-t", "10", container.name, check=False)
            elif state in ("pending", "running") and container.state != "running":
                podman.run("start", container.name, check=False)
        for iid, inst in instances.items():
            if inst["State"]["Name"] not in ("pending", "running") or iid in containers:
                continue
            image = self.local_image_for(inst["ImageId"])
            if image is None or not podman.image_exists(image):
                if iid not in self._warned:
                    self._warned.add(iid)
                    self.log(
                        f"ec2: {iid} cannot boot: AMI {inst['ImageId']} has no usable "
                        f"'{LOCAL_IMAGE_TAG}' tag (got {image!r})"
                    )
                continue
            self.start_container(iid, inst, image)
        self.reconcile_images(instances)
        return instances

    # ----------------------------------------------------------------- images
    def _mount_points(self, iid: str) -> list[str]:
        """Where the twin mounts its own files into an instance (never part of an image)."""
        return [
            "/root/.aws",
            "/etc/gearlift-twin/aws",
            cloudinit.INSTANCE_DIR,
            "/etc/gearlift-twin",
            "/etc/systemd/system.conf.d/50-gearlift-twin-aws.conf",
            cloudinit.GENERATOR_PATH,
            "/etc/systemd/system-generators",
            "/etc/systemd/system.conf.d",
            *self.extra_mount_points,
        ]

    def _remove_mount_points(self, container: str) -> None:
        """Drop the empty placeholders the runtime created for the twin's mounts, before a commit."""
        root = Path(podman.run("mount", container).stdout.strip())
        try:
            for point in self._mount_points(container):
                path = root / point.lstrip("/")
                if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        finally:
            podman.run("umount", container, check=False)

    def reconcile_images(self, instances: dict[str, dict[str, Any]]) -> None:
        ec2 = self.clients("ec2")
        pending = ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
        for image in pending:
            source = image.get("SourceInstanceId")
            if not source:
                continue
            ami = image["ImageId"]
            if not podman.container_exists(source):
                if ami not in self._warned:
                    self._warned.add(ami)
                    self.log(f"ec2: image {ami} waits for the container of {source}")
                continue
            snapshot = next((m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs")), "")
            local = f"{AMI_IMAGE_REPO}:{ami}"
            started = time.monotonic()
            self._remove_mount_points(source)
            podman.run(
                "commit",
                *images.SYSTEMD_IMAGE_CHANGES,
                "--change",
                f"LABEL {self.layout.label}",
                "--change",
                f"LABEL {self.layout.owner_label}",
                "--change",
                f"LABEL {SNAPSHOT_LABEL}={snapshot}",
                source,
                local,
                timeout=1800,
            )
            ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": local}])
            self.report(channel.IMAGE_AVAILABLE, {"image_id": ami})
            self.log(f"ec2: image {ami} of {source} committed as {local} in {time.monotonic() - started:.0f} s")
        self._drop_deleted_images()

    def _drop_deleted_images(self) -> None:
        """A local image whose AMI and snapshot are both gone is removed (when no container uses it)."""
        listing = podman.run("images", "--filter", f"label={self.layout.label}", "--format", "json", check=False)
        if listing.returncode != 0:
            return
        ec2 = self.clients("ec2")
        kept = kept_local_images(self.layout.state_dir)  # the account keeps them (dataplane.amis)
        for item in json.loads(listing.stdout or "[]"):
            names = [n for n in item.get("Names") or [] if n.startswith(AMI_IMAGE_REPO + ":")]
            if not names or names[0] in kept or not self.layout.owns(item.get("Labels")):
                continue
            ami = names[0].split(":", 1)[1]
            snapshot = (item.get("Labels") or {}).get(SNAPSHOT_LABEL, "")
            if ec2.describe_images(Filters=[{"Name": "image-id", "Values": [ami]}])["Images"]:
                continue
            if snapshot:
                found = ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot]}])["Snapshots"]
                if found:
                    continue
            if podman.run("rmi", names[0], check=False).returncode == 0:
                self.log(f"ec2: image {ami} and its snapshot are deleted -> removed {names[0]}")

    def _limits(self, inst: dict[str, Any]) -> list[str]:
        if self.cpu_factor == 0:
            return []
        return run_limits(self.sizes(inst["InstanceType"]), self.cpu_factor)

    def report(self, what: str, body: dict[str, Any]) -> None:
        """Tell the emulator what only the data plane knows (gearlift.twin.channel)."""
        channel.send(self.clients.endpoint, what, {"region": self.layout.region, **body})

    def _user_data(self, iid: str) -> bytes:
        answer = self.clients("ec2").describe_instance_attribute(InstanceId=iid, Attribute="userData")
        value = (answer.get("UserData") or {}).get("Value") or ""
        return base64.b64decode(value) if value else b""

    def _cloud_init_args(self, iid: str) -> list[str]:
        instance_dir = self.layout.state_dir / "instances" / iid
        try:
            if not cloudinit.prepare(instance_dir, iid, self._user_data(iid)):
                return []
        except (cloudinit.UserDataError, ValueError, yaml.YAMLError) as exc:
            self.log(f"ec2: {iid}: user data not run: {exc}")
            return []
        return [
            "-v",
            f"{instance_dir}:{cloudinit.INSTANCE_DIR}:ro",
            "-v",
            f"{self.generator}:{cloudinit.GENERATOR_PATH}:ro",
        ]

    def start_container(self, iid: str, inst: dict[str, Any], image: str) -> None:
        if podman.container_exists(iid):
            raise TwinError(
                f"a container named {iid} already exists but is not part of this twin: "
                f"remove it (`podman rm -f {iid}`) and run again."
            )
        hostname = (inst.get("PrivateDnsName") or iid).split(".")[0] or iid
        args = [
            "run",
            "-d",
            "--name",
            iid,
            "--hostname",
            hostname,
            "--network",
            self.layout.network,
            # The VPC's resolver: the emulator's Route 53 zones, the rest forwarded to the network's own.
            "--dns",
            self.layout.resolver,
            "--label",
            self.layout.label,
            "--label",
            "gearlift.kind=ec2",
            "--label",
            f"gearlift.instance-id={iid}",
            "--label",
            f"gearlift.ami={inst['ImageId']}",
            *podman.RUN_FIX_ARGS,
            "--systemd",
            "always",
            "-v",
            f"{self.layout.aws_dir}:/root/.aws:ro",
            "-v",
            f"{self.layout.aws_dir}:/etc/gearlift-twin/aws:ro",
            "-v",
            f"{self.layout.dropin}:/etc/systemd/system.conf.d/50-gearlift-twin-aws.conf:ro",
            *self._cloud_init_args(iid),
            *(self.extra_mounts(iid) if self.extra_mounts is not None else []),
            *self._limits(inst),
            image,
            "/sbin/init",
        ]
        podman.run(*args)
        if self.on_start is not None:
            self.on_start(iid)
        self.launched_at[iid] = time.monotonic()
        self.log(f"ec2: {iid} running as a container from {image}")
