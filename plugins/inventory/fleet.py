# Copyright: (c) 2025, gearlift maintainers
# Apache-2.0 (see galaxy.yml)
"""Dynamic inventory of the gearlift fleet, listed through its Auto Scaling groups."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: gearlift fleet inventory, listed by EC2 Auto Scaling group
description:
  - Builds the inventory of the gearlift web shop fleet from EC2 Auto Scaling groups.
    The groups are selected by name (O(auto_scaling_groups)) and/or by tags (O(asg_tags));
    every instance of a selected group that is in an accepted lifecycle state
    (O(include_lifecycle_states)), is healthy (see O(include_unhealthy)) and whose EC2 state
    is C(running) becomes a host.
  - Only the regions listed in O(regions) are queried. There is deliberately no
    "all regions" fallback.
  - The inventory host name is the EC2 instance id.
  - "Built-in groups: C(asg_<group name>), C(env_<gearlift:environment tag>),
    C(role_<gearlift:role tag>), C(az_<availability zone>) and C(region_<region>).
    Every character other than ASCII letters, digits and C(_) is replaced by C(_),
    for example C(az_eu_west_1a)."
  - The C(gearlift:environment) and C(gearlift:role) values are read from the instance
    tags; when an instance lacks one of them the Auto Scaling group's tag is used.
  - "Host variables: C(ec2_instance_id), C(ec2_private_ip), C(ec2_availability_zone),
    C(ec2_region), C(ec2_image_id), C(ec2_instance_type), C(ec2_launch_template_id),
    C(ec2_launch_template_name), C(ec2_launch_template_version), C(ec2_tags) (the instance
    tags as a dictionary), C(asg_name), C(asg_lifecycle_state) and C(asg_health_status),
    plus the connection variables selected by O(connection)."
  - The inventory source file name must end with C(fleet.aws.yml) or C(fleet.aws.yaml).
  - The API endpoint and the credentials come only from the usual AWS settings - the
    O(endpoint_url) option, the C(AWS_ENDPOINT_URL) environment variable read by boto3,
    profiles, the environment or an instance role.
author:
  - gearlift maintainers (!UNKNOWN)
requirements:
  - the C(community.aws) (or C(amazon.aws)) collection for O(connection=ssm), and the
    session-manager-plugin on the controller
  - the C(containers.podman) collection for O(connection=podman) (C(gearlift.platform.podman) builds on it)
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: ['gearlift.platform.fleet']
  regions:
    description:
      - The AWS regions whose Auto Scaling groups are listed.
      - Required and must not be empty; the plugin never falls back to every region of the
        account.
    type: list
    elements: str
    required: true
  auto_scaling_groups:
    description:
      - Names of the Auto Scaling groups to list.
      - When O(asg_tags) is set too, a group must match both.
      - At least one of O(auto_scaling_groups) and O(asg_tags) is required.
      - A name that is found in none of the O(regions) triggers a warning.
    type: list
    elements: str
    default: []
    aliases: [asg_names]
  asg_tags:
    description:
      - Select Auto Scaling groups by their tags. Keys are tag keys; a value is either one
        string or a list of accepted strings.
      - All keys must match (logical AND); within one key any listed value matches (OR).
      - At least one of O(auto_scaling_groups) and O(asg_tags) is required.
    type: dict
    default: {}
  include_lifecycle_states:
    description:
      - Auto Scaling lifecycle states whose instances are listed.
      - Widen this, for example with V(Standby) or V(Pending:Wait), to reach instances that are
        detached from traffic.
    type: list
    elements: str
    default: [InService]
  include_unhealthy:
    description:
      - Also list instances whose Auto Scaling health status is not V(Healthy).
      - The EC2 state must still be C(running).
    type: bool
    default: false
  connection:
    description:
      - How Ansible reaches the hosts.
      - V(ssm) (the default) uses AWS Systems Manager Session Manager through
        C(community.aws.aws_ssm) and needs O(ssm_bucket). No inbound port is opened.
      - V(podman) is for the local rehearsal, where each instance is a podman container
        named after its instance id; it sets C(ansible_connection=gearlift.platform.podman)
        (the C(containers.podman) connection with pipelining),
        C(ansible_host=<instance id>) and C(ansible_python_interpreter=/usr/bin/python3).
      - V(ssh) sets C(ansible_host) to the private IP address. It is meant for operators who
        reach the private subnets through a bastion or a VPN; it is not the default, and
        the SSH user, key and jump host must come from group_vars or O(compose).
    type: str
    default: ssm
    choices: [ssm, podman, ssh]
  ssm_bucket:
    description:
      - S3 bucket the SSM connection uses for file transfers
        (C(ansible_aws_ssm_bucket_name)).
      - Required when O(connection=ssm).
    type: str
  ssm_document:
    description:
      - Session Manager document to start sessions with (C(ansible_aws_ssm_document)).
      - Only used when O(connection=ssm).
    type: str
  ssm_plugin:
    description:
      - Path of the session-manager-plugin binary (C(ansible_aws_ssm_plugin)).
      - Only used when O(connection=ssm).
    type: str
"""

