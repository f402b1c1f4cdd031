"""Where moto answers differently from AWS, make the twin's emulator answer as AWS does.

Each patch names the AWS behaviour it restores. They change only the emulator
process (gearlift.twin.emulator.server); the playbooks and modules are untouched and
run the same against a real account. Kept small: only behaviour the
collections' modules depend on. The image lifecycle's patches (images from
instances, Auto Scaling launches and target registration, target health) are
in gearlift.twin.emulator.lifecycle, the instance refresh in gearlift.twin.emulator.refresh.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parents[1] / "data"


def _rds_parameter_groups() -> None:
    """RDS: new mysql8.0 parameter groups list the engine defaults; unknown names are errors.

    AWS's DescribeDBParameters returns every engine parameter; moto only the
    ones a caller modified, so amazon.aws.rds_instance_param_group refuses all.
    AWS's DescribeDBParameterGroups raises DBParameterGroupNotFound for an
    unknown name; moto returns an empty list, which the module indexes into.
    """
    from moto.rds import models
    from moto.rds.exceptions import DBParameterGroupNotFoundError

    defaults: list[dict[str, Any]] = json.loads((DATA / "rds_mysql80_parameters.json").read_text(encoding="utf-8"))[
        "parameters"
    ]
    init = models.DBParameterGroup.__init__

    def init_with_defaults(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if (self.family or "").startswith("mysql8.0"):
            for param in defaults:
                self.parameters[param["ParameterName"]] = dict(param)

    describe = models.RDSBackend.describe_db_parameter_groups

    def describe_strict(self: Any, kwargs: dict[str, Any]) -> Any:
        found = describe(self, kwargs)
        name = kwargs.get("db_parameter_group_name")
        if name and not found:
            raise DBParameterGroupNotFoundError(name)
        return found

    setattr(models.DBParameterGroup, "__init__", init_with_defaults)  # noqa: B010
    setattr(models.RDSBackend, "describe_db_parameter_groups", describe_strict)  # noqa: B010


def _backup_vault_not_found() -> None:
    """AWS Backup: DescribeBackupVault of an unknown vault is AccessDeniedException on AWS.

    amazon.aws.backup_vault relies on that; moto raises ResourceNotFoundException.
    """
    from moto.backup import models
    from moto.core.exceptions import JsonRESTError

    describe = models.BackupBackend.describe_backup_vault

    def describe_as_aws(self: Any, backup_vault_name: str) -> Any:
        if backup_vault_name not in self.vaults:
            raise JsonRESTError("AccessDeniedException", f"Insufficient privileges or vault {backup_vault_name} absent")
        return describe(self, backup_vault_name)

    setattr(models.BackupBackend, "describe_backup_vault", describe_as_aws)  # noqa: B010


# DescribeLoadBalancerAttributes of a new application load balancer on AWS
# (Elastic Load Balancing user guide, "Load balancer attributes").
ALB_DEFAULT_ATTRIBUTES = {
    "access_logs.s3.enabled": "false",
    "idle_timeout.timeout_seconds": "60",
    "routing.http2.enabled": "true",
    "routing.http.drop_invalid_header_fields.enabled": "false",
    "routing.http.desync_mitigation_mode": "defensive",
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
    "routing.http.xff_client_port.enabled": "false",
    "routing.http.xff_header_processing.mode": "append",
    "routing.http.preserve_host_header.enabled": "false",
    "waf.fail_open.enabled": "false",
    "client_keep_alive.seconds": "3600",
}


def _alb_default_attributes() -> None:
    """ELBv2: a new ALB reports AWS's full default attribute set (moto reports five).

    amazon.aws.elb_application_lb compares against keys such as
    idle_timeout.timeout_seconds and fails when they are missing.
    """
    from moto.elbv2 import models

    init = models.FakeLoadBalancer.__init__

    def init_with_defaults(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self.type == "application":
            for key, value in ALB_DEFAULT_ATTRIBUTES.items():
                self.attrs.setdefault(key, value)

    setattr(models.FakeLoadBalancer, "__init__", init_with_defaults)  # noqa: B010


# DescribeTargetGroupAttributes of a new HTTP(S) instance target group on AWS adds these to what moto
# reports (Elastic Load Balancing user guide, "Target group attributes").
TARGET_GROUP_HTTP_DEFAULT_ATTRIBUTES = {
    "stickiness.lb_cookie.duration_seconds": "86400",
    "stickiness.app_cookie.cookie_name": "",
    "stickiness.app_cookie.duration_seconds": "86400",
    "load_balancing.algorithm.anomaly_mitigation": "off",
}


def _target_group_default_attributes() -> None:
    """ELBv2: a new HTTP(S) target group reports AWS's stickiness defaults (moto leaves them out).

    community.aws.elb_target_group compares ``stickiness_lb_cookie_duration`` against
    ``stickiness.lb_cookie.duration_seconds`` and fails with a KeyError when it is missing.
    """
    from moto.elbv2 import models

    init = models.FakeTargetGroup.__init__

    def init_with_defaults(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self.protocol in ("HTTP", "HTTPS"):
            for key, value in TARGET_GROUP_HTTP_DEFAULT_ATTRIBUTES.items():
                self.attributes.setdefault(key, value)

    setattr(models.FakeTargetGroup, "__init__", init_with_defaults)  # noqa: B010


def _rds_gp3_baseline() -> None:
    """RDS: a gp3 instance reports its baseline Iops and StorageThroughput, as on AWS.

    Under 400 GiB, MySQL on gp3 has 3000 IOPS and 125 MiB/s and DescribeDBInstances
    says so; moto leaves both out and amazon.aws.rds_instance reads them.
    """
    from moto.rds import models

    init = models.DBInstance.__init__

    def init_with_baseline(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if getattr(self, "storage_type", None) == "gp3":
            if not getattr(self, "_storage_throughput", None):
                self._storage_throughput = 125
            if not getattr(self, "iops", None):
                self.iops = 3000

    setattr(models.DBInstance, "__init__", init_with_baseline)  # noqa: B010


def _ec2_natgateway_tag_type() -> None:
    """EC2: DescribeTags filters NAT gateways by resource-type "natgateway", as AWS names them.

    moto files their tags under "nat-gateway", so amazon.aws.ec2_vpc_nat_gateway
    sees no tags on an existing gateway and re-tags it on every run.
    """
    from moto.ec2.models import tags

    describe = tags.TagBackend.describe_tags

    def describe_as_aws(self: Any, filters: Any = None) -> Any:
        if filters and "natgateway" in (filters.get("resource-type") or []):
            filters = dict(filters)
            filters["resource-type"] = [*filters["resource-type"], "nat-gateway"]
        return describe(self, filters)

    setattr(tags.TagBackend, "describe_tags", describe_as_aws)  # noqa: B010


def _autoscaling_standby_rules() -> None:
    """Auto Scaling: EnterStandby keeps the group at or above its minimum; only InService instances.

    EnterStandby (Amazon EC2 Auto Scaling API Reference): "If you choose to decrement the desired
    capacity of the Auto Scaling group, the instances can enter standby as long as the desired
    capacity of the Auto Scaling group after the instances are placed into standby is equal to or
    greater than the minimum capacity of the group." The user guide (Temporarily remove instances
    from your Auto Scaling group) puts only InService instances into Standby. moto accepts both,
    so a patch run that takes a group at its minimum down a host passed here and failed on AWS.
    """
    from moto.autoscaling import models
    from moto.autoscaling.exceptions import ValidationError

    enter = models.AutoScalingBackend.enter_standby_instances

    def enter_standby(self: Any, group_name: str, instance_ids: list[str], should_decrement: bool) -> Any:
        group = self.autoscaling_groups.get(group_name)
        if group is None:
            raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
        states = {s.instance.id: s.lifecycle_state for s in group.instance_states}
        for iid in instance_ids:
            if iid not in states:
                raise ValidationError(f"The instance {iid} is not part of Auto Scaling group {group_name}.")
            if states[iid] != "InService":
                raise ValidationError(f"The instance {iid} is not in InService (it is {states[iid]}).")
        if should_decrement and group.desired_capacity - len(instance_ids) < group.min_size:
            raise ValidationError(
                f"AutoScalingGroup {group_name} has min-size={group.min_size}, max-size={group.max_size}, and "
                f"desired-capacity={group.desired_capacity}. To place into standby {len(instance_ids)} "
                "instances, please update the AutoScalingGroup sizes appropriately."
            )
        return enter(self, group_name, instance_ids, should_decrement)

    setattr(models.AutoScalingBackend, "enter_standby_instances", enter_standby)  # noqa: B010


def _ec2_default_vpc_and_groups() -> None:
    """EC2: the default VPC routes to the internet, default security groups admit their members.

    Amazon VPC user guide, "Default VPCs": a default VPC has an internet gateway and its main
    route table sends 0.0.0.0/0 to it. "Default security groups for your VPCs": inbound all
    traffic from the group itself, outbound all. moto creates the default VPC without the
    gateway or the route and default groups without the inbound rule; with the twin enforcing
    security groups and routes, hosts in the default VPC could reach neither each other nor
    the AWS APIs, as they can on AWS.
    """
    from moto.ec2.models import vpcs

    create_default_vpc = vpcs.VPCBackend.create_default_vpc
    create_vpc = vpcs.VPCBackend.create_vpc

    def default_vpc_as_aws(self: Any) -> Any:
        vpc = create_default_vpc(self)
        igw = self.create_internet_gateway()
        self.attach_internet_gateway(igw.id, vpc.id)
        main = self.describe_route_tables(filters={"vpc-id": [vpc.id], "association.main": ["true"]})
        for table in main:
            self.create_route(table.id, "0.0.0.0/0", gateway_id=igw.id)
        return vpc

    def vpc_with_default_group_as_aws(self: Any, *args: Any, **kwargs: Any) -> Any:
        vpc = create_vpc(self, *args, **kwargs)
        group = self.get_security_group_from_name("default", vpc_id=vpc.id)
        if group is not None and not group.ingress_rules:
            self.authorize_security_group_ingress(
                group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}], vpc_id=vpc.id
            )
        return vpc

    setattr(vpcs.VPCBackend, "create_default_vpc", default_vpc_as_aws)  # noqa: B010
    setattr(vpcs.VPCBackend, "create_vpc", vpc_with_default_group_as_aws)  # noqa: B010


def _ec2_vpn_static_routes() -> None:
    """EC2: Site-to-Site VPN connections keep their options and static routes, as on AWS.

    CreateVpnConnection takes Options (StaticRoutesOnly, LocalIpv4NetworkCidr, ...) and
    DescribeVpnConnections answers with them and with the connection's Routes;
    CreateVpnConnectionRoute / DeleteVpnConnectionRoute add and remove static routes (EC2 API
    Reference). moto drops the options and has neither route action, so amazon.aws.ec2_vpc_vpn
    (static_only, routes) fails, and the twin could not tell which on-premises networks a
    connection carries.
    """
    from moto.core.responses import EmptyResult
    from moto.ec2.exceptions import InvalidVpnConnectionIdError
    from moto.ec2.models import vpn_connections
    from moto.ec2.responses import vpn_connections as responses

    init = vpn_connections.VPNConnection.__init__

    def init_with_routes(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.options = {"StaticRoutesOnly": False}
        self.routes = []

    create = responses.VPNConnections.create_vpn_connection

    def create_with_options(self: Any) -> Any:
        result = create(self)
        options = self._get_param("Options", {}) or {}
        answer: Any = result.result
        connection = answer["VpnConnection"]
        connection.options = {"StaticRoutesOnly": bool(options.get("StaticRoutesOnly", False))}
        for key in ("LocalIpv4NetworkCidr", "RemoteIpv4NetworkCidr", "TunnelInsideIpVersion"):
            if options.get(key):
                connection.options[key] = options[key]
        return result

    def _connection(self: Any) -> Any:
        conn_id = self._get_param("VpnConnectionId")
        connection = self.ec2_backend.vpn_connections.get(conn_id)
        if connection is None or connection.state == "deleted":
            raise InvalidVpnConnectionIdError(conn_id)
        return connection

    def create_route(self: Any) -> Any:
        connection = _connection(self)
        cidr = self._get_param("DestinationCidrBlock")
        if not any(r["DestinationCidrBlock"] == cidr for r in connection.routes):
            connection.routes.append({"DestinationCidrBlock": cidr, "Source": "Static", "State": "available"})
        return EmptyResult()

    def delete_route(self: Any) -> Any:
        connection = _connection(self)
        cidr = self._get_param("DestinationCidrBlock")
        connection.routes = [r for r in connection.routes if r["DestinationCidrBlock"] != cidr]
        return EmptyResult()

    setattr(vpn_connections.VPNConnection, "__init__", init_with_routes)  # noqa: B010
    setattr(responses.VPNConnections, "create_vpn_connection", create_with_options)  # noqa: B010
    setattr(responses.VPNConnections, "create_vpn_connection_route", create_route)  # noqa: B010
    setattr(responses.VPNConnections, "delete_vpn_connection_route", delete_route)  # noqa: B010


def _ec2_launch_template_interface_groups() -> None:
    """EC2: an instance launched from a template gets the groups of the template's primary interface.

    RequestLaunchTemplateData may carry the security groups on the network interface
    (NetworkInterfaces[DeviceIndex 0].Groups) instead of SecurityGroupIds; EC2 (and Auto Scaling,
    which launches from the template) gives them to the instance. gearlift's launch template
    does so (no public IP on the interface). moto reads only SecurityGroups / SecurityGroupIds,
    so the fleet's instances had no group at all: on the strict twin nothing reached them.
    """
    from moto.ec2.models import instances, launch_templates

    def interface_groups(data: dict[str, Any]) -> list[str]:
        for nic in data.get("NetworkInterfaces") or []:
            if int(nic.get("DeviceIndex", 0) or 0) == 0:
                groups = nic.get("Groups") or []
                return [g for g in groups if isinstance(g, str)]
        return []

    def security_groups(self: Any) -> list[str]:
        data = self.data
        return list(data.get("SecurityGroups") or data.get("SecurityGroupIds") or interface_groups(data))

    run = instances.InstanceBackend.run_instances

    def run_with_interface_groups(
        self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
    ) -> Any:
        if kwargs.get("launch_template") and not security_group_names and not kwargs.get("security_group_ids"):
            data = self._get_template_from_args(kwargs["launch_template"]).data
            if not data.get("SecurityGroups") and not data.get("SecurityGroupIds"):
                groups = interface_groups(data)
                if groups:
                    kwargs["security_group_ids"] = groups
        return run(self, image_id, count, user_data, security_group_names, **kwargs)

    setattr(launch_templates.LaunchTemplateVersion, "security_groups", property(security_groups))  # noqa: B010
    setattr(instances.InstanceBackend, "run_instances", run_with_interface_groups)  # noqa: B010


def _ec2_launch_template_role_and_metadata_options() -> None:
    """EC2: an instance gets its launch template's instance profile and metadata options.

    RequestLaunchTemplateData's IamInstanceProfile and MetadataOptions (HttpTokens,
    HttpPutResponseHopLimit, HttpEndpoint) apply to every instance launched from the template,
    by RunInstances or by Auto Scaling (EC2 API Reference); RunInstances' own IamInstanceProfile
    applies to every instance of the call. moto ignores both template settings and associates
    the call's profile with the first instance only, so the fleet's hosts had no role and
    answered IMDSv1 where the template requires tokens.
    """
    from moto.ec2.models import instances

    run = instances.InstanceBackend.run_instances

    def run_with_template_role(
        self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
    ) -> Any:
        data: dict[str, Any] = {}
        if kwargs.get("launch_template"):
            data = dict(self._get_template_from_args(kwargs["launch_template"]).data or {})
            if not kwargs.get("metadata_options") and data.get("MetadataOptions"):
                kwargs["metadata_options"] = dict(data["MetadataOptions"])
        reservation = run(self, image_id, count, user_data, security_group_names, **kwargs)
        by_call = {"Name": kwargs.get("iam_instance_profile_name"), "Arn": kwargs.get("iam_instance_profile_arn")}
        # The API response associates the call's profile with the first instance itself.
        launched = reservation.instances[1:] if any(by_call.values()) else reservation.instances
        profile = by_call if any(by_call.values()) else dict(data.get("IamInstanceProfile") or {})
        if profile.get("Name") or profile.get("Arn"):
            for instance in launched:
                if instance.id not in self.iam_instance_profile_associations:
                    self.associate_iam_instance_profile(
                        instance_id=instance.id,
                        iam_instance_profile_name=profile.get("Name") if not profile.get("Arn") else None,
                        iam_instance_profile_arn=profile.get("Arn") or None,
                    )
        return reservation

    setattr(instances.InstanceBackend, "run_instances", run_with_template_role)  # noqa: B010


def _route53_alias_without_ttl() -> None:
    """Route 53: an alias record has no TTL (it takes the target's); moto answers TTL 0.

    amazon.aws.route53 compares the record it would write with the one listed, so with moto's TTL
    every run of an alias record (playbooks/dns.yml, the cutover) reported a change.
    """
    from moto.route53 import models

    init = models.RecordSet.__init__

    def init_as_aws(self: Any, kwargs: dict[str, Any]) -> None:
        init(self, kwargs)
        if kwargs.get("AliasTarget"):
            self.ttl = None

    setattr(models.RecordSet, "__init__", init_as_aws)  # noqa: B010


def _acm_dns_validation() -> None:
    """ACM: a DNS-validated certificate is issued once its validation CNAMEs resolve.

    moto issues every requested certificate after a fixed wait (MOTO_ACM_VALIDATION_WAIT), records
    or not; AWS keeps it PENDING_VALIDATION until the CNAME it named is in DNS. Here: once every
    validation record the certificate names is a CNAME, with that value, in a Route 53 zone of the
    same account (the twin's DNS answers those zones). Expiry stays moto's.
    """
    from moto.acm import models as acm_models
    from moto.route53 import models as r53_models

    check = acm_models.CertBundle.check

    def validated(cert: Any) -> bool:
        options = cert.describe()["Certificate"].get("DomainValidationOptions") or []
        wanted = {
            (o["ResourceRecord"]["Name"].lower(), o["ResourceRecord"]["Value"].rstrip(".").lower())
            for o in options
            if o.get("ResourceRecord")
        }
        account = cert.arn.split(":")[4]
        present: set[tuple[str, str]] = set()
        for backend in r53_models.route53_backends[account].values():
            for zone in backend.zones.values():
                for record in zone.rrsets:
                    if record.type == "CNAME":
                        for value in record.records or []:
                            present.add((record.name.lower().rstrip(".") + ".", str(value).rstrip(".").lower()))
        return bool(wanted) and wanted <= present

    def check_as_aws(self: Any) -> None:
        if self.type == "AMAZON_ISSUED" and self.status == "PENDING_VALIDATION":
            if validated(self):
                self.status = "ISSUED"
            return
        check(self)

    setattr(acm_models.CertBundle, "check", check_as_aws)  # noqa: B010


def _elasticache_replication_groups() -> None:
    """ElastiCache: a replication group's nodes are cache clusters; it can be modified and deleted.

    On AWS a replication group of NumCacheClusters nodes (cluster mode disabled) lists that many
    members, and DescribeCacheClusters lists each member with its ReplicationGroupId, security
    groups, subnet group and encryption flags (DescribeReplicationGroups names neither the security
    groups nor the subnet group). ModifyReplicationGroup changes the description, the security
    groups, the node type, failover and snapshot retention; DeleteReplicationGroup removes the group
    and its nodes. moto 5.2 keeps one member whatever NumCacheClusters says, lists no member as a
    cache cluster and lacks ModifyReplicationGroup, so gearlift.platform.elasticache_replication_group
    could not read a group's security groups and the twin could not tell who may reach its nodes.
    Idempotent: applying twice patches once.
    """
    from moto.core.responses import ActionResult
    from moto.elasticache import models
    from moto.elasticache import responses as ec_responses
    from moto.elasticache.exceptions import ReplicationGroupNotFound

    if getattr(models.ElastiCacheBackend, "_gearlift_members", False):
        return
    create = models.ElastiCacheBackend.create_replication_group

    def member_groups(ids: list[str] | None) -> list[dict[str, str]]:
        return [{"SecurityGroupId": gid, "Status": "active"} for gid in ids or []]

    def create_with_members(self: Any, **kwargs: Any) -> Any:
        group = create(self, **kwargs)
        wanted = int(kwargs.get("num_cache_clusters") or 0)
        if group.cluster_mode != "enabled" and group.node_groups and wanted > len(group.member_clusters):
            node_group = group.node_groups[0]
            azs = kwargs.get("preferred_cache_cluster_azs") or []
            domain = node_group["primary_endpoint_address"].split(".", 1)[1]
            for n in range(len(group.member_clusters) + 1, wanted + 1):
                cluster_id = f"{group.replication_group_id}-{n:0>3}"
                node_group["node_group_members"].append(
                    {
                        "cache_cluster_id": cluster_id,
                        "cache_node_id": node_group["node_group_id"],
                        "read_endpoint": {"address": f"{cluster_id}.{domain}", "port": group.port},
                        "preferred_availability_zone": azs[n - 1] if len(azs) >= n else "us-east-1b",
                        "current_role": "replica",
                    }
                )
                group.member_clusters.append(cluster_id)
        for member in group.node_groups[0]["node_group_members"] if group.node_groups else []:
            cluster = models.CacheCluster(
                account_id=self.account_id,
                region_name=self.region_name,
                cache_cluster_id=member["cache_cluster_id"],
                replication_group_id=group.replication_group_id,
                az_mode=None,
                preferred_availability_zone=member.get("preferred_availability_zone"),
                preferred_availability_zones=None,
                num_cache_nodes=1,
                cache_node_type=group.cache_node_type,
                engine=group.engine,
                engine_version=kwargs.get("engine_version"),
                cache_parameter_group_name=kwargs.get("cache_parameter_group_name"),
                cache_subnet_group_name=kwargs.get("cache_subnet_group_name"),
                cache_security_group_names=None,
                security_group_ids=kwargs.get("security_group_ids"),
                tags=None,
                snapshot_arns=None,
                snapshot_name=None,
                preferred_maintenance_window=None,
                port=group.port,
                notification_topic_arn=None,
                auto_minor_version_upgrade=kwargs.get("auto_minor_version_upgrade"),
                snapshot_retention_limit=group.snapshot_retention_limit,
                snapshot_window=None,
                auth_token=None,
                outpost_mode=None,
                preferred_outpost_arn=None,
                preferred_outpost_arns=None,
                log_delivery_configurations=[],
                transit_encryption_enabled=group.transit_encryption_enabled,
                network_type=None,
                ip_discovery=None,
                cache_node_ids_to_remove=None,
                cache_node_ids_to_reboot=None,
            )
            cluster.replication_group_id = group.replication_group_id
            setattr(cluster, "security_groups", member_groups(kwargs.get("security_group_ids")))  # noqa: B010
            setattr(cluster, "at_rest_encryption_enabled", group.at_rest_encryption_enabled)  # noqa: B010
            cluster.auth_token_enabled = group.auth_token_enabled
            self.cache_clusters[cluster.cache_cluster_id] = cluster
        return group

    def modify_replication_group(self: Any) -> Any:
        backend = self.elasticache_backend
        group_id = self._get_param("ReplicationGroupId")
        group = backend.replication_groups.get(group_id)
        if group is None:
            raise ReplicationGroupNotFound(group_id)
        if self._get_param("ReplicationGroupDescription") is not None:
            group.description = self._get_param("ReplicationGroupDescription")
        if self._get_int_param("SnapshotRetentionLimit") is not None:
            group.snapshot_retention_limit = self._get_int_param("SnapshotRetentionLimit")
        if self._get_param("CacheNodeType"):
            group.cache_node_type = self._get_param("CacheNodeType")
        if self._get_param("AutomaticFailoverEnabled") is not None:
            group.automatic_failover = "enabled" if self._get_bool_param("AutomaticFailoverEnabled") else "disabled"
        if self._get_param("MultiAZEnabled") is not None:
            group.multi_az = "enabled" if self._get_bool_param("MultiAZEnabled") else "disabled"
        groups = self._get_param("SecurityGroupIds")
        for cluster_id in group.member_clusters:
            cluster = backend.cache_clusters.get(cluster_id)
            if cluster is None:
                continue
            if groups is not None:
                cluster.security_group_ids = list(groups)
                cluster.security_groups = member_groups(groups)
            cluster.cache_node_type = group.cache_node_type
        return ActionResult({"ReplicationGroup": group})

    delete = models.ElastiCacheBackend.delete_replication_group

    def delete_with_members(self: Any, replication_group_id: str, retain_primary_cluster: bool | None) -> Any:
        existing = self.replication_groups.get(replication_group_id)
        members = list(existing.member_clusters) if existing is not None else []
        group = delete(self, replication_group_id, retain_primary_cluster)
        self.replication_groups.pop(replication_group_id, None)
        for cluster_id in members:
            self.cache_clusters.pop(cluster_id, None)
        return group

    setattr(models.ElastiCacheBackend, "create_replication_group", create_with_members)  # noqa: B010
    setattr(models.ElastiCacheBackend, "delete_replication_group", delete_with_members)  # noqa: B010
    setattr(ec_responses.ElastiCacheResponse, "modify_replication_group", modify_replication_group)  # noqa: B010
    setattr(models.ElastiCacheBackend, "_gearlift_members", True)  # noqa: B010


def apply() -> None:
    from gearlift.twin.emulator import lifecycle, refresh, rotation, scalein

    lifecycle.apply()
    refresh.install()
    scalein.install()
    _ec2_natgateway_tag_type()
    _rds_gp3_baseline()
    _alb_default_attributes()
    _target_group_default_attributes()
    _rds_parameter_groups()
    _backup_vault_not_found()
    _autoscaling_standby_rules()
    _ec2_default_vpc_and_groups()
    _ec2_vpn_static_routes()
    _ec2_launch_template_interface_groups()
    _ec2_launch_template_role_and_metadata_options()
    _route53_alias_without_ttl()
    _acm_dns_validation()
    _elasticache_replication_groups()
    # RotateSecret queues the rotation for the data plane's Lambda stand-in (moto's invoke needs docker).
    rotation.install()