EXAMPLES = r"""
---
# production.fleet.aws.yml - a real account, reached over Session Manager.
# Credentials come from the environment / profile / instance role, never from this file.
plugin: gearlift.platform.fleet
regions:
  - eu-west-1
asg_tags:
  gearlift:environment: production
connection: ssm
ssm_bucket: gearlift-prod-ssm-transfer
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/gearlift/inventory
cache_timeout: 300

---
# inventories/rehearsal/fleet.aws.yml - the local rehearsal. Each "instance" runs as a podman
# container named after its instance id; the rehearsal tooling exports AWS_ENDPOINT_URL
# (and dummy credentials) so that this file looks like any other account's. The tag value
# must match the environment tag the rehearsal puts on its Auto Scaling groups.
plugin: gearlift.platform.fleet
regions: [eu-west-1]
asg_tags:
  gearlift:environment: rehearsal
connection: podman

---
# Two named groups, standby instances included, reached through a bastion over SSH.
plugin: gearlift.platform.fleet
regions: [eu-west-1]
auto_scaling_groups:
  - gearlift-production-web
  - gearlift-production-worker
include_lifecycle_states: [InService, Standby]
connection: ssh
compose:
  ansible_user: "'ec2-user'"
keyed_groups:
  - key: ec2_instance_type
    prefix: type
groups:
  on_latest_template: ec2_launch_template_version == '3'

---
# Web and worker tiers of staging in two regions, with a custom SSM document.
plugin: gearlift.platform.fleet
regions: [eu-west-1, eu-central-1]
asg_tags:
  gearlift:environment: staging
  gearlift:role: [web, worker]
ssm_bucket: gearlift-staging-ssm-transfer
ssm_document: gearlift-ssm-session
strict: true
"""

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

with contextlib.suppress(ImportError):  # reported by AWSInventoryBase.require_aws_sdk()
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    boto3_tag_list_to_ansible_dict,
)
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

#: Instance ids per describe_instances call (EC2 caps the values of one request's filters).
_INSTANCE_BATCH = 100
_ENV_TAG = "gearlift:environment"
_ROLE_TAG = "gearlift:role"
_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")

_SSM_CONNECTION = "community.aws.aws_ssm"
_PODMAN_CONNECTION = "gearlift.platform.podman"
_PODMAN_PYTHON = "/usr/bin/python3"

HostRecord = dict[str, Any]


@AWSRetry.jittered_backoff()
def _describe_auto_scaling_groups(client: Any, **params: Any) -> list[dict[str, Any]]:
    paginator = client.get_paginator("describe_auto_scaling_groups")
    result: dict[str, Any] = paginator.paginate(**params).build_full_result()
    return list(result.get("AutoScalingGroups", []))


@AWSRetry.jittered_backoff()
def _describe_instances(client: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    paginator = client.get_paginator("describe_instances")
    result: dict[str, Any] = paginator.paginate(Filters=filters).build_full_result()
    return [i for r in result.get("Reservations", []) for i in r.get("Instances", [])]


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _group_name(prefix: str, value: str) -> str:
    return _GROUP_CHARS.sub("_", f"{prefix}_{value}")


def _tag_filters(asg_tags: Mapping[str, Any]) -> dict[str, list[str]]:
    """Normalise ``asg_tags`` into ``{tag key: [accepted values]}``."""
    normalised: dict[str, list[str]] = {}
    for key, value in asg_tags.items():
        values = value if isinstance(value, list) else [value]
        normalised[str(key)] = [str(v) for v in values]
    return normalised


def _tags_match(tags: Mapping[str, str], wanted: Mapping[str, list[str]]) -> bool:
    return all(tags.get(key) in values for key, values in wanted.items())


def _launch_template(member: Mapping[str, Any], group: Mapping[str, Any]) -> dict[str, Any]:
    """The launch template of one group member, falling back to the group's own."""
    spec = member.get("LaunchTemplate") or group.get("LaunchTemplate")
    if not spec:
        policy = group.get("MixedInstancesPolicy") or {}
        spec = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return dict(spec or {})


class InventoryModule(AWSInventoryBase):
    NAME = "gearlift.platform.fleet"
    INVENTORY_FILE_SUFFIXES = ("fleet.aws.yml", "fleet.aws.yaml")

    def __init__(self) -> None:
        super().__init__()
        self._query_options: dict[str, Any] = {}
        self._found_groups: set[str] = set()

    class TemplatedOptions(AWSInventoryBase.TemplatedOptions):
        # The base class templates every element of a list option with an argument that
        # ansible-core 2.19 deprecates; ``regions`` is templated in _regions() instead.
        TEMPLATABLE_OPTIONS = tuple(o for o in AWSInventoryBase.TemplatedOptions.TEMPLATABLE_OPTIONS if o != "regions")

    def _regions(self) -> list[str]:
        regions = []
        for region in self.get_option("regions") or []:
            if self.templar.is_template(region):
                region = self.templar.template(region)
            if region:
                regions.append(str(region))
        return regions

    # ------------------------------------------------------------------ options
    def _validated_options(self) -> dict[str, Any]:
        regions = self._regions()
        if not regions:
            self.fail_aws(
                f"{self.NAME}: option 'regions' is required and must list at least one region; "
                "this plugin never queries all regions"
            )
        names = [str(n) for n in (self.get_option("auto_scaling_groups") or [])]
        asg_tags = self.get_option("asg_tags") or {}
        if not isinstance(asg_tags, Mapping):
            self.fail_aws(f"{self.NAME}: option 'asg_tags' must be a dictionary of tag filters")
        if not names and not asg_tags:
            self.fail_aws(
                f"{self.NAME}: set 'auto_scaling_groups' and/or 'asg_tags' to select the fleet's Auto Scaling groups"
            )
        connection = self.get_option("connection")
        if connection == "ssm" and not self.get_option("ssm_bucket"):
            self.fail_aws(
                f"{self.NAME}: option 'ssm_bucket' is required when connection is 'ssm' "
                "(the S3 bucket the aws_ssm connection uses for file transfers)"
            )
        return {
            "regions": regions,
            "auto_scaling_groups": names,
            "asg_tags": _tag_filters(asg_tags),
            "include_lifecycle_states": [str(s) for s in self.get_option("include_lifecycle_states") or []],
            "include_unhealthy": bool(self.get_option("include_unhealthy")),
        }

    def get_cache_key(self, path: str) -> str:
        """Cache per inventory file *and* per query, so editing the selection re-queries."""
        query = dict(self._query_options)
        for option in ("profile", "endpoint_url", "assume_role_arn"):
            query[option] = self.get_option(option)
        digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{super().get_cache_key(path)}_{digest}"

    # -------------------------------------------------------------------- query
    def _groups_in_region(self, region: str, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if query["auto_scaling_groups"]:
            params["AutoScalingGroupNames"] = list(query["auto_scaling_groups"])
        if query["asg_tags"]:
            params["Filters"] = [{"Name": f"tag:{key}", "Values": values} for key, values in query["asg_tags"].items()]
        client = self.client("autoscaling", region=region)
        try:
            groups = _describe_auto_scaling_groups(client, **params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws(f"Failed to describe Auto Scaling groups in {region}", exception=e)
        # Re-check the selection locally: it is cheap and keeps the result exact whatever
        # the service did with the combination of names and filters.
        wanted_names = set(query["auto_scaling_groups"])
        return [
            g
            for g in groups
            if (not wanted_names or g["AutoScalingGroupName"] in wanted_names)
            and _tags_match(boto3_tag_list_to_ansible_dict(g.get("Tags", [])), query["asg_tags"])
        ]

    def _running_instances(self, region: str, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not instance_ids:
            return {}
        client = self.client("ec2", region=region)
        found: dict[str, dict[str, Any]] = {}
        for batch in _batches(sorted(instance_ids), _INSTANCE_BATCH):
            filters = [
                {"Name": "instance-id", "Values": batch},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
            try:
                instances = _describe_instances(client, filters)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                self.fail_aws(f"Failed to describe instances in {region}", exception=e)
            found.update({i["InstanceId"]: i for i in instances if i.get("State", {}).get("Name") == "running"})
        return found

    def _records_in_region(self, region: str, query: Mapping[str, Any]) -> Iterator[HostRecord]:
        states = set(query["include_lifecycle_states"])
        members: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for group in self._groups_in_region(region, query):
            self._found_groups.add(group["AutoScalingGroupName"])
            for member in group.get("Instances", []):
                if member.get("LifecycleState") not in states:
                    continue
                if not query["include_unhealthy"] and member.get("HealthStatus") != "Healthy":
                    continue
                members[member["InstanceId"]] = (member, group)

        instances = self._running_instances(region, list(members))
        for instance_id in sorted(instances):
            member, group = members[instance_id]
            instance = instances[instance_id]
            template = _launch_template(member, group)
            placement = instance.get("Placement") or {}
            yield {
                "ec2_instance_id": instance_id,
                "ec2_private_ip": instance.get("PrivateIpAddress"),
                "ec2_availability_zone": placement.get("AvailabilityZone") or member.get("AvailabilityZone"),
                "ec2_region": region,
                "ec2_image_id": instance.get("ImageId"),
                "ec2_instance_type": instance.get("InstanceType"),
                "ec2_launch_template_id": template.get("LaunchTemplateId"),
                "ec2_launch_template_name": template.get("LaunchTemplateName"),
                "ec2_launch_template_version": template.get("Version"),
                "ec2_tags": boto3_tag_list_to_ansible_dict(instance.get("Tags", [])),
                "asg_name": group["AutoScalingGroupName"],
                "asg_lifecycle_state": member.get("LifecycleState"),
                "asg_health_status": member.get("HealthStatus"),
                "_asg_tags": boto3_tag_list_to_ansible_dict(group.get("Tags", [])),
            }

    def _query(self, query: Mapping[str, Any]) -> list[HostRecord]:
        self._found_groups = set()
        records: list[HostRecord] = []
        for region in query["regions"]:
            records.extend(self._records_in_region(region, query))
        missing = sorted(set(query["auto_scaling_groups"]) - self._found_groups)
        if missing:
            self.warn(
                f"{self.NAME}: Auto Scaling group(s) not found (or not matching asg_tags) in "
                f"{', '.join(query['regions'])}: {', '.join(missing)}"
            )
        return records

    # ----------------------------------------------------------------- populate
    def _connection_vars(self, record: Mapping[str, Any]) -> dict[str, Any]:
        connection = self.get_option("connection")
        if connection == "podman":
            return {
                "ansible_connection": _PODMAN_CONNECTION,
                "ansible_host": record["ec2_instance_id"],
                "ansible_python_interpreter": _PODMAN_PYTHON,
            }
        if connection == "ssh":
            if not record.get("ec2_private_ip"):
                self.warn(f"{record['ec2_instance_id']} has no private IP; ansible_host not set")
                return {}
            return {"ansible_host": record["ec2_private_ip"]}
        conn_vars = {
            "ansible_connection": _SSM_CONNECTION,
            "ansible_aws_ssm_instance_id": record["ec2_instance_id"],
            "ansible_aws_ssm_region": record["ec2_region"],
            "ansible_aws_ssm_bucket_name": self.get_option("ssm_bucket"),
        }
        for option, var in (
            ("ssm_document", "ansible_aws_ssm_document"),
            ("ssm_plugin", "ansible_aws_ssm_plugin"),
        ):
            if self.get_option(option):
                conn_vars[var] = self.get_option(option)
        return conn_vars

    @staticmethod
    def _builtin_groups(record: Mapping[str, Any]) -> Iterable[str]:
        tags = {**record.get("_asg_tags", {}), **record.get("ec2_tags", {})}
        candidates = (
            ("asg", record.get("asg_name")),
            ("env", tags.get(_ENV_TAG)),
            ("role", tags.get(_ROLE_TAG)),
            ("az", record.get("ec2_availability_zone")),
            ("region", record.get("ec2_region")),
        )
        return [_group_name(prefix, str(value)) for prefix, value in candidates if value]

    def _populate(self, records: Iterable[HostRecord]) -> None:
        strict = self.get_option("strict")
        for record in records:
            host = record["ec2_instance_id"]
            self.inventory.add_host(host)
            host_vars = {k: v for k, v in record.items() if not k.startswith("_")}
            host_vars.update(self._connection_vars(record))
            for key, value in host_vars.items():
                self.inventory.set_variable(host, key, value)
            for group in self._builtin_groups(record):
                self.inventory.add_group(group)
                self.inventory.add_host(host, group=group)
            self._set_composite_vars(self.get_option("compose"), host_vars, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, host, strict=strict)

    # -------------------------------------------------------------------- entry
    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache=cache)
        self._query_options = self._validated_options()

        was_cached, records = self.get_cached_result(path, cache)
        if not was_cached:
            records = self._query(self._query_options)
        self._populate(records)
        self.update_cached_result(path, cache, records)
